"""``bench check`` results as text: a console table, Markdown (a GitHub step summary) and JUnit
XML (one testcase per cell, regressions as failures: GitLab and Jenkins read it)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

MARK = {"regressed": "❌ regressed", "failed": "❌ failed", "improved": "✅ improved",
        "unchanged": "unchanged", "inconclusive": "⚠️ inconclusive", "new": "new",
        "missing": "missing", "reference": "reference (not gated)"}


def _num(v, fmt=".3f"):
    return "-" if v is None else format(v, fmt)


def _ci(v) -> str:
    return f"[{v.ci95[0]:.3f}, {v.ci95[1]:.3f}]" if v.ci95 else "-"


def headline(result) -> str:
    """The verdict and what it rests on: the metric, its unit of comparison, and what the
    reference workload said about the machine."""
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    verdict = "FAIL" if result.regressions else "PASS"
    units = sorted({v.unit for v in result.verdicts if v.unit})
    basis = f" over {' / '.join(units)}" if units else ""
    return (f"{verdict}: {counts} ({result.metric}{basis}, threshold {result.threshold:.0%}, "
            f"alpha {result.alpha}{machine_text(result.machine)}){work_headline(result)}")


def work_headline(result) -> str:
    """The work gate's part of the headline: what changed in the machine-independent counts."""
    if result.work_gate == "off":
        return "; work gate off"
    counts = result.work_counts()
    if not counts:
        counted = any(v.work for v in result.verdicts)
        return "; work: the same in every cell" if counted else ""
    said = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    fails = " (fails the gate)" if result.work_gate == "fail" and "more work" in counts else ""
    return f"; work: {said}{fails}"


def work_text(v) -> str:
    """``; MORE WORK: macs 1,000 -> 1,150 (+15.0%), aten::add x6 -> x7`` (or nothing)."""
    if v.work in (None, "same"):
        return ""
    label = v.work.upper() if v.work != "changed" else "work changed"
    shown = ", ".join(v.work_changes[:6]) + (" ..." if len(v.work_changes) > 6 else "")
    return f"; {label}: {shown}"


def machine_text(machine: dict) -> str:
    if not machine:
        return ""
    ratio, correction = machine["reference_ratio"], machine.get("correction", "")
    if correction.startswith(("per round", "per iteration")):
        return (f"; the reference moved x{ratio:.3f} between the runs, cancelled "
                f"{correction.split(':')[0]}")
    if machine["machine_changed"]:
        return (f"; MACHINE CHANGED: the reference moved x{ratio:.3f}, so cells beyond the "
                f"threshold are inconclusive, not attributed to the models")
    return f"; the reference moved x{ratio:.3f}: the machine was steady"


def console(result) -> str:
    lines = [f"{'cell':58s} {'baseline':>10s} {'current':>10s} {'ratio':>7s} "
             f"{'95% CI':>17s} {'p':>8s}  verdict"]
    for v in result.verdicts:
        lines.append(f"{v.cell_id[:58]:58s} {_num(v.baseline):>10s} {_num(v.current):>10s} "
                     f"{_num(v.ratio):>7s} {_ci(v):>17s} {_num(v.p_value, '.2g'):>8s}  "
                     f"{v.verdict}{': ' + v.note if v.note else ''}{work_text(v)}")
    if result.env_differences:
        lines.append("environment differences (allowed): " + "; ".join(result.env_differences))
    lines.append(headline(result))
    return "\n".join(lines)


def markdown(result) -> str:
    out = [f"### benchbench check: {headline(result)}", "",
           f"Baseline `{result.baseline_source}`, current `{result.current_run}`.", "",
           "| cell | baseline | current | ratio | 95% CI | p | verdict | note |",
           "|---|---:|---:|---:|---|---:|---|---|"]
    for v in result.verdicts:
        out.append(f"| `{v.cell_id}` | {_num(v.baseline)} | {_num(v.current)} | "
                   f"{_num(v.ratio)} | {_ci(v)} | {_num(v.p_value, '.2g')} | "
                   f"{MARK.get(v.verdict, v.verdict)} | "
                   f"{(v.note + work_text(v)).replace('|', '/')} |")
    if result.env_differences:
        out += ["", "Environment differences (allowed with --allow-env-change): " +
                "; ".join(result.env_differences)]
    return "\n".join(out) + "\n"


def _more_work_fails(result, v) -> bool:
    return result.work_gate == "fail" and v.work == "more work"


def junit(result) -> str:
    suite = ET.Element("testsuite", name="benchbench check", tests=str(len(result.verdicts)),
                       failures=str(sum(v.verdict == "regressed" or _more_work_fails(result, v)
                                        for v in result.verdicts)),
                       errors=str(sum(v.verdict == "failed" for v in result.verdicts)),
                       skipped=str(sum(v.verdict in ("new", "missing", "inconclusive")
                                       for v in result.verdicts)))
    for v in result.verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"benchbench.{result.metric}",
                             name=v.cell_id)
        detail = (f"ratio {_num(v.ratio)} {_ci(v)}, p {_num(v.p_value, '.2g')}, baseline "
                  f"{_num(v.baseline)}, current {_num(v.current)}: {v.note}")
        detail += work_text(v)
        if v.verdict == "regressed" or _more_work_fails(result, v):
            what = f"regressed: {v.note}" if v.verdict == "regressed" else "more work"
            ET.SubElement(case, "failure", message=f"{what}{work_text(v)}"[:500],
                          type="regression").text = detail
        elif v.verdict == "failed":
            ET.SubElement(case, "error", message=f"cell failed: {v.note}"[:500],
                          type="failed").text = v.note
        elif v.verdict in ("new", "missing", "inconclusive"):
            ET.SubElement(case, "skipped", message=f"{v.verdict}: {v.note}"[:500])
        ET.SubElement(case, "system-out").text = detail
    root = ET.Element("testsuites", name="benchbench")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"
