"""Where cells run: ``local`` (this process, the default), ``process`` (a fresh worker process
per cell), ``boards`` (Jetson boards over SSH), ``slurm`` (a SLURM job per cell, through
submitit), ``ray`` (a Ray task per cell). See ``base`` for the seam."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..limits import finite_number
from .base import Executor, RunContext, Where

# name -> (module, class); imported when used (submitit and ray are optional extras)
EXECUTORS = {"local": ("local", "LocalExecutor"), "process": ("process", "ProcessExecutor"),
             "boards": ("boards", "BoardsExecutor"), "slurm": ("slurm", "SlurmExecutor"),
             "ray": ("ray_tasks", "RayExecutor")}

# name -> {option: (default, kinds, help)}; kept here (not in the modules) so that a suite is
# validated without importing submitit or ray
OPTIONS = {
    "local": {},
    "process": {
        "timeout_s": (None, (int, float), "a worker that runs longer is killed, its cell failed"),
    },
    "boards": {},
    "slurm": {
        "folder": (None, (str,), "working folder on a filesystem the nodes share (default: "
                                 "RUN_DIR/slurm)"),
        "partition": (None, (str,), "SLURM partition"),
        "gpus_per_node": (None, (int,), "GPUs per job (default: 1 for a cuda suite, else 0)"),
        "cpus_per_task": (None, (int,), "CPUs per job"),
        "mem_gb": (None, (int, float), "memory per job"),
        "timeout_min": (60, (int,), "time limit of each job, minutes"),
        "exclusive": (True, (bool,), "a node to itself for each timing job (never shares its GPU "
                                     "or CPUs with another benchmark)"),
        "array_parallelism": (None, (int,), "at most this many jobs of the run at once"),
        "setup": ([], (list,), "shell lines run before the worker (module load, source venv)"),
        "python": (None, (str,), "the nodes' python (default: this interpreter)"),
        "additional": ({}, (dict,), "further sbatch options, e.g. {account: lab, qos: high}"),
        "poll_s": (2.0, (int, float), "how often the driver looks for finished jobs"),
    },
    "ray": {
        "address": (None, (str,), "an existing cluster (ray://host:10001 or auto); default: a "
                                  "local cluster started for the run"),
        "num_gpus": (None, (int, float), "GPUs per cell task (default: 1 for a cuda suite)"),
        "num_cpus": (None, (int, float), "CPUs per cell task (default: 1 for a cuda suite; a "
                                           "cpu suite's cell takes a whole node's CPUs)"),
        "max_retries": (1, (int,), "a task whose worker died runs again this many times"),
        "reuse_workers": (False, (bool,), "let a Ray worker process run several cells (faster; "
                                          "caches carry over, as with local)"),
        "local_num_cpus": (None, (int,), "CPUs of the local cluster (default: all)"),
        "local_num_gpus": (None, (int,), "GPUs of the local cluster (default: those found; "
                                          "logical ones without hardware)"),
    },
}


@dataclass(frozen=True)
class ExecutorSpec:
    name: str = "local"
    options: dict = field(default_factory=dict)


def option_error(name: str, options: dict) -> tuple[str, str] | None:
    """(field, message) for the first option ``name`` does not have or gets the wrong type."""
    allowed = OPTIONS[name]
    for key, value in options.items():
        if key not in allowed:
            return (key, f"unknown option of the {name} executor; allowed: "
                         f"{', '.join(allowed) or 'none'}")
        _, kinds, _ = allowed[key]
        if value is not None and (not isinstance(value, kinds)
                                  or (isinstance(value, bool) and bool not in kinds)):
            return (key, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
                finite_number(value) and value >= 0):
            return (key, f"must be a finite number >= 0, got {value!r}")
    return None


def missing(name: str) -> str | None:
    """Why the ``name`` executor cannot start on this machine (a library or program it needs
    is not there), in one line with what to install; None when it can."""
    import importlib.util
    import shutil

    if name == "slurm":
        if importlib.util.find_spec("submitit") is None:
            return ("the slurm executor needs submitit: pip install 'benchbench[slurm]' (or pip "
                    "install submitit)")
        if shutil.which("sbatch") is None:
            return ("the slurm executor submits with sbatch, which is not on PATH: run bench run "
                    "on a SLURM login node (or where the SLURM client is configured)")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        return ("the ray executor needs ray: pip install 'benchbench[ray]' (or pip install "
                "'ray[default]')")
    return None


def create_executor(spec: ExecutorSpec, ctx: RunContext, **kwargs) -> Executor:
    import importlib

    module, cls = EXECUTORS[spec.name]
    executor_cls = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    defaults = {k: d for k, (d, _, _) in OPTIONS[spec.name].items()}
    return executor_cls(ctx, {**defaults, **spec.options}, **kwargs)


__all__ = ["EXECUTORS", "OPTIONS", "Executor", "ExecutorSpec", "RunContext", "Where",
           "create_executor", "missing", "option_error"]
