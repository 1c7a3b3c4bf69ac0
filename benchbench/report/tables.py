"""Records -> tidy pandas tables. The report reads these only (never the measurement code)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..normalize import device_key_for, gpu_key, normalize_fps
from ..errors import UsageError
from ..records import WORK_FIELDS, fps_label
from ..store import current_records, load_run_info, read_records

RUN_KEYS = ("run_id", "suite", "device", "timing", "environment")

CELL_COLUMNS = ["model", "resolution", "batch", "backend", "precision", "device_name", "status",
                "fps", "fps_norm_1080ti", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90",
                "latency_ms_p99", "latency_ms_std", "iterations", "protocol_name", "busy", "miou", "power_w_mean",
                "energy_mj_per_frame", "fps_per_watt", "throttled", "power_unavailable",
                "equivalence", "argmax_agreement", "logits_max_abs_diff", "ran_on", "error"]
# what the page shows by default; the rest is in a collapsible table and in `bench export`
CELL_SUMMARY_COLUMNS = ["model", "resolution", "backend", "device_name", "status", "fps",
                        "latency_ms_p50", "latency_ms_p99", "fps_norm_1080ti", "miou", "power",
                        "output vs eager fp32"]


def ran_on(where: dict | None) -> str | None:
    """``executor: host`` of a record (older records have none)."""
    if not where:
        return None
    host = where.get("host")
    return f"{where.get('name')}: {host}" if host else where.get("name")


def power_text(r) -> str:
    """Mean power and energy per frame, or why there is none (never a blank cell)."""
    reason = power_missing_reason(r)
    return f"n/a ({reason})" if reason else _power_value(r)


def _power_value(r) -> str:
    value = r.get("power_w_mean")
    if value is None or value != value:
        return ""
    energy = r.get("energy_mj_per_frame")
    per_frame = f", {energy:.3g} mJ/frame" if isinstance(energy, float) and energy == energy \
        else ""
    return f"{value:.2f} W{per_frame}"


def power_missing_reason(r) -> str | None:
    """Why an ok cell has no power figure (None when it has one, or did not run)."""
    value = r.get("power_w_mean")
    if (value is not None and value == value) or r.get("status") != "ok":
        return None
    return r.get("power_unavailable") or r.get("power_error") or "no power sampler"


def power_column(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The power column of a table, each reason for a missing figure said once: cells read
    ``n/a [1]`` and the notes ``[1] reason``."""
    texts, notes = [], []
    for _, r in frame.iterrows():
        reason = power_missing_reason(r)
        if reason is None:
            texts.append(_power_value(r))
            continue
        if reason not in notes:
            notes.append(reason)
        texts.append(f"n/a [{notes.index(reason) + 1}]")
    return texts, [f"[{i}] {reason}" for i, reason in enumerate(notes, 1)]


def frame_fps_label(frame: pd.DataFrame) -> str:
    """The FPS header of a table of these cells: the protocols' FPS definitions (records.py)."""
    if not len(frame):
        return "FPS"
    return fps_label(frame.loc[frame["status"] == "ok", "protocol_name"])


def status_text(r) -> str:
    """``ok``, or ``ok, BUSY`` for a cell timed while other processes used the machine."""
    return f"{r['status']}, BUSY" if r.get("busy") is True else r["status"]


