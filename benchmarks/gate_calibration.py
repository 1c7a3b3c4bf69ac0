"""Measure the CI gate itself: false positives on A/A pairs and detection of real slowdowns.

Each "run" is a real `bench run` in a fresh process on a one-cell suite whose model comes from a
plugin file (as a user's own model would): ``calib_net``, a stack of BLOCKS identical 3x3 conv
blocks. A slowdown of s% is one of two kinds (``--kinds``):

* ``work``: more work -- the B run's plugin adds round(BLOCKS * s) blocks (more MACs, which the
  work gate sees exactly);
* ``same-macs``: the same MACs, params and CIO, but slower -- round(s / SLOW_PCT_PER_BLOCK)
  blocks are followed by a 3x3 average pool of stride 1 (nine reads per output, and no
  multiply-accumulate in fvcore's count, which has no avg_pool2d handle): the timing gate
  sees it, the work gate only lists the extra ``aten::avg_pool2d`` calls.

The actual slowdown is measured too, interleaved in one process. Every pair is then judged by
`bench check` (default threshold 5%, alpha 0.01, work gate on), exactly as CI would.

    python benchmarks/gate_calibration.py [--pairs 10] [--repeats 7] [--cell-time 0.6]
                                          [--paired] [--interleaved] [--processes N]
                                          [--kinds work,same-macs] [--json OUT.json]
                                          [--device cuda --size 512x1024 --precision fp16]

Prints the false-positive rate over the A/A pairs and, per kind and slowdown, how many pairs
failed the gate (and how: the timing verdict `regressed`, the work gate's `more work`), and the
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
# a 3x3 average pool after one block: ~5.5% of calib_net at 64x128 on 1 CPU thread measured
# alone, ~8.5% as the paired gate saw it in the 2026-12-03 calibration (two calibrations
# sharing the 2 cores); true_slowdown() measures every configuration anew
SLOW_PCT_PER_BLOCK = 5.5
KINDS = ("work", "same-macs")
PLUGIN = '''
from torch import nn
import benchbench

EXTRA = {extra}          # the B run's injected slowdown: extra blocks of real work
SLOW = {slow}            # or: blocks followed by a 3x3 average pool (same MACs, slower)


class CalibNet(nn.Module):
    def __init__(self, num_classes, extra, slow=0):
        super().__init__()
        layers = [nn.Conv2d(3, 32, 3, padding=1)]
        for i in range({blocks} + extra):
            layers += [nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()]
            if i < slow:
                layers.append(nn.AvgPool2d(3, stride=1, padding=1))
        layers.append(nn.Conv2d(32, num_classes, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


@benchbench.register_model(family="calibration", paper="benchbench gate calibration",
                           output_stride=1)
def calib_net(*, num_classes: int = 19) -> nn.Module:
    return CalibNet(num_classes, EXTRA, SLOW)


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
          target_ci_rel: 0.002, {threads}repeats: {repeats}, processes: {processes},
          reference: {reference},
          reference_interleave: {interleave}, seed: {seed}}}
"""
PLAIN = {"models": "calib_net", "reference": "null", "interleave": "false"}
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


def injected(kind: str, percent: int) -> dict:
    """The B run's plugin change for a slowdown of ``percent`` of ``kind``."""
    if kind == "work":
        return {"extra": round(BLOCKS * percent / 100), "slow": 0}
    return {"extra": 0, "slow": round(percent / SLOW_PCT_PER_BLOCK)}


def describe(kind: str, change: dict) -> str:
    return (f"{change['extra']} extra blocks" if kind == "work" else
            f"{change['slow']} 3x3 average pools")


