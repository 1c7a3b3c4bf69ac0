"""The papers' figures, regenerated from records. Each function returns (matplotlib figure, None)
or (None, "why it could not be drawn")."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
import pandas as pd  # noqa: E402

from ..devices import profile  # noqa: E402
from ..normalize import literature  # noqa: E402
from ..records import fps_label  # noqa: E402

REALTIME_FPS = ((30, "tab:cyan", "30 FPS"), (15, "tab:olive", "15 FPS"))       # FASSD Fig. 7
MIOU_LINES = ((73.0, "tab:cyan", "73% (SOTA average)"), (65.0, "tab:olive", "65% (minimum)"))


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"].copy() if len(frame) else frame


def _panels(ok: pd.DataFrame) -> pd.Series:
    return ok["device_name"].astype(str) + " / " + ok["backend"] + "-" + ok["precision"]


MAX_SERIES_PER_PANEL = 8      # more models than this in one panel: one panel per family
MAX_LABELLED_POINTS = 40      # more points than this in a panel: only its Pareto front labelled


def _families(models: pd.Series) -> pd.Series:
    """Each model's family from the registry ("other models" for one it does not know)."""
    from ..zoo import list_models, model_card
    known = set(list_models())
    return models.map({m: model_card(m).family if m in known else "other models"
                       for m in models.unique()})


