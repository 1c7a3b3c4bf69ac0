"""The harness's own cost and stability, on the CPU (or CUDA with --device cuda).

1. overhead: harness (paper protocol) time per forward / a bare hand-written loop, same model and
   input, interleaved repetitions; target <= 1.01.
2. agreement: harness robust p50 / torch.utils.benchmark blocked_autorange median; target within 2%.
3. spread: run-to-run coefficient of variation of the harness's FPS over repetitions.

    python benchmarks/overhead.py [--model fassd_net_l2] [--size 128x256] [--reps 7]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.utils.benchmark as tb

import benchbench as bb
from benchbench.measure.backends import create_backend
from benchbench.measure.engine import TimingConfig, measure


def bare_loop(model, x, n: int, device) -> float:
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / n * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fassd_net_l2")
    ap.add_argument("--size", default="128x256")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (1 keeps a shared 2-core machine's noise down)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = map(int, args.size.split("x"))
    device = torch.device(args.device)
    backend = create_backend("eager")
    backend.prepare(bb.create_model(args.model), torch.randn(1, 3, h, w), device, "fp32", False)
    model, x = backend.model, backend.frame

    paper = TimingConfig(protocol="paper", warmup=10, iterations=args.iterations,
                         threads=args.threads)
    robust_cfg = TimingConfig(protocol="robust", warmup=10, min_iterations=args.iterations,
                              max_iterations=args.iterations, threads=args.threads)
    timer = tb.Timer("model(x)", globals={"model": model, "x": x}, num_threads=args.threads)
    harness_ms, bare_ms, robust_ms, timeit_ms = [], [], [], []
    for _ in range(args.reps):   # interleaved, so the machine's drift hits every method alike
        harness_ms.append(measure(backend, device, paper).latency_ms_mean)
        bare_ms.append(bare_loop(model, x, args.iterations, device))
        robust_ms.append(measure(backend, device, robust_cfg).stats.p50_ms)
        with torch.inference_mode():
            timeit_ms.append(timer.blocked_autorange(min_run_time=1).median * 1000)
    ratio = statistics.median(harness_ms) / statistics.median(bare_ms)
    agreement = statistics.median(robust_ms) / statistics.median(timeit_ms)

    fps = [1000 / v for v in harness_ms]
    cv = statistics.stdev(fps) / statistics.mean(fps)
    print(f"model {args.model} @ {h}x{w} on {args.device}, torch threads {torch.get_num_threads()}")
    print(f"overhead  harness/bare          = {ratio:.4f}   (median {statistics.median(harness_ms):.3f} "
          f"vs {statistics.median(bare_ms):.3f} ms over {args.reps} reps x {args.iterations}) target <= 1.01")
    print(f"agreement robust p50/timeit     = {agreement:.4f}   (median {statistics.median(robust_ms):.3f} "
          f"vs {statistics.median(timeit_ms):.3f} ms) target within 0.98..1.02")
    print(f"spread    run-to-run FPS CV     = {cv * 100:.2f}%   over {args.reps} paper-protocol runs")


if __name__ == "__main__":
    main()