def one_run(work: Path, change: dict, args, seed: int, mode: dict,
            target: dict) -> tuple[Path, float]:
    (work / "calib_models.py").write_text(PLUGIN.format(blocks=BLOCKS, **change))
    cpu = target["device"] == "cpu"
    mode = {key: value.format(**target) for key, value in mode.items()}   # the reference's size
    (work / "suite.yaml").write_text(SUITE.format(
        repeats=args.repeats, cell_time=args.cell_time, seed=seed, processes=args.processes,
        **mode, **target, warmup=5 if cpu else 50, threads="threads: 1, " if cpu else ""))
    t0 = time.perf_counter()
    out = bench("run", work / "suite.yaml", "--out", work / "runs", "--json", "--no-progress")
    return Path(json.loads(out.stdout)["run_dir"]), time.perf_counter() - t0


def verdict(base: Path, cur: Path) -> tuple[int, dict]:
    proc = bench("check", cur, "--baseline", base, "--json", check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr)
    cells = json.loads(proc.stdout)["cells"]
    return proc.returncode, next(c for c in cells if c["cell_id"].startswith("calib_net@"))


def true_slowdown(change: dict, target: dict) -> float:
    """The real cost of ``change``, interleaved in this process (median of 31 pairs)."""
    import statistics

    import torch
    torch.set_num_threads(1)
    device = torch.device(target["device"])
    dtype = torch.float16 if target["precision"] == "fp16" else torch.float32
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    nets = []
    for c in ({"extra": 0, "slow": 0}, change):
        ns: dict = {}
        code = PLUGIN.format(blocks=BLOCKS, **c).replace(
            "@benchbench.register_model(", "@(lambda **k: (lambda f: f))(")
        exec(code, ns)
        nets.append(ns["CalibNet"](19, c["extra"], c["slow"]).eval().to(device, dtype))
    x = torch.randn(1, 3, target["height"], target["width"], device=device, dtype=dtype)
    ratios = []
    with torch.inference_mode():
        for _ in range(31):
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--first-pair", type=int, default=0,
                   help="number the pairs from here (seeds follow): continue an interrupted series")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--processes", type=int, default=1,
                   help="timing.processes: the repeats run in this many fresh processes each")
    p.add_argument("--cell-time", type=float, default=0.6, help="timing.max_time_s per repeat")
    p.add_argument("--slowdowns", default="5,10,20", help="percent, comma separated")
    p.add_argument("--kinds", default="work",
                   help=f"comma separated, of {', '.join(KINDS)} (both share the A runs)")
    p.add_argument("--keep", metavar="DIR", help="keep the runs here (re-check them later)")
    p.add_argument("--json", metavar="OUT", help="also write every verdict and the summary here")
    p.add_argument("--paired", action="store_true",
                   help="reference = the unchanged model as a second cell of the suite (what a "
                        "CI job gets by adding the main branch's model), not the builtin one")
    p.add_argument("--interleaved", action="store_true",
                   help="timing.reference_interleave: the reference (builtin, or with --paired "
                        "the unchanged model) runs before every timed forward; bench check's "
                        "auto metric is then latency_rel_p50")
    p.add_argument("--no-reference", action="store_true",
                   help="the plain gate: no reference workload at all (timing.reference: null)")
    p.add_argument("--device", default="cpu", help="cpu (1 thread) or cuda")
    p.add_argument("--size", default="64x128", help="input HxW")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    return p


def _mode(args) -> dict:
    if args.no_reference:
        return PLAIN
    return (PAIRED_INTERLEAVED if args.paired and args.interleaved else
            INTERLEAVED if args.interleaved else PAIRED if args.paired else BUILTIN)


def _how(code: int, cell: dict) -> str:
    """How a pair came out: passed, or failed by the timing verdict and/or the work gate."""
    if code == 0:
        return "passed"
    ways = [w for w, hit in (("regressed", cell["verdict"] in ("regressed", "failed")),
                             ("more work", cell.get("work") == "more work")) if hit]
    return "+".join(ways) or "failed"


