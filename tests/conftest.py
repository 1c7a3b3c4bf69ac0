import fcntl
import os
from contextlib import contextmanager

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def zoo_models() -> list[str]:
    """benchbench's own models (tests register models of family "test" of their own)."""
    import benchbench as bb

    return [n for n in bb.list_models()
            if bb.model_card(n).builder.__module__.startswith("benchbench.zoo")]


# --- pytest-xdist: tests that measure this machine run alone -----------------------------------

@contextmanager
def _turn(config, alone: bool):
    """Under pytest-xdist a test marked ``alone`` (it times models against each other, or reads
    how busy the machine is) runs while no other test runs; the others share the machine. The
    room is a shared/exclusive flock; the gate in front of it keeps newcomers out while an
    ``alone`` test waits, so a stream of shared tests cannot starve it. In one process every
    test is alone already: nothing to lock."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    # the workers' temporary folders share the run's: pytest's own clean-up removes the locks
    shared = config._tmp_path_factory.getbasetemp().parent
    with open(shared / "alone.gate", "a") as gate, open(shared / "alone.room", "a") as room:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(room, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # setup (module fixtures included), call and teardown, all inside the test's turn
    with _turn(item.config, item.get_closest_marker("alone") is not None):
        return (yield)
