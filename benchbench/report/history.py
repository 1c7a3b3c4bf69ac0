"""``bench history``: each cell's latency and work over the saved baselines of a device and
suite (asv's view), the change points marked, on one HTML page. Reads baseline files only."""
from __future__ import annotations

from pathlib import Path

import jinja2

from .. import history as hist
from ..fileio import write_atomic
from . import figures
from .html import _save

_TEMPLATES = Path(__file__).parent / "templates"
MAX_FIGURES = 24          # cells drawn: those with a step first, then the suite's order


def _short(commit) -> str:
    return (commit or "?")[:8]


def cell_figure(cell_id: str, points: list, steps: list, band: float | None):
    """Latency (median, the repeats' range as bars) and MACs / CIO relative to the first run,
    over the commits; each step a dashed line with its size."""
    import matplotlib.pyplot as plt

    fig, (ax, work) = plt.subplots(2, 1, figsize=(7.5, 3.6), sharex=True, layout="constrained",
                                   height_ratios=(3, 1.2))
    titles = figures.hover_titles(fig)
    xs = list(range(len(points)))
    for x, p in zip(xs, points):
        if not p.latency_ms:
            continue
        lo = min(p.repeats_ms) if p.repeats_ms else p.latency_ms
        hi = max(p.repeats_ms) if p.repeats_ms else p.latency_ms
        line = ax.errorbar([x], [p.latency_ms], yerr=[[p.latency_ms - lo], [hi - p.latency_ms]],
                           fmt="o", color="tab:blue", capsize=3, markersize=5)
        gid = f"bbpt-{x}"
        line.lines[0].set_gid(gid)
        titles[gid] = f"{_short(p.commit)} ({p.created_at[:10]}): {p.latency_ms:.3f} ms p50"
    known = [(x, p.latency_ms) for x, p in zip(xs, points) if p.latency_ms]
    if known:
        ax.plot(*zip(*known), color="tab:blue", linewidth=0.8, alpha=0.6)
    for k, step in enumerate(steps):
        gid = f"step-{k}"
        ax.axvline(step.index - 0.5, color="tab:red", linestyle="--", linewidth=1.2, gid=gid)
        titles[gid] = f"change point: {step.label}"
        ax.annotate(step.label, (step.index - 0.5, 0.0), xycoords=("data", "axes fraction"),
                    xytext=(4, 4), textcoords="offset points", color="tab:red", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.set(ylabel="latency p50 (ms)", title=cell_id + (f"  (noise band \u00b1{band:.1%})"
                                                       if band is not None else ""))
    ax.title.set_fontsize(9)
    base = next((p for p in points if p.macs), None)
    for key, color in (("macs", "tab:purple"), ("cio", "tab:green")):
        first = getattr(base, key, None) if base else None
        rel = [(x, getattr(p, key) / first) for x, p in zip(xs, points)
               if first and getattr(p, key)]
        if rel:
            work.step(*zip(*rel), where="mid", color=color, label=f"{key.upper()} / first")
    work.set(ylabel="work", xticks=xs)
    work.set_xticklabels([_short(p.commit) for p in points], rotation=45, ha="right",
                         fontsize=7)
    if work.get_legend_handles_labels()[0]:
        work.legend(fontsize=7, loc="upper left")
    else:
        work.text(0.5, 0.5, "no work counts in these baselines", transform=work.transAxes,
                  ha="center", va="center", fontsize=8, color="0.4")
        work.set_yticks([])
    return fig


def _rows(history: list, min_step: float) -> list[dict]:
    rows = []
    for cell_id in hist.cells_of(history):
        points = hist.cell_series(history, cell_id)
        band, band_runs = hist.noise_band(points)
        last = next((p for p in reversed(points) if p.latency_ms), None)
        rows.append({"cell_id": cell_id, "points": points,
                     "steps": hist.change_points(points, min_step), "band": band,
                     "band_runs": band_runs, "last": last.latency_ms if last else None,
                     "runs": sum(1 for p in points if p.latency_ms)})
    return rows


def render_history(folders: list[Path], output: Path, min_step: float = 0.05) -> dict:
    """The page for one or more history folders; returns what it found (for --json)."""
    output = Path(output)
    sections, found = [], {}
    for n, folder in enumerate(folders):
        history = hist.load_history(folder)
        rows = _rows(history, min_step)
        drawn = sorted(rows, key=lambda r: not r["steps"])[:MAX_FIGURES]
        figs = []
        for i, row in enumerate(drawn):
            fig = cell_figure(row["cell_id"], row["points"], row["steps"], row["band"])
            figs.append({"cell_id": row["cell_id"],
                         **_save(fig, output.parent / f"{output.stem}_figures" / f"{n}-{i}")})
        sections.append({"folder": str(folder), "device": folder.parent.parent.name,
                         "suite": folder.name, "runs": history, "rows": rows, "figures": figs,
                         "undrawn": len(rows) - len(drawn)})
        found[str(folder)] = {r["cell_id"]: [s.label for s in r["steps"]] for r in rows}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    page = env.get_template("history.html.j2").render(
        sections=sections, min_step=min_step, short=_short)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, page)
    return {"report": str(output), "steps": found}
