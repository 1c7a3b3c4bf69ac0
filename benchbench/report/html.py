"""One self-contained HTML page for one or more runs: the cell table, FPS vs input resolution,
the environment and protocol of each run. Figures are embedded as base64 PNG."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import jinja2
import pandas as pd

from .tables import CELL_COLUMNS, load_runs

_TEMPLATES = Path(__file__).parent / "templates"


def _fig_to_base64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def fps_vs_resolution(frame: pd.DataFrame):
    """FASSD Fig. 7 style: FPS against input height, a line per model, a panel per
    device/backend, with the 30 and 15 FPS real-time lines. None when nothing was measured."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[frame["status"] == "ok"].copy()
    if ok.empty:
        return None
    ok["panel"] = ok["device_name"].astype(str) + " / " + ok["backend"] + "-" + ok["precision"]
    panels = sorted(ok["panel"].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        sub = ok[ok["panel"] == panel]
        for model, rows in sub.groupby("model"):
            rows = rows.sort_values("height")
            ax.plot(rows["height"], rows["fps"], marker="o", label=model)
        for level, color in ((30, "c"), (15, "y")):
            ax.axhline(level, color=color, linestyle="--", linewidth=1)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("input height (px), width = 2 x height")
        ax.set_ylabel("FPS")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    data = _fig_to_base64(fig)
    plt.close(fig)
    return data


def _fmt(value):
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(run_dirs, output: str | Path) -> Path:
    frame, infos = load_runs(run_dirs)
    plot = fps_vs_resolution(frame) if len(frame) else None
    rows = [[_fmt(v) for v in row] for row in frame[CELL_COLUMNS].itertuples(index=False)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        runs=infos, columns=CELL_COLUMNS, rows=rows, fps_plot=plot,
        counts=frame["status"].value_counts().to_dict() if len(frame) else {},
        failed=frame[frame["status"] != "ok"][["model", "resolution", "backend", "precision",
                                              "status", "error"]].to_dict("records")
        if len(frame) else [])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html)
    return output
