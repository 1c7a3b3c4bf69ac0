"""bench baseline save keeps a history; bench history draws it with its change points (PELT);
bench check --baseline history gates each cell with its own noise band."""
import itertools
import json
import math
import random
import re
import subprocess
from pathlib import Path

import pytest

from benchbench import history as hist
from benchbench.regress import BASELINE_SCHEMA, compare, _from_history
from test_gate import ENV, plugin_file, suite_text
from test_report import _chromium
from conftest import alone


def points(levels, spread=0.01, n=5, seed=0, commits=None):
    rng = random.Random(seed)
    out = []
    for i, level in enumerate(levels):
        reps = [level * (1 + rng.uniform(-spread, spread)) for _ in range(n)]
        out.append(hist.Point(commits[i] if commits else f"c{i:07d}", f"2026-12-0{i}",
                              sorted(reps)[n // 2], reps))
    return out


def test_a_step_is_found_where_it_is_and_measured():
    steps = hist.change_points(points([10, 10, 10, 12, 12, 12]))
    assert [(s.index, s.commit) for s in steps] == [(3, "c0000003")]
    assert steps[0].ratio == pytest.approx(1.2, rel=0.01)
    assert steps[0].label.startswith("+20.") and steps[0].label.endswith("at c0000003")
    assert hist.change_points(points([10] * 8, spread=0.02)) == []
    # a real 2% step is a change point, but below min_step it is not marked
    assert hist.change_points(points([10, 10, 10, 10.2, 10.2, 10.2], spread=0.001),
                              min_step=0.05) == []
    small = hist.change_points(points([10, 10, 10, 10.2, 10.2, 10.2], spread=0.001),
                               min_step=0.0)
    assert [s.index for s in small] == [3]


def _brute_force(levels, sigma):
    """The optimal partitioning by enumeration: min over breakpoint sets of the squared-error
    cost in sigma units + 2 ln n per change (what PELT computes exactly, faster)."""
    n, best = len(levels), None
    ys = [y / sigma for y in levels]
    for k in range(n):
        for cuts in itertools.combinations(range(1, n), k):
            bounds = (0, *cuts, n)
            cost = sum(sum((y - sum(seg) / len(seg)) ** 2 for y in seg)
                       for seg in (ys[a:b] for a, b in zip(bounds, bounds[1:])))
            cost += 2 * math.log(n) * k
            if best is None or cost < best[0] - 1e-9:
                best = (cost, cuts)
    return list(best[1])


def test_the_change_points_are_the_exact_optimum_of_the_penalised_cost():
    rng = random.Random(4)
    for trial in range(30):
        levels = [10 * (1.15 if i >= rng.randrange(2, 7) else 1.0) * rng.uniform(0.97, 1.03)
                  for i in range(7)]
        pts = points(levels, spread=0.02, seed=trial)
        sigma = hist.noise_sigma(pts)
        expected = _brute_force([math.log(p.latency_ms) for p in pts], sigma)
        assert [s.index for s in hist.change_points(pts, min_step=0.0)] == expected


def test_noise_sigma_and_band():
    pts = points([10, 10.4, 9.6, 10.2, 9.8, 10.0], spread=0.0, n=1)
    logs = [math.log(p.latency_ms) for p in pts]
    diffs = [b - a for a, b in zip(logs, logs[1:])]
    centre = sorted(diffs)[2]
    mad = sorted(abs(d - centre) for d in diffs)[2]
    assert hist.noise_sigma(pts) == pytest.approx(1.4826 * mad / math.sqrt(2))
    band, runs = hist.noise_band(pts)
    assert runs == 6 and 0.04 < band < 0.15
    # the band reads only the runs since the last change point
    stepped = points([10, 10, 10, 13, 13.1, 12.9, 13.05], spread=0.002, n=3)
    band, runs = hist.noise_band(stepped)
    assert runs == 4 and band < 0.03
    assert hist.noise_band(points([10, 13], spread=0.002)) == (None, 1)


def baseline_file(folder: Path, i: int, cells: dict, commit: str) -> Path:
    data = {"schema": BASELINE_SCHEMA, "suite": "gate", "device_dir": "cpu-x",
            "created_at": f"2026-12-{i + 1:02d}T10:00:00+0000", "commit": commit,
            "environment": dict(ENV), "cells": {}}
    for cell_id, value in cells.items():
        data["cells"][cell_id] = {
            "status": "ok", "latency_ms_p50": value, "protocol": "robust", "threads": 1,
            "samples_ms": [], "repeats": [{"round": k, "latency_ms_p50": value * f}
                                          for k, f in enumerate((0.995, 1.0, 1.005))]}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / hist.entry_name(data)
    path.write_text(json.dumps(data))
    return path


def test_check_against_history_gates_each_cell_with_its_own_band(tmp_path):
    folder = tmp_path / "cpu-x" / "history" / "gate"
    quiet = [10.0, 10.05, 9.98, 10.02, 10.0, 10.03]
    loud = [10.0, 11.5, 9.0, 10.8, 9.4, 10.6]
    for i, (q, n) in enumerate(zip(quiet, loud)):
        baseline_file(folder, i, {"quiet": q, "loud": n, "young": 10.0 if i < 4 else 14.0},
                      f"{i:040x}")
    current = json.loads(sorted(folder.glob("*.json"))[-1].read_text())
    current["cells"] = {k: dict(v, repeats=[dict(r, latency_ms_p50=r["latency_ms_p50"] * 1.08)
                                            for r in v["repeats"]])
                        for k, v in current["cells"].items()}
    baseline, bands, source = _from_history(current, tmp_path, 0.05)
    assert source.startswith("history: ") and "(latest of 6)" in source
    assert baseline["commit"] == f"{5:040x}"
    assert bands["quiet"][0] == pytest.approx(0.01)          # a band under 1% is raised to it
    assert bands["loud"][0] > 0.15                           # +-15% run to run: its own band
    assert bands["young"] == (0.05, "5% (global: 2 run(s) in the history since its last "
                                    "change, 3 needed for a band)")
    # more repeats in the current run, so the rank test can reach alpha
    for cell in current["cells"].values():
        cell["repeats"] = [dict(r, latency_ms_p50=r["latency_ms_p50"] * f) for r in
                           cell["repeats"] for f in (1.0, 1.001)]
    for cell in baseline["cells"].values():
        cell["repeats"] = [dict(r, latency_ms_p50=r["latency_ms_p50"] * f) for r in
                           cell["repeats"] for f in (1.0, 1.001)]
    v = {x.cell_id: x for x in compare(baseline, current, bands=bands).verdicts}
    assert v["quiet"].verdict == "regressed" and v["quiet"].threshold == pytest.approx(0.01)
    assert "the cell's noise band over its last 6 runs" in v["quiet"].note
    assert v["loud"].verdict == "unchanged" and "noise band" in v["loud"].note


def bench(*args, cwd):
    return subprocess.run(["bench", *map(str, args)], cwd=cwd, capture_output=True, text=True)


@alone          # the step is found in real timings: ahead of the others (tests/_turns.py)
def test_saved_baselines_become_a_history_page_with_a_marked_step(tmp_path):
    """Three real runs saved as baselines of three commits, the third model with three times
    the blocks: bench history marks the step at the third commit, in headless Chromium."""
    plugin, name = plugin_file(tmp_path, blocks=2)
    suite = tmp_path / "gate.yaml"
    suite.write_text(suite_text(name, timing="repeats: 3, seed: 1"))
    root = tmp_path / "baselines"
    for i, blocks in enumerate((2, 2, 6, 6)):
        plugin.write_text(plugin.read_text().replace(
            re.search(r"range\(\d+ \+ extra\)", plugin.read_text()).group(0),
            f"range({blocks} + extra)"))
        out = json.loads(bench("run", suite, "--out", tmp_path / "runs", "--json",
                               "--no-progress", cwd=tmp_path).stdout)
        saved = bench("baseline", "save", out["run_dir"], "--dir", root, "--commit",
                      f"{'abcd'[i] * 8}{i}", "--keep", 3, cwd=tmp_path)
        assert saved.returncode == 0, saved.stderr
    [folder] = hist.find_histories(root)
    assert [p.name.split("-")[1][:9] for p in sorted(folder.glob("*.json"))] == \
        ["bbbbbbbb1", "cccccccc2", "dddddddd3"]            # --keep 3: the oldest is gone
    # the newest run against the history: each cell's threshold says where it came from
    gate = bench("check", out["run_dir"], "--baseline", "history", "--dir", root, "--json",
                 cwd=tmp_path)
    assert gate.returncode == 0, gate.stderr
    checked = json.loads(gate.stdout)
    assert checked["baseline"].startswith("history: ") and "(latest of 3)" in checked["baseline"]
    [cell] = checked["cells"]
    # 2 runs since the step at cccccccc2, or 1 where this machine's run-to-run noise between
    # the two 6-block runs is itself a change point (the band's reset counts any step)
    assert cell["threshold"] == 0.05 and re.search(
        r"threshold 5% \(global: [12] run\(s\) in the history since its last change, 3 needed "
        r"for a band\)$", cell["note"]), cell["note"]
    page = tmp_path / "history.html"
    done = bench("history", "--dir", root, "-o", page, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [steps] = json.loads(done.stdout)["steps"].values()
    label = steps[next(iter(steps))][0]    # a later one would be this machine's noise
    assert label.endswith("at cccccccc2") and float(label.split("%")[0]) > 30
    html = page.read_text()
    assert "PELT (Killick, Fearnhead &amp; Eckley 2012" in html and label in html
    if _chromium() is None:
        pytest.skip("no Chromium (.ci/run installs Debian's)")
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert not [ln for ln in proc.stderr.splitlines() if re.search(r":CONSOLE[:(]", ln)]
    dom = proc.stdout
    assert re.search(r'<g id="step-0"><title>change point: \+\d+\.\d% at cccccccc2</title>', dom)
    assert len(re.findall(r'<g id="bbpt-\d"><title>', dom)) == 3
