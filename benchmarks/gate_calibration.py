"""Measure the CI gate itself: false positives on A/A pairs and detection of real slowdowns.

Each "run" is a real `bench run` in a fresh process on a one-cell suite whose model comes from a
plugin file (as a user's own model would): ``calib_net``, a stack of BLOCKS identical 3x3 conv
blocks. A slowdown of s% is real work: the plugin of the B run adds round(BLOCKS * s) blocks
(the actual slowdown is measured too, interleaved in one process). Every pair is then judged by
`bench check` (default threshold 5%, alpha 0.01), exactly as CI would.

    python benchmarks/gate_calibration.py [--pairs 10] [--repeats 7] [--cell-time 0.6]
                                          [--paired] [--interleaved]
                                          [--device cuda --size 512x1024 --precision fp16]

Prints the false-positive rate over the A/A pairs and the detection rate per slowdown, and the
wall time of one run. Targets: 0 false positives in 10 A/A pairs, >= 95% detection at 10%.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # benchbench from this checkout, here and in every `bench` below
BLOCKS = 20
PLUGIN = '''
from torch import nn
import benchbench

EXTRA = {extra}          # the B run's injected slowdown: extra blocks of real work


class CalibNet(nn.Module):
    def __init__(self, num_classes, extra):
        super().__init__()
        layers = [nn.Conv2d(3, 32, 3, padding=1)]
        for _ in range({blocks} + extra):
            layers += [nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()]
        layers.append(nn.Conv2d(32, num_classes, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


@benchbench.register_model(family="calibration", paper="benchbench gate calibration",
                           output_stride=1)
def calib_net(*, num_classes: int = 19) -> nn.Module:
    return CalibNet(num_classes, EXTRA)


@benchbench.register_model(family="calibration", paper="benchbench gate calibration",
                           output_stride=1)
def calib_ref(*, num_classes: int = 19) -> nn.Module:
    """The unchanged model (--paired): what CI gets by adding the main branch's version."""
    return CalibNet(num_classes, 0)
