"""The turns of tests/_turns.py under pytest-xdist: an ``alone`` test (one that times models
against each other) runs ahead of every test beside it -- those run at a niceness of 19, it at
its worker's own -- or, where a niceness cannot be lowered again (no root), while no other test
runs; the other tests share the machine."""
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = '''
import json, os, time
import pytest
from _turns import alone


def _span(name):
    start = time.time()
    time.sleep(1.0)
    with open(os.environ["TURNS_LOG"], "a") as f:
        f.write(json.dumps([name, start, time.time(),
                            os.getpriority(os.PRIO_PROCESS, 0)]) + "\\n")


@pytest.mark.parametrize("i", range(9))
def test_shared(i):
    _span(f"shared{i}")


@alone
def test_alone_a():
    _span("alone_a")


@alone
def test_alone_b():
    _span("alone_b")
'''


def _can_lower_a_niceness() -> bool:
    """Root's privilege (CAP_SYS_NICE), which a container's root may lack."""
    probe = ("import os; os.setpriority(os.PRIO_PROCESS, 0, 19); "
             "os.setpriority(os.PRIO_PROCESS, 0, 18)")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def _at_niceness_0():
    """The inner session starts where a user's would (this test's own worker is niced)."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def test_an_alone_test_runs_ahead_of_every_test_beside_it(tmp_path):
    pytest.importorskip("xdist")
    # the turns tests/conftest.py takes, without the rest of it (torch, in every worker); the
    # alone tests are written last, and dealt first
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from _turns import (pytest_collection, pytest_collection_modifyitems,  # noqa\n"
        "                    pytest_runtest_protocol)\n")
    (tmp_path / "test_spans.py").write_text(TESTS)
    log = tmp_path / "spans.jsonl"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", "3", "--dist", "loadgroup", "--no-loadscope-reorder",
                           "--basetemp", str(tmp_path / "basetemp"), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**{k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
                               "TURNS_LOG": str(log)}, preexec_fn=_at_niceness_0)
    assert done.returncode == 0, done.stdout + done.stderr
    spans = {name: (start, end, niceness)
             for name, start, end, niceness in map(json.loads, log.read_text().splitlines())}
    assert len(spans) == 11
    lowers = _can_lower_a_niceness()
    own = 0 if lowers else os.getpriority(os.PRIO_PROCESS, 0)

    def overlap(a, b):
        return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]

    shared = [n for n in spans if n.startswith("shared")]
    assert {spans[n][2] for n in shared} == {min(own + 19, 19)}, spans
    beside = {name: [o for o in spans if o != name and overlap(name, o)]
              for name in ("alone_a", "alone_b")}
    if lowers:                     # root lowers a niceness again: ahead of the others, beside them
        assert spans["alone_a"][2] == spans["alone_b"][2] == own, spans
        assert beside["alone_a"] and beside["alone_b"], spans        # it did not wait for them
        assert all(n.startswith("shared") for b in beside.values() for n in b), spans
    else:                          # otherwise by itself
        assert beside == {"alone_a": [], "alone_b": []}, spans
    assert any(overlap(a, b) for a in shared for b in shared if a != b), spans   # in parallel
