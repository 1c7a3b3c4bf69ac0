"""One self-contained HTML report for one or more runs (figures embedded as base64 PNG, and also
written beside the HTML as PNG and SVG). Reads records only, through ``tables`` and ``figures``."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import jinja2
import pandas as pd

from ..fileio import write_atomic
from ..records import FPS_DEFINITIONS, fps_label
from . import figures
from .tables import (CELL_COLUMNS, backend_table, cells_summary, equivalence_text, comparison_table, complexity_table,
                     load_runs, per_class_table, precision_table)

# settings each timing protocol uses (the others do not apply to its numbers)
PROTOCOL_SETTINGS = {
    "paper": ("protocol", "warmup", "warmup_s", "iterations", "threads", "cudnn_benchmark",
              "autograd", "include_transfer"),
    "robust": ("protocol", "warmup", "warmup_s", "min_iterations", "max_iterations",
               "max_time_s", "target_ci_rel", "threads", "cudnn_benchmark", "autograd",
               "include_transfer", "keep_samples"),
}


def protocol_settings(info: dict, frame: pd.DataFrame | None = None) -> dict:
    """The run's timing settings that apply to its protocol; a setting left to the library
    (``threads: null``) shows the value its cells recorded, e.g. ``2 (torch default)``."""
    timing = info.get("timing") or {}
    keys = PROTOCOL_SETTINGS.get(timing.get("protocol"), tuple(timing))
    settings = {k: timing[k] for k in keys if k in timing}
    if settings.get("threads") is None and "threads" in settings and frame is not None:
        used = _recorded(frame, info.get("run_id"), "threads")
        settings["threads"] = (f"{', '.join(map(str, used))} (torch default)" if used
                               else "torch default")
    return settings


def _recorded(frame: pd.DataFrame, run_id, key: str) -> list:
    """The distinct values of ``protocol[key]`` in one run's records."""
    if not len(frame) or "protocol" not in frame:
        return []
    rows = frame.loc[frame["run_id"] == run_id, "protocol"]
    return sorted({p[key] for p in rows if isinstance(p, dict) and p.get(key) is not None})

_TEMPLATES = Path(__file__).parent / "templates"


def _fmt(value):
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(df: pd.DataFrame) -> dict:
    return {"columns": list(df.columns),
            "rows": [[_fmt(v) for v in row] for row in df.itertuples(index=False)]}


def _svg_with_titles(svg: str, titles: dict) -> str:
    """Give each hover point of the SVG a <title> (a browser shows it as a tooltip)."""
    for gid, text in titles.items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{html.escape(text)}</title>',
                          1)
    return svg


def _save(fig, stem: Path) -> dict:
    """Write PNG and SVG beside the report; return what the page embeds: the PNG, or the SVG
    itself where the figure has hover titles (so they work in the page too)."""
    import matplotlib.pyplot as plt

    stem.parent.mkdir(parents=True, exist_ok=True)
    titles = figures.hover_titles(fig)
    svg_buf = io.StringIO()
    fig.savefig(svg_buf, format="svg", bbox_inches="tight")
    svg = _svg_with_titles(svg_buf.getvalue(), titles)
    write_atomic(stem.with_suffix(".svg"), svg)
    # the layout is settled by the first save; the second reuses it (a constrained layout of
    # many panels costs as much as the drawing)
    fig.set_layout_engine("none")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_atomic(stem.with_suffix(".png"), buf.getvalue())
    plt.close(fig)
    inline = svg[svg.index("<svg"):] if titles else None
    return {"png": base64.b64encode(buf.getvalue()).decode(), "svg": inline}


def _accuracy_tables(frame: pd.DataFrame, not_drawn: list) -> tuple[dict | None, dict | None]:
    per_class = per_class_table(frame) if len(frame) else pd.DataFrame()
    if per_class.empty:
        not_drawn.append({"title": "Per-class IoU (FASSD Table III / VI)",
                          "why": "no cell has per-class IoU (no accuracy evaluation in these runs)"})
    precision = precision_table(frame) if len(frame) else pd.DataFrame()
    if precision.empty:
        not_drawn.append({"title": "mIoU at fp32 vs reduced precision (FASSD Table VIII)",
                          "why": "no model was scored at both fp32 and fp16/bf16 at one size"})
    return (_table(per_class) if len(per_class) else None,
            _table(precision) if len(precision) else None)


