"""What each executor costs per cell, here: the same 4-cell CPU suite (2 models x 2 sizes,
eager fp32, a short robust timing) on local, process, ray (a local cluster started for the
run) and slurm (a one-node cluster started like the tests' one, as root, with Debian's
slurm-wlm + munge), in interleaved rounds so drift of the machine hits all alike.

    python benchmarks/executor_overhead.py [--rounds 3] [--executors local,process,ray,slurm]

Prints, per executor, the median wall time of the run and the per-cell overhead against local
((run - local run) / cells). Ray's and SLURM's one-off start-up (the cluster) is printed
apart: a lab's cluster is already running."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

SUITE = {"name": "overhead", "device": "cpu", "models": ["fassd_net_l2", "fc_hardnet_70"],
         "resolutions": [[64, 128], [64, 192]],
         "timing": {"warmup": 1, "min_iterations": 3, "max_time_s": 0.2}}
SPECS = {"local": "local", "process": "process",
         "ray": {"name": "ray", "local_num_cpus": 2},
         "slurm": {"name": "slurm", "exclusive": True, "poll_s": 0.5}}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--executors", default="local,process,ray,slurm")
    args = p.parse_args()
    names = args.executors.split(",")
    import benchbench
    from benchbench.suite import suite_from_dict

    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    startup = {}
    cluster = None
    if "slurm" in names and "SLURM_CONF" not in os.environ:
        from _slurm import SlurmCluster, slurm_missing
        if slurm_missing():
            print(f"slurm: skipped ({slurm_missing()})")
            names.remove("slurm")
        else:
            t0 = time.perf_counter()
            cluster = SlurmCluster(tmp / "slurm").start()
            os.environ["SLURM_CONF"] = str(cluster.conf)
            startup["slurm (one-node cluster)"] = time.perf_counter() - t0
    if "ray" in names:
        import ray
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        startup["ray (local cluster)"] = time.perf_counter() - t0
    walls = {n: [] for n in names}
    try:
        for round_no in range(args.rounds):
            for name in names:
                suite = suite_from_dict(dict(SUITE, executor=SPECS[name]), "<overhead>")
                t0 = time.perf_counter()
                summary = benchbench.run_suite(suite, out_dir=tmp / "out", progress=False)
                walls[name].append(time.perf_counter() - t0)
                assert summary.ok == 4, f"{name}: {summary}"
    finally:
        if cluster is not None:
            cluster.stop()
    cells = 4
    base = statistics.median(walls["local"]) if "local" in walls else None
    print(f"{'executor':10s} {'run s (median)':>15s} {'per cell s':>11s} {'overhead/cell s':>16s}")
    for name in names:
        wall = statistics.median(walls[name])
        extra = "" if base is None or name == "local" else f"{(wall - base) / cells:16.2f}"
        print(f"{name:10s} {wall:15.2f} {wall / cells:11.2f} {extra:>16s}")
    for what, secs in startup.items():
        print(f"start-up, once: {what}: {secs:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
