"""One self-contained HTML report for one or more runs (figures embedded as base64 PNG, and also
written beside the HTML as PNG and SVG). Reads records only, through ``tables`` and ``figures``."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import jinja2
import pandas as pd

from . import figures
from .tables import (CELL_COLUMNS, comparison_table, complexity_table, load_runs,
                     per_class_table, precision_table)

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


def _save(fig, stem: Path) -> str:
    import matplotlib.pyplot as plt

    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".svg"), bbox_inches="tight")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    stem.with_suffix(".png").write_bytes(buf.getvalue())
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


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
        figs.append({"title": title, "png": _save(fig, fig_dir / key), "note": note,
                     "files": [f"{fig_dir.name}/{key}.png", f"{fig_dir.name}/{key}.svg"]})
    per_class, precision = _accuracy_tables(frame, not_drawn)
    cells = frame[CELL_COLUMNS] if len(frame) else pd.DataFrame(columns=CELL_COLUMNS)
    bad = frame[(frame["status"] != "ok") | (frame["throttled"] == True)] if len(frame) else frame  # noqa: E712
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        runs=infos, figures=figs, not_drawn=not_drawn,
        cells=_table(cells), complexity=_table(complexity_table(frame)) if len(frame) else None,
        comparison=_table(comparison_table(frame)) if len(frame) else None,
        per_class=per_class, precision=precision,
        counts=frame["status"].value_counts().to_dict() if len(frame) else {},
        problems=bad[["model", "resolution", "backend", "precision", "status", "throttled",
                      "error"]].to_dict("records") if len(bad) else [],
        protocols=sorted({str(p) for p in frame.get("protocol_name", pd.Series()).dropna()}),
        estimates=bool(len(frame) and frame.get("fps_norm_estimate", pd.Series()).fillna(False).any()))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html)
    return output
