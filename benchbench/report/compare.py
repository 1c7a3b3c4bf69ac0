"""Two runs side by side (``bench compare``): per-cell ratios with their CIs on one plot, latency
distributions of each cell in both runs, and the environment differences. Reads records only."""
from __future__ import annotations

from pathlib import Path

import jinja2

from ..regress import AUTO, baseline_from_run, check
from ..store import current_records, read_records
from . import figures  # noqa: F401 - selects the Agg backend
from .html import _save

_TEMPLATES = Path(__file__).parent / "templates"


def _ratio_figure(result):
    import matplotlib.pyplot as plt

    rows = [v for v in result.verdicts if v.ratio is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(rows) + 1.2)), layout="constrained")
    colors = {"regressed": "tab:red", "improved": "tab:green", "unchanged": "0.4",
              "inconclusive": "tab:orange"}
    for i, v in enumerate(rows):
        lo, hi = v.ci95 if v.ci95 else (v.ratio, v.ratio)
        ax.errorbar([v.ratio], [i], xerr=[[v.ratio - lo], [hi - v.ratio]], fmt="o", capsize=3,
                    color=colors.get(v.verdict, "0.4"))
    band = 1 + result.threshold
    ax.axvspan(1 / band, band, color="0.9", label=f"within {result.threshold:.0%}")
    ax.axvline(1.0, color="k", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [v.cell_id for v in rows], fontsize=7)
    ax.set(xlabel=f"{result.metric}: B / A (95% bootstrap CI)", title="Per-cell ratio")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _distribution_figure(run_a, run_b):
    import matplotlib.pyplot as plt

    def samples(run):
        return {r["cell_id"]: r.get("latency_samples_ms") or []
                for r in current_records(read_records(Path(run) / "records.jsonl"))}

    a, b = samples(run_a), samples(run_b)
    cells = [c for c in a if a[c] and b.get(c)]
    if not cells:
        return None
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.55 * len(cells) + 1)), layout="constrained")
    data, labels, positions = [], [], []
    for i, c in enumerate(cells):
        data += [a[c], b[c]]
        positions += [3 * i, 3 * i + 1]
        labels += [f"A {c}", f"B {c}"]
    parts = ax.boxplot(data, positions=positions, orientation="horizontal", showfliers=False,
                       patch_artist=True)
    for j, box in enumerate(parts["boxes"]):
        box.set_facecolor("tab:blue" if j % 2 == 0 else "tab:orange")
    ax.set_yticks(positions, labels, fontsize=6)
    ax.set(xlabel="latency per forward (ms)", xscale="log",
           title="Latency distributions: A (blue) vs B (orange)")
    figures.plain_log_ticks(ax.xaxis)
    return fig


def render_comparison(run_a, run_b, output, metric=AUTO, threshold=0.05, alpha=0.01,
                      work_gate="fail") -> Path:
    """``bench check RUN_B --baseline RUN_A`` as a page: the same call, so the same ratios,
    CIs and verdicts; the environment differences check would refuse are listed instead."""
    output = Path(output)
    base, cur = baseline_from_run(run_a), baseline_from_run(run_b)
    result = check(run_b, run_a, metric, threshold, alpha, allow_env_change=True,
                   work_gate=work_gate)
    fig_dir = output.parent / f"{output.stem}_figures"
    figs = []
    for key, title, fig in (("ratios", "Per-cell ratio B / A with 95% CI", _ratio_figure(result)),
                            ("distributions", "Latency distributions",
                             _distribution_figure(run_a, run_b))):
        if fig is not None:
            figs.append({"title": title, **_save(fig, fig_dir / key)})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    from .gate import headline, work_text
    html = env.get_template("compare.html.j2").render(
        a=base, b=cur, result=result, headline=headline(result), figures=figs,
        work_text=work_text)
    output.parent.mkdir(parents=True, exist_ok=True)
    from ..fileio import write_atomic
    write_atomic(output, html)
    return output