def _facet_crowded(ok: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Split every panel that would hold more than MAX_SERIES_PER_PANEL series into one panel
    per model family (small multiples); returns the frame and whether any panel was split."""
    crowded = ok["panel"].map(ok.groupby("panel")["series"].nunique()) > MAX_SERIES_PER_PANEL
    if not crowded.any():
        return ok, False
    ok = ok.copy()
    families = _families(ok["model"])
    ok.loc[crowded, "panel"] = ok.loc[crowded, "panel"] + " / " + families[crowded]
    return _chunk_crowded(ok), True


def _chunk_crowded(ok: pd.DataFrame) -> pd.DataFrame:
    """A family of more than MAX_SERIES_PER_PANEL models (a user's own, say) is drawn in
    several panels, "(1/2)", "(2/2)", of at most that many models each."""
    for panel, rows in list(ok.groupby("panel")):
        series = sorted(rows["series"].unique())
        if len(series) <= MAX_SERIES_PER_PANEL:
            continue
        parts = -(-len(series) // MAX_SERIES_PER_PANEL)
        size = -(-len(series) // parts)
        part = {name: i // size + 1 for i, name in enumerate(series)}
        ok.loc[rows.index, "panel"] = [f"{panel} ({part[name]}/{parts})"
                                       for name in rows["series"]]
    return ok


def _grid(n: int, width: float, height: float, max_cols: int = 3, **kwargs):
    cols = min(max_cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 2.2, height * rows),
                             squeeze=False, layout="constrained", **kwargs)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n], axes


def _fps_with_ci(rows: pd.DataFrame):
    """Each cell's ``fps`` (the record's, whatever its protocol) and, for robust cells, the 95%
    CI of the median latency as asymmetric error bars (there FPS = 1000 x batch / median, so
    the bar is FPS x median / CI bound). Paper-protocol cells have one number, no bar."""
    fps, lo, hi = [], [], []
    for _, r in rows.iterrows():
        ci = r.get("latency_ci95_ms")
        p50 = r.get("latency_ms_p50")
        value = r["fps"]
        fps.append(value)
        if isinstance(ci, list) and len(ci) == 2 and p50 and all(ci) and min(ci) > 0:
            lo.append(max(0.0, value - value * p50 / ci[1]))
            hi.append(max(0.0, value * p50 / ci[0] - value))
        else:
            lo.append(0.0)
            hi.append(0.0)
    return fps, (lo, hi)


BUSY_LABEL = "timed while the machine was busy"


def _room_for_bars(ax, fps, err) -> None:
    """Remember the highest error bar of a panel (see ``_headroom``)."""
    tops = [f + h for f, h in zip(fps, err[1]) if f == f]
    ax.bb_top = max(tops + [getattr(ax, "bb_top", 0.0)])


def _headroom(axes) -> None:
    """Once every panel is drawn: room above each panel's highest error bar, so no bar ends
    on the frame (with ``sharey`` the tallest panel sets the shared limit)."""
    for ax in axes:
        top = getattr(ax, "bb_top", None)
        low, high = ax.get_ylim()
        if top and top * 1.04 > high:
            ax.set_ylim(low, top * 1.06)


def fps_axis_label(rows: pd.DataFrame, prefix: str = "") -> str:
    """``FPS (1000/p50)`` etc.: the FPS definition of these cells' protocols (records.py)."""
    label = fps_label(rows["protocol_name"]) if "protocol_name" in rows else "FPS"
    return f"{prefix}{label}" if prefix else label


def _mark_busy(ax, rows: pd.DataFrame, xs, ys, handles: dict | None = None) -> None:
    """An orange cross over every point of a cell timed while other processes used the
    machine (its record's ``busy``), so a noise-dominated point never looks like the rest."""
    busy = (rows["busy"] == True).to_numpy() if "busy" in rows else []  # noqa: E712
    if not len(busy) or not busy.any():
        return
    xs, ys = [x for x, b in zip(xs, busy) if b], [y for y, b in zip(ys, busy) if b]
    art = ax.scatter(xs, ys, s=70, marker="x", color="tab:orange", zorder=6, label=BUSY_LABEL)
    if handles is not None:
        handles.setdefault(BUSY_LABEL, art)


def fps_vs_resolution(frame):
    ok = _ok(frame)
    if ok.empty:
        return None, "no cell was measured successfully"
    ok["panel"] = _panels(ok)
    ok, faceted = _facet_crowded(_reference_backend_if_crowded(ok))
    panels = sorted(ok["panel"].unique())
    fig, axes, grid = _grid(len(panels), 4.6, 3.8, sharey=True)
    handles = {}
    for ax, panel in zip(axes, panels):
        for series, rows in ok[ok["panel"] == panel].groupby("series"):
            rows = rows.sort_values("height")
            fps, err = _fps_with_ci(rows)
            line = ax.errorbar(rows["height"], fps, yerr=err, marker="o", capsize=2,
                               label=series)
            _room_for_bars(ax, fps, err)
            handles.setdefault(series, line)
            _mark_busy(ax, rows, rows["height"], fps, handles)
        for level, color, label in REALTIME_FPS:
            line = ax.axhline(level, color=color, linestyle="--", linewidth=1, label=label)
            handles.setdefault(label, line)
        ax.set(title=panel, xlabel="input height (px); width = 2 x height")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        if faceted:
            ax.legend(fontsize=6, loc="upper right")
    _headroom(axes)
    for row in grid:
        row[0].set_ylabel(fps_axis_label(ok))
    if not faceted:
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside right upper",
                   fontsize=7)
    note = ("y-axis shared across panels; error bars: 95% CI of the median latency "
            "(robust protocol)" if len(panels) > 1 else
            "error bars: 95% CI of the median latency (robust protocol)")
    note += busy_note(ok)
    if faceted:
        note += (f"; one panel per model family where a panel would hold more than "
                 f"{MAX_SERIES_PER_PANEL} models, eager-fp32 only where the runs have several "
                 f"backends (all of them: 'FPS vs input resolution per backend')")
    return fig, note


def _reference_backend_if_crowded(ok: pd.DataFrame) -> pd.DataFrame:
    """At a zoo's scale, each device's eager-fp32 cells only (its first backend where it has no
    eager-fp32); the per-backend figure shows every backend."""
    if ok["series"].nunique() <= MAX_SERIES_PER_PANEL or \
            ok[["backend", "precision"]].drop_duplicates().shape[0] < 2:
        return ok
    combo = ok["backend"] + "-" + ok["precision"]
    keep = []
    for _, rows in ok.groupby(ok["device_name"].astype(str)):
        combos = sorted(combo[rows.index].unique())
        chosen = "eager-fp32" if "eager-fp32" in combos else combos[0]
        keep.append(rows[combo[rows.index] == chosen])
    return pd.concat(keep)


