"""The HTML report: figures and tables from real CPU runs, a merged run with a GPU record, and a
real browser (headless Chromium) opening it without console errors."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchbench.cli import main
from benchbench.report.figures import pareto_front
from benchbench.report.tables import comparison_table, load_runs

SUITE = """\
name: {name}
device: cpu
models: [fassd_net_l2, fassd_net]
resolutions: [[64, 128], [128, 256]]
timing: {{protocol: {protocol}, warmup: 1, iterations: 3, min_iterations: 5, max_time_s: 0.1}}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import benchbench

    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for name, protocol in (("robust_run", "robust"), ("paper_run", "paper")):
        suite = root / f"{name}.yaml"
        suite.write_text(SUITE.format(name=name, protocol=protocol))
        dirs.append(benchbench.run_suite(suite, out_dir=root, progress=False).run_dir)
    dirs.append(_gpu_run(root))
    return dirs


# the tests that use `runs` go to one pytest-xdist worker, which makes it once
shares_runs = pytest.mark.xdist_group("test_report.runs")


def _gpu_run(root: Path) -> Path:
    """A hand-written record on an H100 (not a measurement: it exercises the report's GPU paths,
    normalisation with a spec-estimate factor and the roofline, on a machine without a GPU)."""
    run = root / "synthetic-h100"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "run_id": "synthetic-h100", "suite": {"name": "synthetic"}, "suite_path": "-",
        "device": "cuda", "timing": {"protocol": "paper"}, "created_at": "-",
        "environment": {"gpu_name": "NVIDIA H100 80GB HBM3", "versions": {}}}))
    rec = {"run_id": "synthetic-h100", "cell_id": "fassd_net@1024x2048", "model": "fassd_net",
           "height": 1024, "width": 2048, "batch": 1, "backend": "eager", "precision": "fp16",
           "device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "target": "h100",
           "status": "ok", "fps": 242.49, "params": 2845351, "gflops": 45.112,
           "macs": 45187883008, "cio": 352952320, "moc": 126.6, "protocol": {"name": "paper"}}
    (run / "records.jsonl").write_text(json.dumps(rec) + "\n")
    return run


@shares_runs
def test_single_cpu_run_report(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(runs[0]), "-o", str(out)]) == 0
    html = out.read_text()
    # FPS vs size, speed/cost, latency boxes as PNG; the trade-off inline as SVG (hover titles)
    assert html.count("data:image/png;base64,") == 3 and html.count("<svg") == 1
    for name in ("fps_vs_resolution", "fps_miou_tradeoff", "measured_speed_cost",
                 "latency_distributions"):
        assert (tmp_path / "r_figures" / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / "r_figures" / f"{name}.svg").exists()
    assert "mIoU vs input resolution (FASSD Fig. 6)</b>: no cell of these runs has accuracy" in html
    assert "Roofline per device</b>: the host CPU: no peak compute / bandwidth" in html
    assert "Per-class IoU (FASSD Table III / VI)</b>: no cell has per-class IoU" in html
    assert "(FASSD Table VIII)</b>: no model was scored" in html
    assert "2,289,454" in html                       # complexity table: FASSD-Net-L2 params
    assert "4 measured cell(s) not placed: 4 x no speed factor for the host CPU" in html