def main() -> None:
    args = _parser().parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    target = {"device": args.device, "height": height, "width": width,
              "precision": args.precision}
    slowdowns = [int(s) for s in args.slowdowns.split(",")]
    kinds = args.kinds.split(",")
    if not set(kinds) <= set(KINDS):
        raise SystemExit(f"--kinds: of {', '.join(KINDS)}")
    mode = _mode(args)
    results = {"aa": [], **{(k, s): [] for k in kinds for s in slowdowns}}
    durations = []
    unchanged = {"aa": 0}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for i in range(args.first_pair, args.first_pair + args.pairs):
            work = Path(tmp) / f"pair{i}"
            work.mkdir(parents=True)
            none = {"extra": 0, "slow": 0}
            base, d = one_run(work, none, args, seed=2 * i, mode=mode, target=target)
            same, d2 = one_run(work, none, args, seed=2 * i + 1, mode=mode, target=target)
            durations += [d, d2]
            code, cell = verdict(base, same)
            results["aa"].append((code, cell))
            unchanged["aa"] += cell["verdict"] == "unchanged"
            print(f"pair {i}: A/A ratio {cell['ratio']:.3f} {cell['verdict']}, work "
                  f"{cell.get('work')} (runs {d:.0f} s, {d2:.0f} s)", flush=True)
            for kind in kinds:
                for s in slowdowns:
                    slow, d3 = one_run(work, injected(kind, s), args, seed=100 + i, mode=mode,
                                       target=target)
                    durations.append(d3)
                    code, cell = verdict(base, slow)
                    results[(kind, s)].append((code, cell))
                    print(f"pair {i}: {kind} +{s}% ratio {cell['ratio']:.3f} (raw "
                          f"{cell['raw_ratio']:.3f}) {cell['verdict']}, work {cell.get('work')}"
                          f" -> {_how(code, cell)} (run {d3:.0f} s)", flush=True)
    summary = _summary(args, mode, target, results, durations, unchanged, kinds, slowdowns)
    print("\n" + "\n".join(summary["lines"]))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1, default=str))


def _summary(args, mode, target, results, durations, unchanged, kinds, slowdowns) -> dict:
    reference = mode["reference"].format(**target)
    one_run_s = sorted(durations)[len(durations) // 2]
    fp = sum(code == 1 for code, _ in results["aa"])
    lines = [f"settings: repeats={args.repeats}, processes={args.processes}, max_time_s="
             f"{args.cell_time} per repeat, threshold 5%, alpha 0.01, work gate fail, "
             f"reference: {reference}{' interleaved per iteration' if args.interleaved else ''}"
             f", {args.device} {args.size} {args.precision}"
             f"{', 1 thread' if args.device == 'cpu' else ''}",
             f"one run: median {one_run_s:.1f} s wall (including process start)",
             f"A/A false positives: {fp} of {len(results['aa'])} (earned unchanged: "
             f"{unchanged['aa']} of {len(results['aa'])})"]
    rows = {}
    for kind in kinds:
        for s in slowdowns:
            change = injected(kind, s)
            real = true_slowdown(change, target)
            outcomes = [_how(code, cell) for code, cell in results[(kind, s)]]
            hit = sum(o != "passed" for o in outcomes)
            by = {o: outcomes.count(o) for o in sorted(set(outcomes)) if o != "passed"}
            rows[f"{kind} +{s}%"] = {"detected": hit, "pairs": len(outcomes), "by": by,
                                     "measured_slowdown": real, "change": change}
            lines.append(f"{kind} +{s}% injected ({describe(kind, change)}, measured "
                         f"+{100 * real:.1f}%): detected {hit} of {len(outcomes)} "
                         f"({', '.join(f'{k} {v}' for k, v in by.items()) or 'none'})")
    return {"settings": vars(args), "reference": reference, "one_run_s": one_run_s,
            "aa_false_positives": fp, "aa_pairs": len(results["aa"]),
            "aa_unchanged": unchanged["aa"], "rows": rows, "lines": lines,
            "verdicts": {str(k): [c for _, c in v] for k, v in results.items()}}


if __name__ == "__main__":
    main()
