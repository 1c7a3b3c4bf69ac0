"""``process``: each cell (with its repeats) in a fresh worker process on this machine.

Allocator state, cuDNN's algorithm choice and torch.compile's caches carry over between cells
of one process and change their speed (timm's bulk benchmark moved to one process per model
for this reason). A worker is a fresh interpreter (``python -m benchbench.executors.worker``:
torch, benchbench and the run's plugins imported anew, nothing of the caller's ``__main__``),
runs one cell and writes its record to a file. A worker that dies (a segfault, the OOM killer,
a model that calls ``os._exit``) fails its cell with the signal or exit code, and the run goes
on. Cells run one at a time: two timed cells never share the machine."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from .. import records
from .base import Executor, Where

POLL_S = 0.1


class ProcessExecutor(Executor):
    name = "process"

    def run(self, cells: list, on_record, on_start=None) -> None:
        for cell in cells:
            if on_start is not None:
                on_start(cell)
            on_record(self._run_one(cell))

    def _run_one(self, cell) -> dict:
        where = Where(self.name, cell.device)
        reply, why, worker = run_worker(self.ctx.payload(cell), self.options.get("timeout_s"))
        if reply is not None and "record" in reply:
            return reply["record"]
        if reply is not None:          # the worker could not even start the cell
            return records.failed(cell, self.ctx.suite, self.ctx.run_id, reply["error"],
                                  traceback=reply.get("traceback"),
                                  executor=where.as_dict(pid=worker.pid))
        return records.failed(cell, self.ctx.suite, self.ctx.run_id,
                              why or death(worker.returncode),
                              executor=where.as_dict(pid=worker.pid))


def run_worker(payload: dict, timeout_s=None):
    """``payload`` run by a fresh ``python -m benchbench.executors.worker``: its reply (None
    if it wrote none), why it was stopped (a timeout, or None) and the ended process."""
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        reply_path = os.path.join(tmp, "reply.json")
        worker = subprocess.Popen(
            [sys.executable, "-m", "benchbench.executors.worker", reply_path],
            stdin=subprocess.PIPE)
        try:
            worker.stdin.write(json.dumps(payload, default=str).encode())
            worker.stdin.close()
            why = _wait(worker, timeout_s)
        finally:
            _stop(worker)
        return _read_reply(reply_path), why, worker


def _wait(worker, timeout_s) -> str | None:
    started = time.monotonic()
    while worker.poll() is None:
        if timeout_s and time.monotonic() - started > timeout_s:
            return f"the worker ran past executor.timeout_s ({timeout_s:g} s) and was killed"
        time.sleep(POLL_S)
    return None


def _stop(worker) -> None:
    """End the worker if it still runs (a timeout, Ctrl-C or SIGTERM of the run)."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _read_reply(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def death(returncode: int | None) -> str:
    """Why a worker that returned no record ended, in one line."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"the worker process was killed by {name}{hint} before it returned the record"
    return (f"the worker process exited with code {returncode} before it returned the record "
            f"(os._exit, or a crash in native code)")