def fps_by_backend(frame):
    """One panel per model and device, one line per backend-precision: the same network's
    speed under each way of running it, across the resolution grid. Mismatched cells (output
    not equal to eager fp32's) are drawn hollow."""
    ok = _ok(frame)
    if ok.empty or ok[["backend", "precision"]].drop_duplicates().shape[0] < 2:
        return None, "these runs have one backend/precision: nothing to compare side by side"
    ok["combo"] = ok["backend"] + "-" + ok["precision"]
    ok["panel"] = ok["model"] + " / " + ok["device_name"].astype(str)
    panels = sorted(ok["panel"].unique())
    if len(panels) > MAX_PANELS:
        return _speedup_by_family(ok)
    cols = min(3, len(panels))
    n_rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.4 * cols + 2.4, 3.4 * n_rows),
                             squeeze=False, layout="constrained")
    handles, colors = {}, {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, panel in zip(axes.flat, panels):
        for combo, rows in ok[ok["panel"] == panel].groupby("combo"):
            rows = rows.sort_values("height")
            color = colors.setdefault(combo, palette[len(colors) % len(palette)])
            fps, err = _fps_with_ci(rows)
            line = ax.errorbar(rows["height"], fps, yerr=err, marker="o", capsize=2,
                               color=color, label=combo)
            _room_for_bars(ax, fps, err)
            handles.setdefault(combo, line)
            _mark_busy(ax, rows, rows["height"], fps, handles)
            bad = (rows["equivalence"] == "mismatch").to_numpy()
            if bad.any():
                xs = rows["height"].to_numpy()[bad]
                ys = [f for f, b in zip(fps, bad) if b]
                handles.setdefault("output mismatch", ax.scatter(
                    xs, ys, s=90, facecolors="white", edgecolors="red", zorder=5,
                    label="output mismatch"))
        ax.set(title=panel, xlabel="input height (px)")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    _headroom(list(axes.flat))
    for row in axes:
        row[0].set_ylabel(fps_axis_label(ok))
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside right upper",
               fontsize=7)
    return fig, ("error bars: 95% CI of the median latency; red rings: output differs from "
                 "eager fp32 beyond the suite's tolerance" + busy_note(ok))


MAX_PANELS = 12


def _speedup_by_family(ok: pd.DataFrame):
    """More models than panels a page can hold: per device and backend-precision, each model
    family's speed-up over eager fp32 (the backends table's: ratio of median latencies) at each
    input height -- the median over the family's models, the band from its slowest to its
    fastest model. Every cell's own figure is in the backends table."""
    from .tables import backend_table

    table = backend_table(ok)
    table = table.assign(combo=table["backend"] + "-" + table["precision"],
                         speedup=pd.to_numeric(table["speed-up vs eager fp32"]),
                         height=table["resolution"].str.split("x").str[0].astype(int),
                         family=_families(table["model"]))
    rest = table[(table["combo"] != "eager-fp32") & table["speedup"].notna()]
    if rest.empty:
        return None, "no eager-fp32 cell to compare the other backends with"
    rest = rest.assign(panel=rest["device"].astype(str) + " / " + rest["combo"])
    panels = sorted(rest["panel"].unique())
    fig, axes, grid = _grid(len(panels), 4.8, 3.6, sharey=True)
    for ax, panel in zip(axes, panels):
        for family, rows in rest[rest["panel"] == panel].groupby("family"):
            stats = rows.groupby("height")["speedup"].agg(["median", "min", "max"])
            line, = ax.plot(stats.index, stats["median"], marker="o", label=family)
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.15,
                            color=line.get_color())
        ax.axhline(1.0, color="k", linewidth=0.8)
        ax.set(title=f"{panel} vs eager-fp32", xlabel="input height (px)")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for row in grid:
        row[0].set_ylabel("speed-up (median latency ratio)")
    return fig, (f"{ok['model'].nunique()} models: more than {MAX_PANELS} panels, so one line "
                 f"per model family (median of its models; band: slowest to fastest model); "
                 f"each cell is in the backends table")