@shares_runs
def test_merged_report_with_a_gpu_run(runs, tmp_path, capsys):
    out = tmp_path / "merged.html"
    assert main(["report", *map(str, runs), "-o", str(out), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    # 6 figures x PNG+SVG: the two runs have different backends, so "per backend" is drawn too
    assert listed["report"] == str(out) and len(listed["figures"]) == 12
    html = out.read_text()
    assert html.count("data:image/png;base64,") == 5   # + roofline for the H100, + per backend
    assert "mix timing protocols (paper, robust)" in html
    assert "spec-based GPU factor" in html
    frame, _ = load_runs(runs)
    h100 = frame[frame["device"] == "cuda"].iloc[0]
    assert h100["fps_norm_1080ti"] == pytest.approx(242.49 / 5.9) and h100["fps_norm_estimate"]
    table, _ = comparison_table(frame)
    row = table[table["device"] == "NVIDIA H100 80GB HBM3"].iloc[0]
    assert row["published_fps"] == 41.1 and row["published_gpu"] == "GTX 1080 Ti"
    assert row["ratio_norm"] == pytest.approx(242.49 / 5.9 / 41.1)


def test_pareto_front():
    pts = [(10, 70), (20, 65), (15, 72), (5, 60), (20, 60)]
    assert pareto_front(pts) == [(15, 72), (20, 65)]


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")


@shares_runs
@pytest.mark.skipif(_chromium() is None, reason="no Chromium (.ci/run installs Debian's)")
def test_report_in_headless_chromium(runs, tmp_path):
    from PIL import Image

    out = tmp_path / "merged.html"
    main(["report", *map(str, runs), "-o", str(out)])
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--window-size=1400,2000", f"--screenshot={shot}", out.as_uri()],
        capture_output=True, text=True, timeout=120)
    console = [line for line in proc.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]
    assert console == []
    img = Image.open(shot).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 20)
    assert img.size == (1400, 2000) and len(colors) > 50     # not a blank page


@shares_runs
@pytest.mark.skipif(_chromium() is None, reason="no Chromium (.ci/run installs Debian's)")
def test_cpu_report_in_chromium_shows_the_users_points(runs, tmp_path):
    out = tmp_path / "cpu.html"
    main(["report", str(runs[0]), "-o", str(out)])
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    # the speed / cost trade-off with the user's cells is an image the browser loaded ...
    assert 'alt="Measured FPS vs GFLOPs per device' in dom
    # ... and the published trade-off is live SVG whose points carry hover titles
    assert "<svg" in dom and re.search(r"<title>[^<]+FPS norm\., [0-9.]+% mIoU</title>", dom)


