"""Static analysis of the whole zoo at the 13 sizes of cityscapes-13 (cold cache).

    python benchmarks/analysis_speed.py
"""
import time

import benchbench as bb
from benchbench.analysis import _analyze_named, _meta_model, analyze
from benchbench.suite import GRIDS


def main():
    _analyze_named.cache_clear()
    _meta_model.cache_clear()
    models, sizes = bb.list_models(), GRIDS["cityscapes-13"]
    t = time.perf_counter()
    for name in models:
        for size in sizes:
            analyze(name, size)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    for name in models:
        for size in sizes:
            analyze(name, size)
    warm = time.perf_counter() - t
    n = len(models) * len(sizes)
    print(f"{len(models)} models x {len(sizes)} sizes = {n} analyses: {cold:.2f} s cold "
          f"({cold / n * 1000:.0f} ms each), {warm * 1000:.1f} ms cached")


if __name__ == "__main__":
    main()
