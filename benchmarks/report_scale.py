"""``bench report`` at the zoo's scale: one run of every model x the 13 sizes of cityscapes-13 x 3
backends (1,014 cells), rendered cold. Target: <= 10 s, a page a researcher can read.

The run is generated: three cells (eager, channels_last, onnxruntime at 64x128) are measured for
real by ``bench run`` and copied to every (model, size), with each model's real static analysis
at that size and a latency scaled from the template by MACs. The numbers are the renderer's
input only -- its speed and layout at that size are what this measures, not any model.

    python benchmarks/report_scale.py [--out DIR] [--models N]
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 10.0
TEMPLATE_SUITE = """name: report_scale_template
target: cpu
device: cpu
models: [fassd_net_l2]
resolutions: [[64, 128]]
backends:
  - {name: eager, precision: fp32}
  - {name: channels_last, precision: fp32}
  - {name: onnxruntime, precision: fp32}
timing: {protocol: robust, warmup: 2, min_iterations: 10, max_time_s: 0.3}
power: {sampler: none}
"""
_LATENCY_KEYS = ("latency_ms_mean", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                 "latency_ms_std", "latency_ms_min", "latency_ms_max")
_ANALYSIS_KEYS = ("params", "macs", "gflops", "macs_paper", "conv_macs", "cio", "moc",
                  "peak_activation_mb", "macs_by_op", "unsupported_ops", "macs_jetseg_formula")


def measure_template(workdir: Path) -> Path:
    suite = workdir / "template.yaml"
    suite.write_text(TEMPLATE_SUITE)
    subprocess.run([sys.executable, "-m", "benchbench.cli", "run", str(suite), "--out",
                    str(workdir / "runs"), "--no-progress"], check=True, capture_output=True)
    return next((workdir / "runs").iterdir())


def fan_out(template_run: Path, out_dir: Path, models: list[str], sizes) -> Path:
    """A run directory with one record per (model, size, template backend)."""
    from benchbench.analysis import analyze_many

    templates = {}                                   # one measured cell per backend
    for line in (template_run / "records.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("status") == "ok":
                templates.setdefault((r["backend"], r["precision"]), r)
    templates = list(templates.values())
    requests = [(m, s, 1, {"num_classes": 19}) for m in models for s in sizes]
    analyses = {(r.model, r.input_hw): r for r in analyze_many(requests)}
    info = json.loads((template_run / "run.json").read_text())
    run_id = "report_scale-generated"
    info.update(run_id=run_id, suite="report_scale (generated from 3 measured cells)")
    out = out_dir / run_id
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(info, indent=2))
    with open(out / "records.jsonl", "w") as f:
        for (model, size), analysis in analyses.items():
            for template in templates:
                f.write(json.dumps(_record(template, analysis, run_id)) + "\n")
    return out


def _record(template: dict, analysis, run_id: str) -> dict:
    r = copy.deepcopy(template)
    scale = analysis.macs / template["macs"]
    h, w = analysis.input_hw
    for key in _ANALYSIS_KEYS:
        r[key] = getattr(analysis, key)
    for key in _LATENCY_KEYS:
        if isinstance(r.get(key), (int, float)):
            r[key] = r[key] * scale
    if r.get("latency_ci95_ms"):
        r["latency_ci95_ms"] = [v * scale for v in r["latency_ci95_ms"]]
    for key in ("fps", "fps_p50"):
        if isinstance(r.get(key), (int, float)):
            r[key] = r[key] / scale
    r.pop("latency_samples_ms", None)
    backend = f"{r['backend']}-{r['precision']}"
    r.update(run_id=run_id, model=analysis.model, height=h, width=w,
             cell_id=f"{analysis.model}@{h}x{w}/b1/{backend}/{r['device']}")
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="keep the run and the report here (default: a temporary "
                    "folder)")
    ap.add_argument("--models", type=int, help="only the first N models of the zoo")
    args = ap.parse_args()
    import benchbench as bb
    from benchbench.suite import GRIDS

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.out) if args.out else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        models = bb.list_models()[:args.models] if args.models else bb.list_models()
        run = fan_out(measure_template(work), work, models, GRIDS["cityscapes-13"])
        cells = sum(1 for _ in open(run / "records.jsonl"))
        report = work / "report_scale.html"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchbench.cli", "report", str(run), "-o",
                        str(report)], check=True)
        took = time.perf_counter() - t
        size_mb = report.stat().st_size / 1e6
        print(f"bench report of {cells} cells: {took:.1f} s (a fresh process, imports "
              f"included), {size_mb:.1f} MB page; target <= {TARGET_S:g} s: "
              f"{'met' if took <= TARGET_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