@shares_runs
def test_cpu_report_shows_the_users_points_and_reasons(runs, tmp_path):
    out = tmp_path / "cpu.html"
    assert main(["report", str(runs[0]), "-o", str(out)]) == 0
    html = out.read_text()
    # the user's own points on a trade-off plot, although a CPU has no GPU factor
    assert "Measured FPS vs GFLOPs per device (speed / cost trade-off, not normalised)" in html
    assert (tmp_path / "cpu_figures" / "measured_speed_cost.png").stat().st_size > 1000
    # power column says why there is none, once for all its rows
    assert html.count("<td>n/a [1]</td>") == 4 and "[2]" not in html
    assert html.count("[1] power sampling not requested (power.sampler: none)") == 1
    # no published counterpart at 64x128 / 128x256: said, not listed as empty rows
    assert "None of the 4 measured cell(s) has a published counterpart" in html
    # compact cells table, everything else behind a <details>
    assert "<details><summary>All columns</summary>" in html
    # timing row shows only what the robust protocol uses
    timing = re.search(r"<th>timing</th><td>(.*?)</td>", html).group(1)
    assert "target_ci_rel=" in timing and not re.search(r"(^|, )iterations=", timing)
    assert "min_iterations=5" in timing
    # the trade-off is inline SVG whose unlabelled published points have hover titles
    assert html.count("<svg") == 1 and re.search(r"<g id=\"bbpt-0\"><title>[^<]+ FPS norm\., ", html)
    # cells timed while the machine was busy say so, and keep their power column's reason
    busy = tmp_path / "busy_run"
    shutil.copytree(runs[0], busy)
    reasons = ["other processes used 60% of the CPUs"]
    lines = [dict(json.loads(line), busy=True, busy_reasons=reasons)
             for line in (busy / "records.jsonl").read_text().splitlines()]
    (busy / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert main(["report", str(busy), "-o", str(tmp_path / "busy.html")]) == 0
    html = (tmp_path / "busy.html").read_text()
    assert html.count("<td>ok, BUSY</td>") == 4 and html.count("<td>n/a [1]</td>") == 4
    assert html.count("[1] power sampling not requested (power.sampler: none)") == 1


@shares_runs
def test_same_run_twice_does_not_duplicate_rows(runs):
    once, _ = load_runs([runs[0]])
    twice, infos = load_runs([runs[0], runs[0]])
    assert len(once) == len(twice) == 4 and len(infos) == 1


def test_all_skipped_run_still_has_the_complexity_table(tmp_path, capsys):
    suite = tmp_path / "cuda.yaml"
    suite.write_text(SUITE.format(name="cuda_run", protocol="robust").replace(
        "device: cpu", "device: cuda"))
    code = main(["run", str(suite), "--out", str(tmp_path), "--no-progress", "--report",
                 str(tmp_path / "r.html")])
    if code == 0:
        pytest.skip("this machine has CUDA: nothing is skipped")
    assert code == 3
    frame, _ = load_runs([next(p for p in tmp_path.iterdir() if (p / "run.json").exists())])
    assert set(frame["status"]) == {"skipped"}
    assert sorted(frame["params"].unique()) == [2_289_454, 2_845_351]
    assert "2,289,454" in (tmp_path / "r.html").read_text()   # Complexity table


def test_labels_never_overlap_and_ticks_are_plain():
    import random
    import warnings

    import matplotlib.pyplot as plt
    from matplotlib import MatplotlibDeprecationWarning

    from benchbench.report.figures import place_labels, plain_log_ticks

    random.seed(1)
    fig, ax = plt.subplots(figsize=(6, 4))
    pts = [(10 ** random.uniform(1, 2.3), random.uniform(65, 80), f"Method-{i}")
           for i in range(60)]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts])
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    placed = place_labels(ax, pts)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in placed]
    frame = ax.get_window_extent(renderer)
    assert 5 < len(placed) <= 60
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        assert not any(a.overlaps(b) for b in boxes[i + 1:])
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"[0-9.]+", t) for t in labels)   # 20, 50, 100: no 2x10^1
    plt.close(fig)
    with warnings.catch_warnings():   # no API that Matplotlib 3.13 removes (boxplot vert=...)
        warnings.simplefilter("error", MatplotlibDeprecationWarning)
        from benchbench.report.figures import latency_distributions
        import pandas as pd
        frame = pd.DataFrame([{"status": "ok", "model": "m", "height": 64, "backend": "eager",
                               "precision": "fp32", "series": "m", "resolution": "64x128",
                               "latency_samples_ms": [1.0, 1.2, 1.1]}])
        fig, _ = latency_distributions(frame)
        plt.close(fig)


def test_fps_error_bars_come_from_the_median_ci():
    import pandas as pd

    from benchbench.report.figures import _fps_with_ci

    rows = pd.DataFrame([{"fps": 100.0, "latency_ms_p50": 10.0, "latency_ci95_ms": [9.0, 12.5]},
                         {"fps": 200.0, "latency_ms_p50": 10.0, "latency_ci95_ms": [9.0, 12.5]},
                         {"fps": 41.1, "latency_ms_p50": None, "latency_ci95_ms": None}])
    fps, (lo, hi) = _fps_with_ci(rows)
    assert fps == [100.0, 200.0, 41.1]          # the record's FPS (batch 2: 2000 / p50)
    assert lo == pytest.approx([100 - 80.0, 200 - 160.0, 0.0])
    assert hi == pytest.approx([1000 / 9 - 100, 2000 / 9 - 200, 0.0])


def _models_drawn(ax) -> set:
    """The models in a panel's legend (not its published-FPS lines, nor the busy crosses that
    cells timed while the machine was busy add)."""
    from benchbench.report import figures
    return {t for t in ax.get_legend_handles_labels()[1]
            if "FPS" not in t and t != figures.BUSY_LABEL}


