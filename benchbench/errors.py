"""Exception hierarchy. Library code raises these; only ``cli.py`` turns them into one line."""
from __future__ import annotations


class BenchError(Exception):
    """Root of every error benchbench raises on purpose."""

    exit_code = 1


class SuiteError(BenchError):
    """A suite file is unreadable or invalid. Always names the file and the field path."""

    exit_code = 2

    def __init__(self, path: str, field: str, message: str, hint: str | None = None):
        self.path, self.field, self.message, self.hint = path, field, message, hint
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + message + (f" ({hint})" if hint else ""))


class UsageError(BenchError):
    """Bad command-line input (a size, a run directory, a flag)."""

    exit_code = 2


class UnknownModel(UsageError):
    pass


class WeightsError(BenchError):
    """An official checkpoint does not fit the model it is loaded into."""


class BackendUnavailable(BenchError):
    """A backend cannot run on this machine (library missing, no CUDA, ...)."""


class ExecutorError(BenchError):
    """An executor cannot go on (sbatch refuses, the Ray cluster is unreachable); the run keeps
    what finished and can resume."""
