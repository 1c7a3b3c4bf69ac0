"""One truth on every screen: the number `bench run` prints for a cell is the one the report's
tables, its figures, `bench check` and `bench compare` show, under the same name."""
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchbench.cli import main
from benchbench.report import figures
from benchbench.report.html import _fmt
from benchbench.report.tables import backend_table, cells_summary, load_runs
from conftest import alone

SUITE = """\
name: truth
device: cpu
models: [fassd_net_l2]
resolutions: [[64, 128], [96, 192]]
backends: [{name: eager, precision: fp32}, {name: channels_last, precision: fp32}]
timing: {protocol: robust, warmup: 1, min_iterations: 5, max_time_s: 0.2}
"""


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.fixture(scope="module")
def busy_run(tmp_path_factory):
    """A real run while other processes keep half the cores busy (50% of the CPUs, twice the
    busy threshold; the run keeps a core of its own, so it is not slowed to a crawl): its cells
    say so."""
    root = tmp_path_factory.mktemp("truth")
    (root / "truth.yaml").write_text(SUITE)
    spinners = [multiprocessing.get_context("spawn").Process(target=_spin, args=(120,))
                for _ in range(max(1, (os.cpu_count() or 2) // 2))]
    for p in spinners:
        p.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "benchbench.cli", "run",
                               str(root / "truth.yaml"), "--out", str(root), "--no-progress"],
                              capture_output=True, text=True, timeout=600)
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(re.search(r"^(\S+): 4 ok", proc.stdout, re.M).group(1))
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    return run_dir, proc, {r["cell_id"]: r for r in records if r["status"] == "ok"}


# the tests that use `busy_run` go to one pytest-xdist worker, which makes it once
shares_busy_run = pytest.mark.xdist_group("test_one_truth.busy_run")


@shares_busy_run
def test_a_cells_fps_is_one_number_under_one_name_everywhere(busy_run, tmp_path):
    run_dir, proc, records = busy_run
    assert len(records) == 4
    for r in records.values():       # the robust protocol's definition, in the record itself
        assert r["fps"] == pytest.approx(1000 / r["latency_ms_p50"])
        assert r["protocol"]["fps_definition"].startswith("1000 x batch / latency_ms_p50")
    # the run table: header names the definition, each row shows the record's FPS
    lines = proc.stdout.splitlines()
    assert lines[0].split()[3:5] == ["FPS", "(1000/p50)"]
    for line in lines[1:5]:
        model, size, backend, fps = line.split()[:4]
        r = next(r for r in records.values() if r["height"] == int(size.split("x")[0])
                 and r["backend"] == backend.split("-")[0])
        assert fps.rstrip("!") == f"{r['fps']:.1f}"
    # the report's tables: the same FPS, under the same header
    frame, _ = load_runs([run_dir])
    summary, _ = cells_summary(frame)
    backends = backend_table(frame)
    for table in (summary, backends):
        assert "FPS (1000/p50)" in table.columns
    by_cell = dict(zip(frame["cell_id"], frame["fps"]))
    assert by_cell == pytest.approx({k: r["fps"] for k, r in records.items()})
    assert sorted(summary["FPS (1000/p50)"]) == pytest.approx(sorted(by_cell.values()))
    assert sorted(backends["FPS (1000/p50)"]) == pytest.approx(sorted(by_cell.values()))
    # ... on the page as _fmt writes it
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    html = out.read_text()
    for value in by_cell.values():
        assert f"<td>{_fmt(value)}</td>" in html
    assert "FPS (1000/p50): 1000 x batch / latency_ms_p50" in html
    # the figures plot the same values, on an axis that names them
    for draw in (figures.fps_vs_resolution, figures.fps_by_backend,
                 figures.measured_speed_cost):
        fig, _ = draw(frame)
        plotted = []
        for ax in fig.axes:
            if not ax.get_visible() or not ax.get_title():
                continue
            if ax.get_ylabel():
                assert "FPS (1000/p50)" in ax.get_ylabel()
            for bars in ax.containers:             # errorbar(): its data line
                plotted += [float(y) for y in bars.lines[0].get_ydata()]
            for coll in ax.collections:            # scatter(): one per model
                if coll.get_label() == figures.BUSY_LABEL or coll.get_label().startswith("_"):
                    continue
                plotted += [float(y) for _, y in coll.get_offsets()]
        assert sorted(set(round(v, 9) for v in plotted)) == \
            pytest.approx(sorted(by_cell.values())), draw.__name__


@shares_busy_run
def test_busy_cells_are_marked_where_their_numbers_are_shown(busy_run, tmp_path):
    run_dir, proc, records = busy_run
    busy = [r for r in records.values() if r["busy"]]
    assert busy, "processes spinning on half the cores made no cell busy"
    assert all("other processes used" in r["busy_reasons"][0] for r in busy)
    # the run table: a marker on the FPS, the status column, one warning line
    rows = [line for line in proc.stdout.splitlines()[1:5]]
    assert sum(line.split()[3].endswith("!") for line in rows) == len(busy)
    assert sum(line.endswith(" ok, busy") for line in rows) == len(busy)
    assert f"bench: warning: {len(busy)} of 4 measured cell(s) (marked '!') were timed while " \
           f"the machine was busy (other processes used" in proc.stderr
    # the report: a banner, BUSY in the cells table, orange crosses on the figures' points
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    html = out.read_text()
    assert f'id="busy-banner">{len(busy)} of 4 measured cells were timed while the machine ' \
           f'was busy' in html
    assert html.count("<td>ok, BUSY</td>") == len(busy)
    frame, _ = load_runs([run_dir])
    for draw in (figures.fps_vs_resolution, figures.fps_by_backend,
                 figures.measured_speed_cost):
        fig, note = draw(frame)
        crosses = [c for ax in fig.axes for c in ax.collections
                   if c.get_label() == figures.BUSY_LABEL]
        assert sum(len(c.get_offsets()) for c in crosses) == len(busy), draw.__name__
        assert f"orange crosses: {len(busy)} cell(s) timed while the machine was busy" in note


PLUGIN = '''
from torch import nn
import benchbench


@benchbench.register_model(family="user", paper="my own model", output_stride=1)
def truth_net(*, num_classes: int = 19) -> nn.Module:
    layers = [nn.Conv2d(3, 16, 3, padding=1)]
    for _ in range({blocks}):
        layers += [nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(16, num_classes, 1))
'''
PAIRED = """\
name: paired
device: cpu
plugins: [pr/my_models.py, {path: main/my_models.py, prefix: main_}]
models: [truth_net, main_truth_net]
resolutions: [[32, 64]]
timing: {protocol: robust, warmup: 2, min_iterations: 10, max_time_s: 0.15, threads: 1,
         repeats: 5, reference: main_truth_net@32x64/b1/eager-fp32, reference_interleave: true,
         seed: 0}
"""
CELL = "truth_net@32x64/b1/eager-fp32/cpu"
REFERENCE = "main_truth_net@32x64/b1/eager-fp32/cpu"


def _bench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "benchbench.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def paired_runs(tmp_path_factory):
    """The paired gate as CI runs it: the main branch's model interleaved as the reference;
    run A with the pull request equal to main, run B with twice its blocks (more work)."""
    runs = []
    for name, blocks in (("a", 4), ("b", 8)):
        root = tmp_path_factory.mktemp(f"paired_{name}")
        for part, n in (("main", 4), ("pr", blocks)):
            (root / part).mkdir()
            (root / part / "my_models.py").write_text(PLUGIN.format(blocks=n))
        (root / "paired.yaml").write_text(PAIRED)
        proc = _bench("run", "paired.yaml", "--out", "res", "--json", "--no-progress", cwd=root)
        assert proc.returncode == 0, proc.stderr
        runs.append(root / json.loads(proc.stdout)["run_dir"])
    return runs


# the tests that use `paired_runs` time a model against its main branch's and assert the
# verdict: they run ahead of the others (tests/_turns.py), in the one pytest-xdist worker that
# runs every alone test, which makes the runs once
@alone
def test_check_rests_its_verdict_on_the_pairing_and_does_not_gate_the_reference(paired_runs,
                                                                                 tmp_path):
    a, b = paired_runs
    plain = _bench("check", b, "--baseline", a, cwd=tmp_path)
    assert plain.returncode == 1, plain.stderr
    headline = plain.stdout.splitlines()[-1]
    assert headline.startswith("FAIL: 1 reference, 1 regressed (latency_rel_p50 over repeats "
                               "(latency / interleaved reference)")
    assert "cancelled per iteration" in headline and "MACHINE CHANGED" not in headline
    row = next(line for line in plain.stdout.splitlines() if line.startswith(REFERENCE))
    assert "reference: the paired reference: its latency moved x" in row
    result = json.loads(_bench("check", b, "--baseline", a, "--json", cwd=tmp_path).stdout)
    assert result["regressions"] == [CELL]
    cells = {c["cell_id"]: c for c in result["cells"]}
    assert cells[REFERENCE]["verdict"] == "reference" and cells[REFERENCE]["ratio"] is None
    assert cells[CELL]["ratio"] > 1.3


@alone
def test_compare_shows_the_numbers_check_gives(paired_runs, tmp_path):
    a, b = paired_runs
    for extra in ((), ("--metric", "latency_ms_p50")):
        result = json.loads(_bench("check", b, "--baseline", a, "--json", *extra,
                                   cwd=tmp_path).stdout)
        page = _bench("compare", a, b, "-o", tmp_path / "cmp.html", *extra, cwd=tmp_path)
        assert page.returncode == 0, page.stderr
        html = (tmp_path / "cmp.html").read_text()
        for cell in result["cells"]:
            if cell["ratio"] is None:
                continue
            row = re.search(rf"<tr><td>{re.escape(cell['cell_id'])}</td>(.*?)</tr>", html,
                            re.S).group(1)
            lo, hi = cell["ci95"]
            assert f"<td>{cell['ratio']:.3f}</td>" in row
            assert f"<td>{lo:.3f} &ndash; {hi:.3f}</td>" in row
            assert f'class="{cell["verdict"]}"' in row
        assert f"--metric {result['metric']}" in html