def miou_vs_resolution(frame):
    ok = _ok(frame)
    if ok.empty or ok["miou"].isna().all():
        return None, ("no cell of these runs has accuracy (mIoU): they were timing runs without "
                      "a dataset and weights")
    have = ok[ok["miou"].notna()].copy()
    several = have[["backend", "precision"]].drop_duplicates().shape[0] > 1
    have["label"] = have["series"] + (" " + have["backend"] + "-" + have["precision"]
                                      if several else "")
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, rows in have.groupby("label"):
        rows = rows.sort_values("height").drop_duplicates("height")
        ax.plot(rows["height"], rows["miou"], marker="o", label=label)
    for level, color, label in MIOU_LINES:
        ax.axhline(level, color=color, linestyle="--", linewidth=1, label=label)
    ax.set(xlabel="input height (px); width = 2 x height", ylabel="mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    protocols = sorted(set(have["eval_at"].dropna()))
    note = f"eval_at: {', '.join(protocols)}" if protocols else None
    if "multi_scale" in have and have["multi_scale"].fillna(False).astype(bool).any():
        note = (note + "; " if note else "") + "multi-scale evaluation"
    return fig, note


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (higher FPS, higher mIoU), sorted by FPS."""
    front = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def _measured_tradeoff_points(ok: pd.DataFrame) -> tuple[list[dict], list[str]]:
    from ..zoo import list_models, model_card

    known, points, skipped = set(list_models()), [], []
    for _, r in ok.iterrows():
        if r["fps_norm_1080ti"] is None or pd.isna(r["fps_norm_1080ti"]):
            skipped.append(f"{r['model']} {r['resolution']} on {r['device_name']}: "
                           f"{r.get('fps_norm_reason') or 'no normalised FPS'}")
            continue
        miou, source = r["miou"], "measured"
        if miou is None or pd.isna(miou):
            reps = [x for x in (model_card(r["model"]).reported if r["model"] in known else ())
                    if x.miou_val and tuple(x.input_hw) == (r["height"], r["width"])]
            if not reps:
                skipped.append(f"{r['model']} {r['resolution']}: no mIoU measured or published")
                continue
            miou, source = reps[0].miou_val, f"published mIoU ({reps[0].source})"
        points.append({"label": f"{r['model']} {r['resolution']} {r['backend']}-{r['precision']}",
                       "fps": r["fps_norm_1080ti"], "miou": miou, "miou_source": source,
                       "estimate": bool(r.get("fps_norm_estimate"))})
    return points, skipped


def plain_log_ticks(axis) -> None:
    """Log axis ticks at 1-2-5 steps written as plain numbers (not 2x10^1)."""
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


_OFFSETS = ((4, 3), (4, -10), (-4, 3), (-4, -10), (0, 7), (0, -13), (8, 0), (-8, 0))


def place_labels(ax, points: list[tuple[float, float, str]], fontsize=7, color="0.2") -> list:
    """Label points without overlap: try eight positions around each point and keep the first
    whose box overlaps no placed label and stays inside the axes; a label with no free place is
    left out (its point keeps a hover title in the SVG). Returns the placed text artists."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    placed, boxes = [], []
    for x, y, text in points:
        for dx, dy in _OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            art = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                              fontsize=fontsize, color=color, ha=ha)
            box = art.get_window_extent(renderer).padded(3)
            inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and
                      box.y0 >= axes_box.y0 and box.y1 <= axes_box.y1)
            if inside and not any(box.overlaps(b) for b in boxes):
                boxes.append(box)
                placed.append(art)
                break
            art.remove()
    return placed


def _hover_points(ax, xs, ys, titles, **style) -> None:
    """One scatter per point, each with an SVG id that ``report.html`` turns into a <title>
    tooltip, so unlabelled points still say what they are."""
    hover = hover_titles(ax.figure)
    start = len(hover)              # several panels of one figure: ids stay unique
    for i, (x, y, title) in enumerate(zip(xs, ys, titles)):
        art = ax.scatter([x], [y], **style)
        art.set_gid(f"bbpt-{start + i}")
        art.set_label("_nolegend_")
        hover[art.get_gid()] = title


