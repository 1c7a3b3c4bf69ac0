import os

# One CPU thread per process. The tests run in several pytest-xdist workers and start bench runs,
# SLURM jobs, Ray tasks and worker processes beside them on a machine of 2 cores; with torch's
# default (a thread per core) each of them spins OpenMP threads the others need: three tiny
# suites run side by side took 30-48 s and 60-95 CPU-s instead of 6.6 s and 11.6 CPU-s here.
# Set before torch is imported, so that every child process inherits it too; the tests that are
# about threads set their own (timing.threads).
os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

# pytest-xdist: the tests that time models against each other run ahead of (or apart from) the
# others (tests/_turns.py)
from _turns import (ALONE, alone, pytest_collection, pytest_collection_modifyitems,  # noqa: F401
                    pytest_runtest_protocol)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def zoo_models() -> list[str]:
    """benchbench's own models (tests register models of family "test" of their own)."""
    import benchbench as bb

    return [n for n in bb.list_models()
            if bb.model_card(n).builder.__module__.startswith("benchbench.zoo")]
