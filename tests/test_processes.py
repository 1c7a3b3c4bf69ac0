"""timing.processes: repeats in fresh worker processes, and bench check's hierarchical
bootstrap over processes, then rounds (Kalibera & Jones 2013)."""
import json
import random
import statistics
from pathlib import Path

import pytest

from benchbench.cli import main
from benchbench.errors import SuiteError
from benchbench.regress import compare, hierarchical_bootstrap
from benchbench.store import read_records
from benchbench.suite import load_suite
from test_gate import ENV, plugin_file, suite_text, verdicts


def test_processes_run_each_share_of_rounds_in_a_fresh_process(tmp_path, capsys):
    plugin, name = plugin_file(tmp_path)
    suite = tmp_path / "gate.yaml"
    suite.write_text(suite_text(f"{name}, {{name: {name}, args: {{extra: 2}}}}",
                                timing="repeats: 2, processes: 2, reference: builtin, seed: 5"))
    code = main(["run", str(suite), "--out", str(tmp_path / "res"), "--json", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] == 2
    info = json.loads((Path(out["run_dir"]) / "run.json").read_text())
    assert len(info["reference"]["per_round_ms"]) == 4          # every round opened by it
    records = read_records(Path(out["run_dir"]) / "records.jsonl")
    for r in records:
        assert [(rep["round"], rep["process"]) for rep in r["repeats"]] == \
            [(0, 0), (1, 0), (2, 1), (3, 1)]
        assert r["repeats_requested"] == 4 and r["processes"] == 2
        assert r["executor"]["name"] == "local" and r["executor"]["processes"] == 2
        assert r["params"] > 0                    # the first round ran every stage
        for rep in r["repeats"]:
            assert rep["drift_normalised"] == pytest.approx(
                rep["centre_ms"] / info["reference"]["per_round_ms"][rep["round"]])
        assert r["latency_ms_p50"] == statistics.median(r["repeat_centres_ms"])
    # the baseline keeps each repeat's process, and the gate resamples processes first
    assert main(["baseline", "save", out["run_dir"], "--dir", str(tmp_path / "b"),
                 "--json"]) == 0
    base = Path(json.loads(capsys.readouterr().out)["baseline"])
    assert [rep["process"] for rep in json.loads(base.read_text())["cells"][
        records[0]["cell_id"]]["repeats"]] == [0, 0, 1, 1]


def test_processes_are_the_local_executors(tmp_path):
    plugin, name = plugin_file(tmp_path)
    suite = tmp_path / "s.yaml"
    suite.write_text(suite_text(name, extra="executor: process\n",
                                timing="repeats: 2, processes: 3"))
    with pytest.raises(SuiteError, match=r"timing.processes: the repeats run in fresh processes "
                                         r"under the local executor only"):
        load_suite(suite)
    suite.write_text(suite_text(name, timing="processes: 0"))
    with pytest.raises(SuiteError, match="timing.processes"):
        load_suite(suite)


def grouped_run(groups: list[list[float]]):
    reps = [{"round": i, "process": p, "latency_ms_p50": v, "centre_ms": v}
            for i, (p, v) in enumerate((p, v) for p, g in enumerate(groups) for v in g)]
    return {"environment": dict(ENV), "cells": {"c": {
        "status": "ok", "repeats": reps, "samples_ms": [], "protocol": "robust", "threads": 1}}}


def test_a_process_level_spread_is_not_mistaken_for_a_regression():
    """Rounds inside a process agree to 0.1%, processes differ by +-5%: the 15 rounds per side
    taken as independent (Mann-Whitney) call +8% a regression at p = 0.0003; resampling the
    processes first says three processes that spread are too few to tell."""
    base = [[10 * o * (1 + 0.001 * k) for k in range(5)] for o in (0.95, 1.0, 1.05)]
    cur = [[10 * o * (1 + 0.001 * k) for k in range(5)] for o in (1.02, 1.08, 1.14)]
    flat = verdicts(compare(
        {"environment": ENV, "cells": {"c": _flat(base)}},
        {"environment": ENV, "cells": {"c": _flat(cur)}}))["c"]
    assert flat.verdict == "regressed" and flat.p_value < 0.001
    v = verdicts(compare(grouped_run(base), grouped_run(cur)))["c"]
    assert v.ratio == pytest.approx(flat.ratio) == pytest.approx(1.08)
    assert v.unit.startswith("repeats in 3 | 3 processes (hierarchical bootstrap")
    assert v.ci95[0] < 1 < v.ci95[1] and v.ci95[1] - v.ci95[0] > 1.5 * (flat.ci95[1] -
                                                                         flat.ci95[0])
    assert v.verdict == "inconclusive" and v.p_value > 0.1


def _flat(groups):
    values = [v for g in groups for v in g]
    return {"status": "ok", "samples_ms": [], "protocol": "robust", "threads": 1,
            "repeats": [{"round": i, "latency_ms_p50": v} for i, v in enumerate(values)]}


def test_a_real_step_over_steady_processes_is_a_regression():
    rng = random.Random(2)
    base = [[10 * rng.uniform(0.99, 1.01) for _ in range(3)] for _ in range(5)]
    cur = [[12 * rng.uniform(0.99, 1.01) for _ in range(3)] for _ in range(5)]
    v = verdicts(compare(grouped_run(base), grouped_run(cur)))["c"]
    assert v.verdict == "regressed" and v.p_value < 0.01 and v.ci95[0] > 1.15
    # two processes per side: the bootstrap cannot stand for the process population
    two = verdicts(compare(grouped_run(base[:2]), grouped_run(cur[:2])))["c"]
    assert two.verdict == "inconclusive" and "timing.processes >= 3" in two.note


def test_the_hierarchical_bootstrap_resamples_processes_then_rounds():
    ci, p = hierarchical_bootstrap([[2.0, 2.0], [2.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]])
    assert ci == (2.0, 2.0) and p == pytest.approx(2 / 2001)
    ci, p = hierarchical_bootstrap([[1.0], [1.0]], [[1.0], [1.0]])
    assert ci == (1.0, 1.0) and p == 1.0