def hover_titles(fig) -> dict:
    """gid -> tooltip text of a figure's hover points."""
    if not hasattr(fig, "bb_hover_titles"):
        fig.bb_hover_titles = {}
    return fig.bb_hover_titles


def fps_miou_tradeoff(frame):
    """FarSee Fig. 1 / DESANet Fig. 1: normalised FPS vs mIoU, published and measured, Pareto
    front highlighted. Only the front and the measured points are labelled; every other point
    has a hover title. Returns (fig, note) where note lists what could not be placed."""
    pub = literature("cityscapes")
    # published points only where the GPU factor is published or measured, never a spec estimate
    pub = pub[pub["fps_norm"].notna() & ~pub["fps_norm_estimate"].astype(bool)].copy()
    pub["miou"] = pub["miou_test"].fillna(pub["miou_val"])
    pub = pub[pub["miou"].notna()].drop_duplicates(["method", "input_h", "input_w", "gpu"])
    measured, skipped = _measured_tradeoff_points(_ok(frame))
    fig, ax = plt.subplots(figsize=(8, 5.2), layout="constrained")
    titles = [f"{r['method']} ({r['source']}): {r['fps_norm']:.1f} FPS norm., "
              f"{r['miou']:.1f}% mIoU" for _, r in pub.iterrows()]
    _hover_points(ax, pub["fps_norm"], pub["miou"], titles, s=18, color="0.55")
    ax.scatter([], [], s=18, color="0.55", label="published (normalised)")
    pts = list(zip(pub["fps_norm"], pub["miou"])) + [(p["fps"], p["miou"]) for p in measured]
    front = pareto_front(pts)
    ax.plot([p[0] for p in front], [p[1] for p in front], color="tab:green", linewidth=1.5,
            label="Pareto front")
    if measured:
        m = pd.DataFrame(measured)
        ax.scatter(m["fps"], m["miou"], s=50, marker="*", color="tab:red", zorder=3,
                   label="measured FPS (normalised) x mIoU" + (" (~ spec-estimate factor)"
                                                                if m["estimate"].any() else ""))
    ax.set(xscale="log", xlabel="FPS normalised to a GTX 1080 Ti (log)", ylabel="mIoU (%)",
           title="Cityscapes: speed / accuracy trade-off")
    plain_log_ticks(ax.xaxis)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax)
    front_set = set(front)
    labels = [(p["fps"], p["miou"], p["label"]) for p in measured
              if len(measured) <= MAX_LABELLED_POINTS or (p["fps"], p["miou"]) in front_set]
    labels += [(r["fps_norm"], r["miou"], r["method"]) for _, r in pub.iterrows()
               if (r["fps_norm"], r["miou"]) in front_set]
    place_labels(ax, labels)
    note = "labelled: the Pareto front and measured points; hover a grey point for its name"
    if skipped:
        reasons = pd.Series([s.split(": ", 1)[-1] for s in skipped]).value_counts()
        note += f". {len(skipped)} measured cell(s) not placed: " + "; ".join(
            f"{n} x {reason}" for reason, n in reasons.items())
    return fig, note


def _device_groups(ok: pd.DataFrame):
    ok = ok.copy()
    ok["panel"] = _panels(ok)
    return ok


