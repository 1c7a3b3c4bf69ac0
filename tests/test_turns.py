"""The turns of tests/_turns.py under pytest-xdist: an ``alone`` test (one that times models
against each other) runs while no other test runs; the other tests share the machine."""
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
        f.write(json.dumps([name, start, time.time()]) + "\\n")


@alone
def test_alone_a():
    _span("alone_a")


@alone
def test_alone_b():
    _span("alone_b")


@pytest.mark.parametrize("i", range(9))
def test_shared(i):
    _span(f"shared{i}")
'''


def test_an_alone_test_runs_while_no_other_does(tmp_path):
    pytest.importorskip("xdist")
    # the turns tests/conftest.py takes, without the rest of it (torch, in every worker), nor
    # the sort that deals the alone tests last: they come first here, beside the others
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from _turns import pytest_runtest_protocol  # noqa\n")
    (tmp_path / "test_spans.py").write_text(TESTS)
    log = tmp_path / "spans.jsonl"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", "3", "--dist", "loadgroup", "--no-loadscope-reorder",
                           "--basetemp", str(tmp_path / "basetemp"), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**{k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
                               "TURNS_LOG": str(log)})
    assert done.returncode == 0, done.stdout + done.stderr
    spans = {name: (start, end)
             for name, start, end in map(json.loads, log.read_text().splitlines())}
    assert len(spans) == 11

    def overlap(a, b):
        return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]

    for name in ("alone_a", "alone_b"):
        assert not [other for other in spans if other != name and overlap(name, other)], spans
    shared = [n for n in spans if n.startswith("shared")]
    assert any(overlap(a, b) for a in shared for b in shared if a != b), spans   # in parallel
