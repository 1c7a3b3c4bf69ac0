"""Under pytest-xdist, tests that measure this machine (``alone``) run ahead of all the others
(tests/conftest.py uses these hooks; tests/test_turns.py checks them in a pytest session of its
own)."""
import fcntl
import os

import pytest

# The niceness every pytest-xdist worker (and every process it starts: bench runs, SLURM and Ray
# daemons, browsers) takes for the tests that share the machine. Measured here with the CI
# examples' A/A pair beside three single-threaded bench runs in a loop: at the same priority its
# ratio ranged 0.68-1.02 with 95% CIs up to [0.24, 3.49] (one of five failed); with the three
# at this niceness, 0.987-1.008 with CIs within [0.967, 1.043], five of five "unchanged".
SHARED_NICENESS = 19


class _Turns:
    """Under pytest-xdist a test marked ``alone`` (it times models against each other, or reads
    how busy the machine is) runs at this worker's own priority while every other test, in every
    worker, runs at ``SHARED_NICENESS``: the kernel gives the niced ones only what the alone
    test leaves, so they go on using the other core instead of waiting (the alone tests are
    dealt first, beside the rest). Lowering a niceness again needs root (CAP_SYS_NICE); where
    that is refused, or pytest itself runs at niceness 19, an alone test runs while no other
    test runs instead: the room is a shared/exclusive flock, and the gate in front of it keeps
    newcomers out while an alone test waits, so a stream of shared tests cannot starve it. In
    one process every test is alone already: nothing to do."""

    def __init__(self, shared_dir):
        self.gate = open(shared_dir / "alone.gate", "a")
        self.room = open(shared_dir / "alone.room", "a")
        self.own_niceness = os.getpriority(os.PRIO_PROCESS, 0)
        self.shared_niceness = min(self.own_niceness + SHARED_NICENESS, 19)
        self.held = None                       # "alone", "shared" or None
        self.exclusive = False                 # an alone test holds the room for itself

    def enter(self, alone: bool) -> None:
        want = "alone" if alone else "shared"
        if self.held == want:
            return
        self.leave()
        ahead = self.own_niceness < self.shared_niceness   # not where pytest itself is niced
        if alone and ahead and self._set_niceness(self.own_niceness):
            self._lock(exclusive=False)        # ahead of the others, not instead of them
        elif alone:
            self._lock(exclusive=True)
        else:
            self._set_niceness(self.shared_niceness)
            self._lock(exclusive=False)
        self.held = want

    def leave(self) -> None:
        if self.held is not None:
            fcntl.flock(self.room, fcntl.LOCK_UN)
            if self.exclusive:
                fcntl.flock(self.gate, fcntl.LOCK_UN)
            self.held, self.exclusive = None, False

    def _lock(self, exclusive: bool) -> None:
        fcntl.flock(self.gate, fcntl.LOCK_EX)
        fcntl.flock(self.room, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if not exclusive:
            fcntl.flock(self.gate, fcntl.LOCK_UN)
        self.exclusive = exclusive

    @staticmethod
    def _set_niceness(value: int) -> bool:
        """This worker's niceness (its later children inherit it); False if not allowed."""
        try:
            os.setpriority(os.PRIO_PROCESS, 0, value)
        except PermissionError:
            return False
        return True


def _alone(item) -> bool:
    return item is not None and item.get_closest_marker("alone") is not None


def _turns(config) -> _Turns:
    turns = getattr(config, "_bench_turns", None)
    if turns is None:
        # the workers' temporary folders share the run's: pytest's clean-up removes the locks
        turns = _Turns(config._tmp_path_factory.getbasetemp().parent)
        config._bench_turns = turns
    return turns


def pytest_collection(session):
    """A worker collects at the shared niceness, so that an alone test that starts while the
    others still collect is already ahead of them."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        _turns(session.config).enter(alone=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # setup (module fixtures included), call and teardown, all inside the test's turn
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return (yield)
    turns = _turns(item.config)
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
    """The ``alone`` tests first: they take a while and use one core, and the others run
    beside them on the rest (with ``--no-loadscope-reorder``, xdist deals groups in this
    order). Where they must run by themselves (no root), first or last costs the same."""
    items.sort(key=lambda item: not _alone(item))
