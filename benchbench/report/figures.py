"""The papers' figures, regenerated from records. Each function returns (matplotlib figure, None)
or (None, "why it could not be drawn")."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..devices import profile  # noqa: E402
from ..normalize import literature  # noqa: E402
from ..zoo import list_models, model_card  # noqa: E402

REALTIME_FPS = ((30, "tab:cyan", "30 FPS"), (15, "tab:olive", "15 FPS"))       # FASSD Fig. 7
MIOU_LINES = ((73.0, "tab:cyan", "73% (SOTA average)"), (65.0, "tab:olive", "65% (minimum)"))


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"].copy() if len(frame) else frame


def _panels(ok: pd.DataFrame) -> pd.Series:
    return ok["device_name"].astype(str) + " / " + ok["backend"] + "-" + ok["precision"]


def fps_vs_resolution(frame):
    ok = _ok(frame)
    if ok.empty:
        return None, "no cell was measured successfully"
    ok["panel"] = _panels(ok)
    panels = sorted(ok["panel"].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for series, rows in ok[ok["panel"] == panel].groupby("series"):
            rows = rows.sort_values("height")
            ax.plot(rows["height"], rows["fps"], marker="o", label=series)
        for level, color, label in REALTIME_FPS:
            ax.axhline(level, color=color, linestyle="--", linewidth=1, label=label)
        ax.set(title=panel, xlabel="input height (px); width = 2 x height", ylabel="FPS")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, None


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


def fps_miou_tradeoff(frame):
    """FarSee Fig. 1 / DESANet Fig. 1: normalised FPS vs mIoU, published and measured, Pareto
    front highlighted. Returns (fig, note) where note lists what could not be placed."""
    pub = literature("cityscapes")
    # published points only where the GPU factor is published or measured, never a spec estimate
    pub = pub[pub["fps_norm"].notna() & ~pub["fps_norm_estimate"].astype(bool)].copy()
    pub["miou"] = pub["miou_test"].fillna(pub["miou_val"])
    pub = pub[pub["miou"].notna()].drop_duplicates(["method", "input_h", "input_w", "gpu"])
    measured, skipped = _measured_tradeoff_points(_ok(frame))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.scatter(pub["fps_norm"], pub["miou"], s=18, color="0.55", label="published (normalised)")
    for _, r in pub.iterrows():
        ax.annotate(r["method"], (r["fps_norm"], r["miou"]), fontsize=6, color="0.4",
                    xytext=(2, 2), textcoords="offset points")
    if measured:
        m = pd.DataFrame(measured)
        ax.scatter(m["fps"], m["miou"], s=40, marker="*", color="tab:red",
                   label="measured FPS (normalised) x mIoU" + (" (~ spec-estimate factor)"
                                                                if m["estimate"].any() else ""))
    pts = list(zip(pub["fps_norm"], pub["miou"])) + [(p["fps"], p["miou"]) for p in measured]
    front = pareto_front(pts)
    ax.plot([p[0] for p in front], [p[1] for p in front], color="tab:green", linewidth=1.5,
            label="Pareto front")
    ax.set(xscale="log", xlabel="FPS normalised to a GTX 1080 Ti (log)", ylabel="mIoU (%)",
           title="Cityscapes: speed / accuracy trade-off")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    note = None
    if skipped:
        reasons = pd.Series([s.split(": ", 1)[-1] for s in skipped]).value_counts()
        note = f"{len(skipped)} measured cell(s) not placed: " + "; ".join(
            f"{n} x {reason}" for reason, n in reasons.items())
    return fig, note


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
    ax.boxplot(list(have["latency_samples_ms"]), vert=False, showfliers=True,
               flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set(xlabel="latency per forward (ms)", xscale="log", title="Latency distribution per cell")
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
    "miou_vs_resolution": ("mIoU vs input resolution (FASSD Fig. 6)", miou_vs_resolution),
    "fps_miou_tradeoff": ("FPS (normalised) vs mIoU with the Pareto front (FarSee Fig. 1, "
                          "DESANet Fig. 1)", fps_miou_tradeoff),
    "latency_distributions": ("Latency distributions per cell", latency_distributions),
    "roofline": ("Roofline per device", roofline),
}