@shares_runs
def test_a_zoo_scale_report_stays_readable(runs, tmp_path):
    """14 models x 4 sizes (generated from a measured cell, as benchmarks/report_scale.py does):
    no panel holds more than 8 models, a crowded speed/cost panel labels its Pareto front only,
    placed labels never overlap, and the page is no wider than a 1400 px window in Chromium."""
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from report_scale import fan_out

    import benchbench as bb
    from benchbench.report import figures

    # the zoo's own models and, as a user's family too large for one panel, 10 of one family
    zoo = [m for m in bb.list_models() if bb.model_card(m).family in (
        "fassd", "hardnet", "farsee", "desanet")][:14]
    models = zoo
    sizes = [(256, 512), (320, 640), (384, 768), (448, 896)]
    run = fan_out(runs[0], tmp_path, models, sizes)
    frame, _ = load_runs([run])
    assert len(frame) == 56 and frame["model"].nunique() == 14

    fig, note = figures.fps_vs_resolution(frame)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(panels) > 1 and "one panel per model family" in note
    for ax in panels:
        models_drawn = _models_drawn(ax)
        assert 0 < len(models_drawn) <= figures.MAX_SERIES_PER_PANEL
    assert sum(len(_models_drawn(ax)) for ax in panels) == 14   # every model, in one panel each
    plt.close(fig)

    # a user's 13 unregistered models: one family too large for a panel, drawn in two
    users = frame.assign(model=frame["model"].map({m: f"user_net_{i}"
                                                   for i, m in enumerate(models[:13])}))
    users = users[users["model"].notna()].assign(series=lambda f: f["model"])
    fig, _ = figures.fps_vs_resolution(users)
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title())
    assert [t.rsplit(" / ", 1)[-1] for t in titles] == ["other models (1/2)",
                                                        "other models (2/2)"]
    assert sorted(len(_models_drawn(ax))
                  for ax in fig.axes if ax.get_visible() and ax.get_title()) == [6, 7]
    plt.close(fig)

    # more than 12 models with two backends: one speed-up line per family, the backends
    # table's speed-up (here every channels_last cell takes 0.4 of eager's median latency)
    import pandas as pd
    fast = frame.assign(backend="channels_last", latency_ms_p50=frame["latency_ms_p50"] * 0.4)
    fig, note = figures.fps_by_backend(pd.concat([frame, fast], ignore_index=True))
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert "one line per model family" in note
    assert sorted(ln.get_label() for ln in lines) == sorted(set(figures._families(frame["model"])))
    assert all(y == pytest.approx(2.5) for ln in lines for y in ln.get_ydata())
    plt.close(fig)

    fig, note = figures.measured_speed_cost(frame)
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_visible()]
    assert "only the Pareto front is labelled" in note and "colours: model family" in note
    assert 0 < len(labels) < 56
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)

    if _chromium() is None:
        pytest.skip("no Chromium (.ci/run installs Debian's)")
    page = tmp_path / "zoo.html"
    main(["report", str(run), "-o", str(page)])
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace(
        "</body>", "<script>document.body.setAttribute('data-width', "
        "document.documentElement.scrollWidth)</script></body>"))
    dom = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2000", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    width = int(re.search(r'data-width="(\d+)"', dom).group(1))
    assert width <= 1400, f"the page is {width} px wide"


CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                      "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
                      "truck", "bus", "train", "motorcycle", "bicycle")