def cells_summary(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The page's table of cells, and the notes its power column points to."""
    if not len(frame):
        return pd.DataFrame(columns=CELL_SUMMARY_COLUMNS), []
    view = frame.copy()
    view["backend"] = view["backend"] + "-" + view["precision"]
    view["power"], notes = power_column(view)          # reads the plain status: before BUSY
    view["status"] = [status_text(r) for _, r in view.iterrows()]
    view["output vs eager fp32"] = [equivalence_text(r) for _, r in view.iterrows()]
    return view[CELL_SUMMARY_COLUMNS].rename(columns={"fps": frame_fps_label(frame)}), notes


def equivalence_text(r) -> str:
    """``match (argmax 100.00%)``, ``MISMATCH (...)``, ``reference``; blank when not checked."""
    verdict = r.get("equivalence")
    if not isinstance(verdict, str):
        return ""
    share = r.get("argmax_agreement")
    agree = f"argmax {share:.2%}" if isinstance(share, float) and share == share else ""
    if verdict == "mismatch":
        return f"MISMATCH: {r.get('equivalence_reason') or agree}"
    if verdict == "unchecked":
        return f"unchecked ({r.get('equivalence_reason')})"
    return f"{verdict} ({agree})" if agree and verdict != "reference" else verdict


def backend_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Backend x precision per model, size and device: FPS, speed-up over eager fp32 (ratio of
    median latencies, or of FPS for paper-protocol cells) and agreement with eager fp32's
    output. Empty when the runs have one backend/precision only."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty or ok[["backend", "precision"]].drop_duplicates().shape[0] < 2:
        return pd.DataFrame()
    key = ["model", "resolution", "batch", "device_name"]
    ok = ok.sort_values(key + ["backend", "precision"], kind="stable")
    ref = ok[(ok["backend"] == "eager") & (ok["precision"] == "fp32")].drop_duplicates(key)
    ref = ref.set_index(key)[["latency_ms_p50", "fps"]]
    refs = [ref.loc[k] if k in ref.index else None for k in ok[key].itertuples(index=False)]
    records = ok.to_dict("records")
    fps_header = frame_fps_label(ok)
    return pd.DataFrame([{
        "model": r["model"], "resolution": r["resolution"], "device": r["device_name"],
        "backend": r["backend"], "precision": r["precision"], fps_header: r["fps"],
        "p50 ms": r["latency_ms_p50"], "speed-up vs eager fp32": _speedup(r, ref_row),
        "argmax agreement": _share(r.get("argmax_agreement")),
        "max |logit diff|": _sci(r.get("logits_max_abs_diff")),
        "output": equivalence_text(r) or "not checked"} for r, ref_row in zip(records, refs)])


def _share(x) -> str:
    return f"{x:.2%}" if isinstance(x, float) and x == x else ""


def _sci(x) -> str:
    return f"{x:.2g}" if isinstance(x, float) and x == x else ""


def _speedup(r, ref) -> float | None:
    if ref is None:
        return None
    a, b = ref.get("latency_ms_p50"), r.get("latency_ms_p50")
    if _number(a) and _number(b):
        return a / b
    return r["fps"] / ref["fps"] if _number(r.get("fps")) and _number(ref.get("fps")) else None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and x == x and x > 0


def load_runs(run_dirs) -> tuple[pd.DataFrame, list[dict]]:
    """All records of the given run directories as one frame, plus each run's run.json."""
    infos, rows, seen = [], [], set()
    for run_dir in run_dirs:
        if Path(run_dir).resolve() in seen:      # the same run twice would double every row
            continue
        seen.add(Path(run_dir).resolve())
        info = load_run_info(run_dir)
        missing = [k for k in RUN_KEYS if k not in info]
        if missing:
            raise UsageError(f"{Path(run_dir) / 'run.json'}: not a benchbench run (missing "
                             f"{', '.join(missing)})")
        infos.append(info)
        for rec in current_records(read_records(Path(run_dir) / "records.jsonl")):
            rec = dict(rec)
            rec["protocol_name"] = (rec.get("protocol") or {}).get("name")
            rec["ran_on"] = ran_on(rec.get("executor"))
            rows.append(rec)
    frame = pd.DataFrame(rows)
    for col in set(CELL_COLUMNS + list(WORK_FIELDS) + ["height", "width",
                                   "latency_samples_ms", "miou", "iou_per_class", "target",
                                   "pixel_acc", "n_images", "eval_at", "multi_scale",
                                   "accuracy_unavailable", "accuracy_error", "power_error",
                                   "device", "equivalence_reason", "busy_reasons"]) - {"resolution", "protocol_name", "fps_norm_1080ti", "ran_on"}:
        if col not in frame.columns:
            frame[col] = None
    if len(frame):
        frame["backend_name"] = frame["backend"]
        if "backend_label" in frame.columns:        # compile[mode=max-autotune] etc.
            frame["backend"] = frame["backend_label"].fillna(frame["backend"])
        frame["resolution"] = frame["height"].astype(str) + "x" + frame["width"].astype(str)
        several = frame["run_id"].nunique() > 1
        frame["series"] = frame["model"] + (" [" + frame["run_id"] + "]" if several else "")
        _add_normalisation(frame)
    else:
        frame["resolution"] = frame["fps_norm_1080ti"] = None
    return frame, infos


def _runs_tensorrt(backend_name) -> bool:
    """Whether the cell's backend runs a TensorRT engine (FASSD's TensorRT FPS factor)."""
    from ..measure.backends import BACKENDS
    cls = BACKENDS.get(backend_name)
    return bool(cls is not None and cls.CAPABILITIES.tensorrt_engine)


def _add_normalisation(frame: pd.DataFrame) -> None:
    keys, values, estimates, reasons = [], [], [], []
    for _, r in frame.iterrows():
        key = device_key_for(r["device_name"], r["device"], r["target"])
        n = normalize_fps(r["fps"] if r["status"] == "ok" else None, key,
                          tensorrt=_runs_tensorrt(r["backend_name"]))
        keys.append(key)
        values.append(n.value)
        estimates.append(n.estimate)
        reasons.append(n.reason)
    frame["device_key"] = keys
    frame["fps_norm_1080ti"] = values
    frame["fps_norm_estimate"] = estimates
    frame["fps_norm_reason"] = reasons


def complexity_table(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[frame["params"].notna()]
    cols = ["model", "resolution", "params", "gflops", "macs", "cio", "moc"]
    return ok[cols].drop_duplicates(["model", "resolution"]).sort_values(["model", "resolution"])


def comparison_table(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Table X style: measured FPS and normalised FPS beside each model's published figures at
    the same input size, with the ratio measured / published (normalised). Only cells with a
    published counterpart; also returns how many measured cells had none."""
    from ..zoo import list_models, model_card

    known = set(list_models())
    rows, without = [], 0
    fps_header = frame_fps_label(frame)
    for _, r in frame[frame["status"] == "ok"].iterrows():
        published, seen = [], set()
        for rep in (model_card(r["model"]).reported if r["model"] in known else ()):
            key = (rep.fps, rep.gpu, rep.tensorrt)
            if rep.fps and tuple(rep.input_hw) == (r["height"], r["width"]) and key not in seen:
                seen.add(key)
                published.append(rep)
        if not published:
            without += 1
            continue
        for rep in published:
            pub_norm = None
            if rep is not None:   # a spec-estimate factor (Jetsons) gives no comparable norm
                n = normalize_fps(rep.fps, gpu_key(rep.gpu), rep.tensorrt)
                pub_norm = None if n.estimate else n.value
            rows.append({
                "model": r["model"], "resolution": r["resolution"],
                "device": r["device_name"], "backend": f"{r['backend']}-{r['precision']}",
                fps_header: r["fps"], "fps_norm_1080ti": r["fps_norm_1080ti"],
                "norm_estimate": r.get("fps_norm_estimate"),
                "published_fps": rep.fps if rep else None,
                "published_gpu": rep.gpu if rep else None,
                "published_fps_norm": pub_norm,
                "ratio_norm": (r["fps_norm_1080ti"] / pub_norm
                               if rep and pub_norm and r["fps_norm_1080ti"] else None),
                "published_source": rep.source if rep else None,
            })
    return pd.DataFrame(rows), without



def per_class_table(frame: pd.DataFrame) -> pd.DataFrame:
    """FASSD Table III / VI style: one row per evaluated cell, IoU (%) per named class, mIoU."""
    has = frame[frame["iou_per_class"].map(lambda v: isinstance(v, dict) and bool(v))]
    rows = [{"model": r["model"], "resolution": r["resolution"],
             "backend": f"{r['backend']}-{r['precision']}",
             **{name: _one_decimal(v) for name, v in r["iou_per_class"].items()},
             "mIoU": _one_decimal(r["miou"]), "eval_at": r["eval_at"] + (" ms" if r["multi_scale"] else "")}
            for _, r in has.iterrows()]
    return pd.DataFrame(rows)


def _one_decimal(value):
    """A percentage as the papers print it ("73.1")."""
    return f"{value:.1f}" if isinstance(value, (int, float)) and value == value else value


def precision_table(frame: pd.DataFrame) -> pd.DataFrame:
    """FASSD Table VIII style: mIoU at fp32 beside the same model and size at reduced precision
    (fp16 / bf16, any backend), with the difference. fp32 comes from the same backend when the
    run has it, else from eager fp32."""
    scored = frame[(frame["status"] == "ok") & frame["miou"].notna()]
    rows = []
    for _, low in scored[scored["precision"] != "fp32"].iterrows():
        same = scored[(scored["model"] == low["model"]) & (scored["resolution"] == low["resolution"])
                      & (scored["precision"] == "fp32")]
        ref = same[same["backend"] == low["backend"]]
        ref = ref if len(ref) else same[same["backend"] == "eager"]
        if ref.empty:
            continue
        fp32 = ref.iloc[0]
        rows.append({"model": low["model"], "resolution": low["resolution"],
                     "fp32": f"{fp32['backend']}-fp32", "mIoU fp32": fp32["miou"],
                     "reduced": f"{low['backend']}-{low['precision']}",
                     "mIoU reduced": low["miou"], "difference": low["miou"] - fp32["miou"]})
    return pd.DataFrame(rows)