def _problem(r) -> dict:
    status = r["status"]
    reason = r["error"]
    if status == "ok" and r.get("equivalence") == "mismatch":
        status, reason = "ok, output mismatch", equivalence_text(r)
    return {"model": r["model"], "resolution": r["resolution"], "backend": r["backend"],
            "precision": r["precision"], "status": status, "throttled": r["throttled"],
            "error": reason}


def busy_banner(frame: pd.DataFrame) -> str | None:
    """How many measured cells were timed while other processes used the machine, and why."""
    if not len(frame):
        return None
    ok = frame[frame["status"] == "ok"]
    busy = ok[ok["busy"] == True]  # noqa: E712
    if busy.empty:
        return None
    reasons = sorted({x for v in busy["busy_reasons"] if isinstance(v, list) for x in v})
    return (f"{len(busy)} of {len(ok)} measured cells were timed while the machine was busy "
            f"({'; '.join(reasons[:3])}{' ...' if len(reasons) > 3 else ''}): their numbers "
            f"carry that noise. They are marked BUSY in the tables and with orange crosses in "
            f"the figures; rerun them on a quiet machine before drawing conclusions.")


def _fps_definitions(frame: pd.DataFrame) -> list[str]:
    names = sorted({p for p in frame.get("protocol_name", pd.Series()).dropna()}) \
        if len(frame) else []
    return [f"{fps_label([n])}: {FPS_DEFINITIONS.get(n, n)} ({n} protocol)" for n in names]


def render(run_dirs, output: str | Path) -> Path:
    output = Path(output)
    frame, infos = load_runs(run_dirs)
    fig_dir = output.parent / f"{output.stem}_figures"
    figs, not_drawn = [], []
    for key, (title, draw) in figures.FIGURES.items():
        fig, note = draw(frame)
        if fig is None:
            not_drawn.append({"title": title, "why": note})
            continue
        figs.append({"title": title, **_save(fig, fig_dir / key), "note": note,
                     "files": [f"{fig_dir.name}/{key}.png", f"{fig_dir.name}/{key}.svg"]})
    per_class, precision = _accuracy_tables(frame, not_drawn)
    cells = frame[CELL_COLUMNS] if len(frame) else pd.DataFrame(columns=CELL_COLUMNS)
    comparison, without = comparison_table(frame) if len(frame) else (pd.DataFrame(), 0)
    bad = frame[(frame["status"] != "ok") | (frame["throttled"] == True)  # noqa: E712
                | (frame["equivalence"] == "mismatch")] if len(frame) else frame
    backends = backend_table(frame) if len(frame) else pd.DataFrame()
    summary, power_notes = cells_summary(frame)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        runs=infos, figures=figs, not_drawn=not_drawn,
        cells=_table(summary), power_notes=power_notes, cells_full=_table(cells),
        busy=busy_banner(frame),
        complexity=_table(complexity_table(frame)) if len(frame) else None,
        comparison=_table(comparison) if len(comparison) else None,
        comparison_without=without, timing_blocks=[protocol_settings(i, frame) for i in infos],
        fps_definitions=_fps_definitions(frame),
        per_class=per_class, precision=precision,
        backends=_table(backends) if len(backends) else None,
        counts=frame["status"].value_counts().to_dict() if len(frame) else {},
        problems=[_problem(r) for _, r in bad.iterrows()] if len(bad) else [],
        protocols=sorted({str(p) for p in frame.get("protocol_name", pd.Series()).dropna()}),
        estimates=bool(len(frame) and frame.get("fps_norm_estimate", pd.Series()).fillna(False).any()))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, html)
    return output
