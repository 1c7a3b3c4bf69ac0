import re, statistics, json, sys
from pathlib import Path
HERE = str(Path(__file__).parent)
def parse(path, pairs):
    rows = {}
    for line in open(path):
        m = re.match(r"pair (\d+): A/A ratio ([\d.]+) (\w+), work (.+?) \(runs ([\d]+) s, ([\d]+) s\)", line)
        if m and int(m.group(1)) in pairs:
            rows.setdefault("A/A", []).append((float(m.group(2)), m.group(3), "failed" if m.group(3) in ("regressed","improved") and False else m.group(3), [int(m.group(5)), int(m.group(6))]))
            continue
        m = re.match(r"pair (\d+): (\S+) \+(\d+)% ratio ([\d.]+) \(raw [\d.]+\) (\w+), work (.+?) -> (.+?) \(run (\d+) s\)", line)
        if m and int(m.group(1)) in pairs:
            rows.setdefault(f"{m.group(2)} +{m.group(3)}%", []).append((float(m.group(4)), m.group(5), m.group(7), [int(m.group(8))]))
    return rows
def merge(*parts):
    out = {}
    for rows in parts:
        for k, v in rows.items(): out.setdefault(k, []).extend(v)
    return out
gates = {
 "plain": merge(parse(HERE + "/plain_part1.log", range(0, 9)), parse(HERE + "/plain2.log", range(9, 10))),
 "proc": merge(parse(HERE + "/proc_part1.log", range(0, 5)), parse(HERE + "/proc2.log", range(5, 10))),
 "inter": parse(HERE + "/inter.log", range(10)),
 "paired": parse(HERE + "/paired.log", range(10)),
}
for g, rows in gates.items():
    secs = [s for v in rows.values() for *_, ss in v for s in ss]
    print(f"== {g}: one run median {statistics.median(secs) if secs else 0:.1f} s")
    for k, v in rows.items():
        if k == "A/A":
            fp = sum(1 for r, verdict, *_ in v if verdict == "regressed")
            print(f"  A/A: {fp} of {len(v)} false positives unchanged {sum(x[1]=='unchanged' for x in v)}; ratios {min(x[0] for x in v):.3f}-{max(x[0] for x in v):.3f}")
        else:
            hit = [x for x in v if x[2] != "passed"]
            by = {}
            for x in hit: by[x[2]] = by.get(x[2], 0) + 1
            print(f"  {k}: {len(hit)} of {len(v)} {by}; median ratio {statistics.median(x[0] for x in v):.3f}")
