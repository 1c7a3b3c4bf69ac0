"""Under pytest-xdist, tests that measure this machine run alone (tests/conftest.py uses these
hooks; tests/test_turns.py checks them in a pytest session of their own)."""
import fcntl
import os

import pytest


class _Turns:
    """Under pytest-xdist a test marked ``alone`` (it times models against each other, or reads
    how busy the machine is) runs while no other test runs; the others share the machine. The
    room is a shared/exclusive flock; the gate in front of it keeps newcomers out while an
    ``alone`` test waits, so a stream of shared tests cannot starve it. A worker keeps the room
    from one ``alone`` test to the next (they are one xdist group: one wait for the room for
    all of them). In one process every test is alone already: nothing to lock."""

    def __init__(self, shared_dir):
        self.gate = open(shared_dir / "alone.gate", "a")
        self.room = open(shared_dir / "alone.room", "a")
        self.held = None                       # "alone", "shared" or None

    def enter(self, alone: bool) -> None:
        want = "alone" if alone else "shared"
        if self.held == want:
            return
        self.leave()
        fcntl.flock(self.gate, fcntl.LOCK_EX)
        fcntl.flock(self.room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(self.gate, fcntl.LOCK_UN)
        self.held = want

    def leave(self) -> None:
        if self.held is not None:
            fcntl.flock(self.room, fcntl.LOCK_UN)
            fcntl.flock(self.gate, fcntl.LOCK_UN)
            self.held = None


def _alone(item) -> bool:
    return item is not None and item.get_closest_marker("alone") is not None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # setup (module fixtures included), call and teardown, all inside the test's turn
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return (yield)
    turns = getattr(item.config, "_bench_turns", None)
    if turns is None:
        # the workers' temporary folders share the run's: pytest's clean-up removes the locks
        turns = _Turns(item.config._tmp_path_factory.getbasetemp().parent)
        item.config._bench_turns = turns
    turns.enter(_alone(item))
    try:
        return (yield)
    finally:
        if not (_alone(item) and _alone(nextitem)):
            turns.leave()


# a test (``@alone``) or a parameter (``pytest.param(..., marks=ALONE)``) that runs alone
ALONE = [pytest.mark.alone, pytest.mark.xdist_group("alone")]


def alone(test):
    for mark in ALONE:
        test = mark(test)
    return test


def pytest_collection_modifyitems(items):
    """The ``alone`` tests last: a worker dealt them waits for the others' tests to end, which
    at the end of the run costs nothing (with ``--no-loadscope-reorder``, xdist deals groups in
    this order)."""
    items.sort(key=_alone)