'''

SUITE = """\
name: gate_calibration
device: {device}
plugins: [calib_models.py]
models: [{models}]
resolutions: [[{height}, {width}]]
backends: [{{name: eager, precision: {precision}}}]
timing: {{protocol: robust, warmup: {warmup}, min_iterations: 20, max_time_s: {cell_time},
          target_ci_rel: 0.002, {threads}repeats: {repeats}, reference: {reference},
          reference_interleave: {interleave}, seed: {seed}}}
"""
PAIRED = {"models": "calib_ref, calib_net", "interleave": "false",
          "reference": "calib_ref@{height}x{width}/b1/eager-{precision}"}
BUILTIN = {"models": "calib_net", "reference": "builtin", "interleave": "false"}
INTERLEAVED = {"models": "calib_net", "reference": "builtin", "interleave": "true"}
PAIRED_INTERLEAVED = dict(PAIRED, interleave="true")


def bench(*args, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, "-m", "benchbench.cli", *map(str, args)],
                          capture_output=True, text=True, check=check, env=env)


def one_run(work: Path, extra: int, repeats: int, cell_time: float, seed: int,
            mode: dict, target: dict) -> tuple[Path, float]:
    (work / "calib_models.py").write_text(PLUGIN.format(extra=extra, blocks=BLOCKS))
    cpu = target["device"] == "cpu"
    mode = {key: value.format(**target) for key, value in mode.items()}   # the reference's size
    (work / "suite.yaml").write_text(SUITE.format(
        repeats=repeats, cell_time=cell_time, seed=seed, **mode, **target,
        warmup=5 if cpu else 50, threads="threads: 1, " if cpu else ""))
    t0 = time.perf_counter()
    out = bench("run", work / "suite.yaml", "--out", work / "runs", "--json", "--no-progress")
    return Path(json.loads(out.stdout)["run_dir"]), time.perf_counter() - t0


def verdict(base: Path, cur: Path) -> tuple[int, dict]:
    proc = bench("check", cur, "--baseline", base, "--json", check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr)
    cells = json.loads(proc.stdout)["cells"]
    return proc.returncode, next(c for c in cells if c["cell_id"].startswith("calib_net@"))


def true_slowdown(extra: int, target: dict) -> float:
    """The real cost of `extra` blocks, interleaved in this process (median of 15 pairs)."""
    import statistics

    import torch
    torch.set_num_threads(1)
    device = torch.device(target["device"])
    dtype = torch.float16 if target["precision"] == "fp16" else torch.float32
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ns: dict = {}
    nets = []
    for e in (0, extra):
        code = PLUGIN.format(extra=e, blocks=BLOCKS).replace(
            "@benchbench.register_model(", "@(lambda **k: (lambda f: f))(")
        exec(code, ns)
        nets.append(ns["CalibNet"](19, e).eval().to(device, dtype))
    x = torch.randn(1, 3, target["height"], target["width"], device=device, dtype=dtype)
    ratios = []
    with torch.inference_mode():
        for _ in range(15):
            t = []
            for net in nets:
                net(x)
                sync()
                t0 = time.perf_counter()
                for _ in range(10):
                    net(x)
                sync()
                t.append(time.perf_counter() - t0)
            ratios.append(t[1] / t[0])
    return statistics.median(ratios) - 1


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--first-pair", type=int, default=0,
                   help="number the pairs from here (seeds follow): continue an interrupted series")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--cell-time", type=float, default=0.6, help="timing.max_time_s per repeat")
    p.add_argument("--slowdowns", default="5,10,20", help="percent, comma separated")
    p.add_argument("--keep", metavar="DIR", help="keep the runs here (re-check them later)")
    p.add_argument("--paired", action="store_true",
                   help="reference = the unchanged model as a second cell of the suite (what a "
                        "CI job gets by adding the main branch's model), not the builtin one")
    p.add_argument("--interleaved", action="store_true",
                   help="timing.reference_interleave: the reference (builtin, or with --paired "
                        "the unchanged model) runs before every timed forward; bench check's "
                        "auto metric is then latency_rel_p50")
    p.add_argument("--device", default="cpu", help="cpu (1 thread) or cuda")
    p.add_argument("--size", default="64x128", help="input HxW")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    args = p.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    target = {"device": args.device, "height": height, "width": width,
              "precision": args.precision}
    slowdowns = [int(s) for s in args.slowdowns.split(",")]
    mode = (PAIRED_INTERLEAVED if args.paired and args.interleaved else
            INTERLEAVED if args.interleaved else PAIRED if args.paired else BUILTIN)
    results = {"aa": [], **{s: [] for s in slowdowns}}
    durations = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for i in range(args.first_pair, args.first_pair + args.pairs):
            work = Path(tmp) / f"pair{i}"
            work.mkdir(parents=True)
            base, d = one_run(work, 0, args.repeats, args.cell_time, seed=2 * i,
                              mode=mode, target=target)
            same, d2 = one_run(work, 0, args.repeats, args.cell_time, seed=2 * i + 1,
                              mode=mode, target=target)
            durations += [d, d2]
            code, cell = verdict(base, same)
            results["aa"].append((code, cell))
            print(f"pair {i}: A/A ratio {cell['ratio']:.3f} {cell['verdict']} "
                  f"(runs {d:.0f} s, {d2:.0f} s)", flush=True)
            for s in slowdowns:
                slow, d3 = one_run(work, round(BLOCKS * s / 100), args.repeats, args.cell_time,
                                   seed=100 + i, mode=mode, target=target)
                durations.append(d3)
                code, cell = verdict(base, slow)
                results[s].append((code, cell))
                print(f"pair {i}: +{s}% ratio {cell['ratio']:.3f} (raw {cell['raw_ratio']:.3f}) "
                      f"{cell['verdict']} (run {d3:.0f} s)", flush=True)
    fp = sum(code == 1 for code, _ in results["aa"])
    print(f"\nsettings: repeats={args.repeats}, max_time_s={args.cell_time} per repeat, "
          f"threshold 5%, alpha 0.01, reference: {mode['reference'].format(**target)}"
          f"{' interleaved per iteration' if args.interleaved else ''}, "
          f"{args.device} {args.size} {args.precision}"
          f"{', 1 thread' if args.device == 'cpu' else ''}")
    print(f"one run: median {sorted(durations)[len(durations) // 2]:.1f} s wall "
          f"(including process start)")
    print(f"A/A false positives: {fp} of {len(results['aa'])}")
    for s in slowdowns:
        hit = sum(code == 1 for code, _ in results[s])
        real = true_slowdown(round(BLOCKS * s / 100), target)
        print(f"+{s}% injected ({round(BLOCKS * s / 100)} extra blocks, measured "
              f"+{100 * real:.1f}%): detected {hit} of {len(results[s])} "
              f"({100 * hit / max(1, len(results[s])):.0f}%)")


if __name__ == "__main__":
    main()
