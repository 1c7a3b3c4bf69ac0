"""The README's calibration table from the per-pair lines of gate_calibration.py's logs.

The plain and process series were interrupted (the source tree changed under them) and resumed
with --first-pair; only complete pairs of each part are read."""
import re
import statistics
from pathlib import Path

HERE = Path(__file__).parent
AA = re.compile(r"pair (\d+): A/A ratio ([\d.]+) (\w+), work (.+?) \(runs (\d+) s, (\d+) s\)")
AB = re.compile(r"pair (\d+): (\S+) \+(\d+)% ratio ([\d.]+) \(raw [\d.]+\) (\w+), work (.+?) -> "
                r"(.+?) \(run (\d+) s\)")


def parse(name: str, pairs) -> dict:
    rows: dict = {}
    for line in (HERE / f"{name}.log").read_text().splitlines():
        if (m := AA.match(line)) and int(m.group(1)) in pairs:
            rows.setdefault("A/A", []).append({"ratio": float(m.group(2)), "verdict": m.group(3),
                                               "failed": m.group(3) == "regressed",
                                               "seconds": [int(m.group(5)), int(m.group(6))]})
        elif (m := AB.match(line)) and int(m.group(1)) in pairs:
            rows.setdefault(f"{m.group(2)} +{m.group(3)}%", []).append(
                {"ratio": float(m.group(4)), "verdict": m.group(5), "how": m.group(7),
                 "failed": m.group(7) != "passed", "seconds": [int(m.group(8))]})
    return rows


def merge(*parts: dict) -> dict:
    out: dict = {}
    for rows in parts:
        for key, values in rows.items():
            out.setdefault(key, []).extend(values)
    return out


GATES = {
    "plain (repeats 5)": merge(parse("plain_part1", range(0, 9)), parse("plain2", range(9, 10))),
    "plain, processes 3 x repeats 2": merge(parse("proc_part1", range(0, 5)),
                                            parse("proc2", range(5, 10))),
    "builtin interleaved (7 x 0.6 s)": parse("inter", range(10)),
    "paired interleaved (9 x 1.2 s)": parse("paired", range(10)),
}

for gate, rows in GATES.items():
    seconds = [s for values in rows.values() for v in values for s in v["seconds"]]
    print(f"== {gate}: one run, median {statistics.median(seconds):.1f} s")
    for key, values in rows.items():
        failed = [v for v in values if v["failed"]]
        ratios = [v["ratio"] for v in values]
        if key == "A/A":
            unchanged = sum(v["verdict"] == "unchanged" for v in values)
            print(f"  A/A: {len(failed)} of {len(values)} false positives, {unchanged} earned "
                  f"unchanged, ratios {min(ratios):.3f}-{max(ratios):.3f}")
            continue
        how: dict = {}
        for v in failed:
            how[v["how"]] = how.get(v["how"], 0) + 1
        print(f"  {key}: detected {len(failed)} of {len(values)} {how}, median ratio "
              f"{statistics.median(ratios):.3f}")
