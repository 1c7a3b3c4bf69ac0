"""The executor seam: where a cell runs. The runner schedules (which cells, resume, retries)
and is the one writer of ``records.jsonl``; an executor runs the cells it accepts and hands
each finished record to ``on_record``, in the order they finish.

    accepts(cell) -> reason | None     why this executor cannot run the cell (None: it can)
    run(cells, on_record, on_start)    run them; an interrupt (Ctrl-C, SIGTERM) stops and
                                       cleans up its work, then propagates
    close()                            release what it holds (a cluster, a connection)
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunContext:
    """What an executor needs of the run: the suite (as loaded), its id and directory, and the
    plugins to import where a cell runs (so a worker knows the run's own models)."""

    suite: object
    run_id: str
    run_dir: object                  # pathlib.Path
    plugins: tuple = ()              # PluginInfo.as_dict() of each plugin, in load order
    device: str = "cpu"              # the run's resolved device

    def payload(self, cell) -> dict:
        """One cell as plain data, for a worker in another process or on another machine."""
        return {"suite": self.suite.raw, "suite_path": self.suite.path, "run_id": self.run_id,
                "plugins": list(self.plugins), "device": self.device, "cell_id": cell.id}


class Executor:
    name = "executor"

    def __init__(self, ctx: RunContext, options: dict | None = None):
        from ..errors import UsageError
        from . import missing

        if missing(self.name):
            raise UsageError(missing(self.name))
        self.ctx = ctx
        self.options = dict(options or {})      # validated against executors.OPTIONS
        self.run_info: dict = {}     # what the run's run.json gains from this executor

    def accepts(self, cell) -> str | None:
        """Cells whose backend runs in a Python process (all but trtexec, which ``boards``
        runs); the backend's own reason for the others."""
        from ..measure.backends import create_backend

        backend = create_backend(cell.backend, cell.backend_options)
        if backend.capabilities.in_process:
            return None
        return (backend.unavailable_reason(cell.device, cell.precision)
                or f"{cell.backend} runs out of process (the boards executor)")

    def run(self, cells: list, on_record, on_start=None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass
class Where:
    """Where a cell ran: filled in by the process that ran it (``executor`` of a record)."""

    name: str
    device: str
    started_unix: float = field(default_factory=time.time)

    def as_dict(self, **extra) -> dict:
        return {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(),
                "device": _device_index(self.device), "gpu_uuid": gpu_uuid(self.device),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "started_unix": round(self.started_unix, 3),
                "finished_unix": round(time.time(), 3), **extra}


def _device_index(device: str) -> str:
    return "cuda:0" if device == "cuda" else device


def gpu_uuid(device: str) -> str | None:
    """NVML's UUID (``GPU-...``) of the GPU behind ``device`` in this process (after
    CUDA_VISIBLE_DEVICES), or None on the CPU. Two cells timed at once on the same UUID shared
    a GPU."""
    if not device.startswith("cuda"):
        return None
    try:
        import torch
        if not torch.cuda.is_available():
            return None
        index = torch.device(_device_index(device)).index or 0
        return f"GPU-{torch.cuda.get_device_properties(index).uuid}"
    except Exception:  # noqa: BLE001 - an old driver without UUIDs: unknown, not fatal
        return None