def _scored_copy(run: Path, tmp_path: Path) -> Path:
    """runs[0] with an mIoU and per-class IoU written into its records by hand (not a
    measurement: it puts points on "Measured FPS vs mIoU" and rows in the per-class table).
    The mIoU grows with the FPS, so the slowest cell sits in the lower left corner, where the
    legend used to be."""
    import math
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    lines = []
    for i, line in enumerate((copy / "records.jsonl").read_text().splitlines()):
        rec = json.loads(line)
        if rec.get("status") == "ok":
            rec["miou"] = 40.0 + 10 * math.log10(rec["fps"])
            rec["iou_per_class"] = {c: 50.0 + j + 0.123 for j, c in enumerate(CITYSCAPES_CLASSES)}
            rec["eval_at"], rec["multi_scale"] = "full", False
        lines.append(json.dumps(rec))
    (copy / "records.jsonl").write_text("\n".join(lines) + "\n")
    return copy


GEOMETRY_PROBE = """<script>
const overlaps = [], outside = [];
let points = 0;
document.querySelectorAll('svg').forEach(svg => {
  const legends = [...svg.querySelectorAll('g[id^="legend"]')].map(g => g.getBoundingClientRect());
  const frames = [...svg.querySelectorAll('g[id^="patch"]')];
  svg.querySelectorAll('g[id^="bbpt-"]').forEach(p => {
    points += 1;
    const b = p.getBoundingClientRect();
    for (const a of legends)
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
        overlaps.push(p.id);
  });
});
document.body.setAttribute('data-overlaps', JSON.stringify(overlaps));
document.body.setAttribute('data-points', points);
document.body.setAttribute('data-width', document.documentElement.scrollWidth);
</script></body>"""


@shares_runs
@pytest.mark.skipif(_chromium() is None, reason="no Chromium (.ci/run installs Debian's)")
def test_legends_cover_no_point_and_wide_tables_fit_the_page_in_chromium(runs, tmp_path):
    """In the browser: no legend box intersects a measured or published point of the inline
    SVG figures ("Measured FPS vs mIoU", the FarSee / DESANet trade-off), and the page with a
    19-class IoU table is no wider than a 1400 px window."""
    run = _scored_copy(runs[0], tmp_path)
    page = tmp_path / "scored.html"
    assert main(["report", str(run), "-o", str(page)]) == 0
    html = page.read_text()
    assert "Measured FPS vs mIoU per device (not normalised)" in html and "road" in html
    assert "<td>50.1</td>" in html           # IoU as the papers print it, one decimal
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", GEOMETRY_PROBE))
    dom = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2000", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    points = int(re.search(r'data-points="(\d+)"', dom).group(1))
    assert points > 4 + 20               # the 4 measured cells and the published points
    assert re.search(r'data-overlaps="([^"]*)"', dom).group(1) == "[]"
    assert int(re.search(r'data-width="(\d+)"', dom).group(1)) <= 1400


@shares_runs
def test_the_protocol_table_shows_the_threads_a_run_used(runs, tmp_path):
    from benchbench.report.html import protocol_settings
    frame, infos = load_runs([runs[0]])
    used = {r["threads"] for r in frame["protocol"]}
    assert len(used) == 1
    assert protocol_settings(infos[0], frame)["threads"] == f"{used.pop()} (torch default)"


def test_error_bars_have_room_below_the_frame():
    import matplotlib.pyplot as plt
    import pandas as pd

    from benchbench.report import figures
    rows = [{"model": "m", "series": "m", "status": "ok", "height": h, "width": 2 * h,
             "resolution": f"{h}x{2 * h}", "backend": "eager", "precision": "fp32",
             "device_name": "cpu", "fps": 1000 / p50, "latency_ms_p50": p50,
             "latency_ci95_ms": [p50 * 0.5, p50 * 1.01], "protocol_name": "robust",
             "busy": False, "equivalence": None} for h, p50 in ((64, 1.0), (128, 4.0))]
    fig, _ = figures.fps_vs_resolution(pd.DataFrame(rows))
    top = fig.axes[0].get_ylim()[1]
    assert top > 2000 * 1.03             # the highest bar (1000 / 0.5 ms) ends below the frame
    plt.close(fig)
