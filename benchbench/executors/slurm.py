"""``slurm``: one SLURM job per cell (a job array per run), submitted through submitit.

The driver (``bench run`` on a login node) submits, then collects each job's record as it
finishes and appends it (the runner is the one writer). Timing jobs ask for a node to
themselves (``exclusive``) so that no other benchmark shares its GPU or CPUs. The job ids are
kept in ``FOLDER/jobs.json``: ``bench run --resume`` of a run whose driver was killed collects
the jobs that finished meanwhile, waits for those still queued or running, and submits only
the rest. A preempted job is requeued by submitit and runs its cell again; a job that ends
without a record (cancelled, timed out, node failure, out of memory) is a ``failed`` cell with
SLURM's state and reason. Ctrl-C or SIGTERM cancels the jobs the driver is waiting for.

SLURM's job state comes from ``scontrol show job`` (the controller keeps ended jobs for
``MinJobAge``), so no accounting database is needed; submitit's ``sacct`` is asked after that.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import records
from ..errors import ExecutorError
from ..fileio import write_atomic
from .base import Executor, Where

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "PREEMPTED",
          "RESV_DEL_HOLD", "SPECIAL_EXIT", "STOPPED", "UNKNOWN"}
RESULT_GRACE_S = 15.0    # a COMPLETED job's result may reach a shared filesystem late


class _Preempted(KeyboardInterrupt):
    """Raised through the cell (which records any other exit as its failure) when submitit has
    requeued the preempted job."""


def _requeue_unwinds() -> None:
    """submitit's preemption handler requeues the job and then calls ``sys.exit``, which a
    cell would catch as a plugin's exit and record as a failure; turn that exit into an
    interrupt that leaves the cell, and exit as submitit means to once outside it."""
    sig = signal.SIGUSR2
    original = signal.getsignal(sig)
    if not callable(original):
        return

    def handler(signum, frame):
        try:
            original(signum, frame)
        except SystemExit:
            raise _Preempted() from None

    signal.signal(sig, handler)


def run_in_job(payload: dict) -> dict:
    """The function each SLURM job runs (pickled by reference: the nodes import benchbench)."""
    from .stages import run_payload

    _requeue_unwinds()
    print(f"benchbench: cell {payload['cell_id']} started (restart "
          f"{os.environ.get('SLURM_RESTART_COUNT') or 0})", flush=True)    # into the job's log
    try:
        record = run_payload(payload, "slurm")
    except _Preempted:
        sys.exit(-1)               # requeued: the next start of this job runs the cell again
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    record["executor"]["slurm"] = {
        "job_id": f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID"),
        "raw_job_id": os.environ.get("SLURM_JOB_ID"),
        "array_job_id": array, "array_task_id": task,
        "node": os.environ.get("SLURMD_NODENAME"),
        "partition": os.environ.get("SLURM_JOB_PARTITION"),
        "restarts": int(os.environ.get("SLURM_RESTART_COUNT") or 0)}
    return record


class SlurmExecutor(Executor):
    name = "slurm"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        logging.getLogger("submitit").setLevel(logging.ERROR)   # sacct noise without accounting
        self.folder = Path(self.options.get("folder") or Path(ctx.run_dir) / "slurm")
        self.jobs_file = self.folder / "jobs.json"

    def run(self, cells: list, on_record, on_start=None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        known = self._known_jobs()
        waiting, fresh = {}, []
        for cell in cells:
            job = self._job(known.get(cell.id))
            if job is not None and (_has_result(job) or _state(job)[0] in ACTIVE):
                waiting[cell.id] = (cell, job)       # a resumed run: finished or still queued
            else:
                fresh.append(cell)
        if fresh:
            for cell, job in zip(fresh, self._submit(fresh)):
                waiting[cell.id] = (cell, job)
                known[cell.id] = job.job_id
            write_atomic(self.jobs_file, json.dumps(known, indent=2))
        for cell, _ in waiting.values():
            if on_start is not None:
                on_start(cell)
        try:
            self._collect(waiting, on_record)
        except BaseException:          # Ctrl-C, SIGTERM, a record that cannot be written
            for _, job in waiting.values():
                _cancel(job)
            raise

    def _submit(self, cells: list) -> list:
        import submitit

        ex = submitit.SlurmExecutor(folder=str(self.folder / "%j"),
                                    python=self.options.get("python"))
        ex.update_parameters(**self._sbatch_parameters(len(cells)))
        try:
            with _stderr_kept_back():
                return ex.map_array(run_in_job, [self.ctx.payload(c) for c in cells])
        except (submitit.core.utils.FailedJobError, OSError) as exc:
            lines = [x for x in str(exc).splitlines() if x.strip()]
            raise ExecutorError(f"sbatch could not submit the run's jobs: "
                                f"{lines[-1] if lines else exc} (is this a SLURM login node? "
                                f"SLURM_CONF={os.environ.get('SLURM_CONF', 'unset')})") from None

    def _sbatch_parameters(self, n: int) -> dict:
        o = self.options
        gpus = o.get("gpus_per_node")
        if gpus is None:
            gpus = 1 if self.ctx.device.startswith("cuda") else 0
        params = {"job_name": f"bench-{self.ctx.run_id}"[:64], "time": o["timeout_min"],
                  "array_parallelism": o.get("array_parallelism") or n,
                  "setup": list(o.get("setup") or []), "stderr_to_stdout": True,
                  "additional_parameters": dict(o.get("additional") or {})}
        if o.get("partition"):
            params["partition"] = o["partition"]
        if gpus:
            params["gpus_per_node"] = gpus
        if o.get("cpus_per_task"):
            params["cpus_per_task"] = o["cpus_per_task"]
        if o.get("mem_gb"):
            params["mem"] = f"{int(o['mem_gb'] * 1024)}M"
        if o.get("exclusive", True):
            params["exclusive"] = True
        return params

    def _collect(self, waiting: dict, on_record) -> None:
        gone_since: dict[str, float] = {}
        while waiting:
            for cell_id, (cell, job) in list(waiting.items()):
                record = self._record_of(cell, job, gone_since)
                if record is not None:
                    del waiting[cell_id]
                    on_record(record)
            if waiting:
                time.sleep(self.options.get("poll_s") or 2.0)

    def _record_of(self, cell, job, gone_since: dict) -> dict | None:
        """The cell's record once its job ended (None while it runs)."""
        if _has_result(job):
            try:
                return job.result()
            except Exception as exc:  # noqa: BLE001 - the worker raised before the cell ran
                return self._failed(cell, job, f"SLURM job {job.job_id}: "
                                    f"{_first_line_of_trace(exc)}")
        state, reason, exit_code = _state(job)
        if state in ACTIVE:
            return None
        first = gone_since.setdefault(job.job_id, time.monotonic())
        if state == "COMPLETED" and time.monotonic() - first < RESULT_GRACE_S:
            return None                # its result file may still be on its way
        return self._failed(cell, job, f"SLURM job {job.job_id} ended {state} (reason "
                            f"{reason}, exit code {exit_code}) without a record; its log: "
                            f"{job.paths.stdout}")

    def _failed(self, cell, job, reason: str) -> dict:
        return records.failed(cell, self.ctx.suite, self.ctx.run_id, reason,
                              executor=Where(self.name, cell.device).as_dict(
                                  host=None, pid=None, slurm={"job_id": job.job_id}))

    def _known_jobs(self) -> dict:
        try:
            return json.loads(self.jobs_file.read_text())
        except (OSError, ValueError):
            return {}

    def _job(self, job_id: str | None):
        if not job_id:
            return None
        import submitit
        return submitit.SlurmJob(folder=str(self.folder / "%j"), job_id=str(job_id))