def legend_outside(ax, fontsize=7) -> None:
    """The legend beside the axes, never over a point (constrained layout makes room)."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def busy_note(ok: pd.DataFrame) -> str:
    n = int((ok["busy"] == True).sum()) if "busy" in ok else 0  # noqa: E712
    return f"; orange crosses: {n} cell(s) {BUSY_LABEL}" if n else ""


def _finish_panel(ax, rows, x: str, y: str) -> None:
    """What every per-device measured panel shares: plain log x ticks, grid, legend, and each
    point labelled with its input size where it fits."""
    ax.title.set_fontsize(9)
    ax.margins(0.08)             # no point or ring on the frame
    plain_log_ticks(ax.xaxis)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax)
    place_labels(ax, [(r[x], r[y], r["resolution"]) for _, r in rows.iterrows()], fontsize=6)


def measured_speed_cost(frame):
    """The user's own cells on every device, normalised or not: measured FPS vs GFLOPs (papers'
    convention) per device and backend, with each panel's Pareto front (fewer GFLOPs and more
    FPS dominate). Always drawable when a cell was measured. With more than
    MAX_SERIES_PER_PANEL models, points are coloured by model family."""
    ok = _ok(frame)
    ok = ok[ok["gflops"].notna()] if len(ok) else ok
    if ok.empty:
        return None, "no cell was measured successfully"
    ok = _device_groups(ok)
    by_family = ok["series"].nunique() > MAX_SERIES_PER_PANEL
    if by_family:
        ok["series"] = _families(ok["model"])
    panels = sorted(ok["panel"].unique())
    fig, axes, _ = _grid(len(panels), 5.6, 4.4, max_cols=min(len(panels), 4))
    crowded = False
    for ax, panel in zip(axes, panels):
        rows = ok[ok["panel"] == panel]
        for model, group in rows.groupby("series"):
            ax.scatter(group["gflops"], group["fps"], s=14 if by_family else 26, label=model)
        _mark_busy(ax, rows, rows["gflops"], rows["fps"])
        # fewer GFLOPs is better: the front of (-GFLOPs, FPS), drawn back at +GFLOPs
        front = sorted((-neg_g, f) for neg_g, f in pareto_front(
            [(-g, f) for g, f in zip(rows["gflops"], rows["fps"])]))
        ax.plot([p[0] for p in front], [p[1] for p in front], color="tab:green", linewidth=1,
                marker="o", markerfacecolor="none", markersize=9, label="Pareto front")
        ax.set(xscale="log", yscale="log", xlabel="GFLOPs (papers' convention, log)",
               ylabel=fps_axis_label(rows, "measured ") + ", not normalised, log", title=panel)
        plain_log_ticks(ax.yaxis)
        if len(rows) > MAX_LABELLED_POINTS:
            crowded = True
            on_front = set(front)
            rows = rows[[(g, f) in on_front for g, f in zip(rows["gflops"], rows["fps"])]]
            rows = rows.assign(resolution=rows["model"] + " " + rows["resolution"])
        _finish_panel(ax, rows, "gflops", "fps")
    note = "measured on each device as is (no GPU normalisation); labels: input size" + \
        busy_note(ok)
    if by_family:
        note += f"; colours: model family (more than {MAX_SERIES_PER_PANEL} models)"
    if crowded:
        note += (f"; in panels of more than {MAX_LABELLED_POINTS} points only the Pareto "
                 f"front is labelled (model and size)")
    return fig, note


def measured_fps_miou(frame):
    """Measured FPS (not normalised) vs measured mIoU, per device: the trade-off for devices
    without a GPU factor (CPUs, new GPUs), where the normalised plot cannot place them."""
    ok = _ok(frame)
    have = ok[ok["miou"].notna()] if len(ok) else ok
    if have.empty:
        return None, ("no cell has a measured mIoU at its own input size (run with a suite "
                      "`accuracy:` section); the speed / cost plot shows the measured cells")
    have = _device_groups(have)
    panels = sorted(have["panel"].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), squeeze=False,
                             layout="constrained")
    for ax, panel in zip(axes[0], panels):
        rows = have[have["panel"] == panel]
        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (model, group) in enumerate(rows.groupby("series")):
            color = palette[i % len(palette)]
            titles = [f"{model} {r['resolution']}: {r['fps']:.1f} FPS, {r['miou']:.1f}% mIoU"
                      for _, r in group.iterrows()]
            _hover_points(ax, group["fps"], group["miou"], titles, s=30, color=color)
            ax.scatter([], [], s=30, color=color, label=model)
        _mark_busy(ax, rows, rows["fps"], rows["miou"])
        front = pareto_front(list(zip(rows["fps"], rows["miou"])))
        ax.plot([p[0] for p in front], [p[1] for p in front], color="tab:green", linewidth=1,
                label="Pareto front")
        ax.set(xscale="log", xlabel=fps_axis_label(rows, "measured ") + ", not normalised, log",
               ylabel="mIoU (%)",
               title=panel)
        _finish_panel(ax, rows, "fps", "miou")
    return fig, "measured FPS as is, not normalised across devices" + busy_note(have)


def latency_distributions(frame):
    ok = _ok(frame)
    have = ok[ok["latency_samples_ms"].map(lambda s: isinstance(s, list) and len(s) > 0)] \
        if len(ok) else ok
    if have.empty:
        return None, ("no per-iteration samples: cells were timed with the 'paper' protocol "
                      "(one timing over N iterations) or none succeeded")
    have = have.sort_values(["model", "height", "backend"])
    labels = [f"{r['series']} {r['resolution']} {r['backend']}-{r['precision']}"
              for _, r in have.iterrows()]
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.32 * len(labels) + 1)))
    ax.boxplot(list(have["latency_samples_ms"]), orientation="horizontal", showfliers=True,
               flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set(xlabel="latency per forward (ms)", xscale="log", title="Latency distribution per cell")
    plain_log_ticks(ax.xaxis)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig, None


def roofline(frame):
    """Per device: arithmetic intensity = 2*MACs / (CIO x bytes per element) against the
    device's peak compute and bandwidth; each cell at its achieved 2*MACs*FPS."""
    ok = _ok(frame)
    if ok.empty:
        return None, "no cell was measured successfully"
    devices, missing = [], []
    for key, rows in ok.groupby(ok["device_key"].fillna("unknown")):
        prof = profile(key) if key != "unknown" else None
        if not prof or not prof["fp32_tflops"] or not prof["mem_bw_gbs"]:
            name = prof["name"] if prof else rows["device_name"].iloc[0]
            missing.append(f"{name}: no peak compute / bandwidth in its device profile")
            continue
        devices.append((prof, rows))
    if not devices:
        return None, "; ".join(missing)
    fig, axes = plt.subplots(1, len(devices), figsize=(6 * len(devices), 4.2), squeeze=False)
    import numpy as np
    for ax, (prof, rows) in zip(axes[0], devices):
        ai = np.logspace(-1, 4, 200)
        bw = prof["mem_bw_gbs"] * 1e9
        for peak_tf, label, style in ((prof["fp32_tflops"], "FP32 peak", "-"),
                                      (prof["fp16_tflops"], "FP16 peak", "--")):
            if peak_tf:
                ax.plot(ai, np.minimum(peak_tf * 1e12, ai * bw) / 1e12, style, color="k",
                        linewidth=1, label=label)
        for _, r in rows.iterrows():
            bytes_per = 2 if r["precision"] in ("fp16", "bf16") else 4
            intensity = 2 * r["macs"] / (r["cio"] * bytes_per)
            achieved = 2 * r["macs"] * r["fps"] / 1e12
            ax.scatter(intensity, achieved, s=22, label=f"{r['model']} {r['resolution']} "
                       f"{r['backend']}-{r['precision']}")
        ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / byte of CIO)",
               ylabel="TFLOP/s (2 x MACs)", title=prof["name"])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig, ("; ".join(missing) if missing else None)


FIGURES = {
    "fps_vs_resolution": ("FPS vs input resolution (FASSD Fig. 7)", fps_vs_resolution),
    "fps_by_backend": ("FPS vs input resolution per backend", fps_by_backend),
    "miou_vs_resolution": ("mIoU vs input resolution (FASSD Fig. 6)", miou_vs_resolution),
    "fps_miou_tradeoff": ("FPS (normalised) vs mIoU with the Pareto front (FarSee Fig. 1, "
                          "DESANet Fig. 1)", fps_miou_tradeoff),
    "measured_fps_miou": ("Measured FPS vs mIoU per device (not normalised)", measured_fps_miou),
    "measured_speed_cost": ("Measured FPS vs GFLOPs per device (speed / cost trade-off, not "
                            "normalised)", measured_speed_cost),
    "latency_distributions": ("Latency distributions per cell", latency_distributions),
    "roofline": ("Roofline per device", roofline),
}
