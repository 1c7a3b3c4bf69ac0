"""Static analysis of the whole zoo at the 13 sizes of cityscapes-13, cold (nothing cached, the
way ``bench run --dry-run`` of a zoo suite meets it): sequentially in this process, and through
``analyze_many`` (grouped by model, forked workers). Target: <= 5 s.

    python benchmarks/analysis_speed.py
"""
import time

import benchbench as bb
from benchbench.analysis import analyze, analyze_many, clear_cache
from benchbench.suite import GRIDS

TARGET_S = 5.0


def main():
    models, sizes = bb.list_models(), GRIDS["cityscapes-13"]
    requests = [(name, size, 1, {}) for name in models for size in sizes]
    n = len(requests)
    t = time.perf_counter()
    records = analyze_many(requests)
    parallel = time.perf_counter() - t
    clear_cache()
    t = time.perf_counter()
    for name, size, batch, _ in requests:
        analyze(name, size, batch)
    sequential = time.perf_counter() - t
    t = time.perf_counter()
    again = analyze_many(requests)
    cached = time.perf_counter() - t
    assert [r.macs for r in records] == [r.macs for r in again]
    print(f"{len(models)} models x {len(sizes)} sizes = {n} analyses, cold: "
          f"{parallel:.2f} s with analyze_many (forked workers, first in this process, so it "
          f"pays torch's one-time imports), {sequential:.2f} s one after the other; "
          f"{cached * 1000:.1f} ms cached. Target <= {TARGET_S:g} s: "
          f"{'met' if parallel <= TARGET_S else 'NOT met'}")


if __name__ == "__main__":
    main()