@contextlib.contextmanager
def _stderr_kept_back():
    """sbatch writes its complaints to our stderr besides the exception submitit raises with
    them: keep them back (the error says it in one line)."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _has_result(job) -> bool:
    return job.paths.result_pickle.exists()


def _state(job) -> tuple[str, str, str]:
    """(JobState, Reason, ExitCode) from the controller; sacct (submitit's) when the
    controller no longer knows the job."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", str(job.job_id)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "UNKNOWN", f"scontrol failed: {exc}", "?"
    fields = dict(part.split("=", 1) for part in out.stdout.split() if "=" in part)
    if out.returncode == 0 and "JobState" in fields:
        return fields["JobState"], fields.get("Reason", "None"), fields.get("ExitCode", "?")
    state = job.watcher.get_state(job.job_id, mode="force")   # sacct, where accounting is on
    if state == "UNKNOWN":
        return "GONE", "the controller no longer knows the job and sacct has no record of it", "?"
    return state.split()[0], "sacct", "?"


def _cancel(job) -> None:
    try:
        subprocess.run(["scancel", str(job.job_id)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _first_line_of_trace(exc: BaseException) -> str:
    """The exception line of the trace submitit wraps a job's failure in."""
    lines = [x.strip() for x in str(exc).splitlines()]
    errors = [x for x in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b",
                                           x)]
    return errors[-1][:500] if errors else records.one_line(exc)
