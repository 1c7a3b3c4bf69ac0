"""GPU acceptance: what benchbench's CUDA paths measure, checked on the GPU at hand, in one
command and under 8 minutes. Writes a JSON of every check and its figures.

    python benchmarks/gpu_acceptance.py [--out gpu_acceptance.json] [--quick]

Checks (each a section of the JSON, with ``ok`` and the figures behind it):

* ``timing``: robust and paper timing of eager, channels_last, cuda_graphs and compile (fp32,
  fp16) at two sizes against a bare loop (CUDA-synchronised, N forwards / elapsed) timed in the
  same process right after: the ratio per pair (within 10% passes);
* ``compile_sweep``: a compile sweep of one model over 10 sizes -- every cell must have compiled
  its own graph (``graphs_compiled`` >= 1), none timed as eager under a compile label;
* ``energy``: NVML's energy counter against the integral of instant power over a 10 s load, and
  the counter's update period;
* ``clock_events``: NVML clock-event reasons at rest and under load;
* ``equivalence``: each backend's logits against true fp32 (TF32 off);
* ``memory``: the driver's view (NVML process memory, cudaMemGetInfo delta) beside torch's peak;
* ``libraries``: whether onnxruntime-gpu (CUDA / TensorRT EPs) and TensorRT are installed -- where
  they are not (a GPU machine without network), it says so instead of failing.

Without CUDA it writes ``{"skipped": "..."}`` and exits 0 (CI runs it that way).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL = "fassd_net_l2"
SIZES = ((256, 512), (512, 1024))
SWEEP = tuple((h, 2 * h) for h in range(128, 768, 64))          # 10 sizes
BACKENDS = ("eager", "channels_last", "cuda_graphs", "compile")


def _run(suite: dict, tmp: Path) -> list[dict]:
    import benchbench
    from benchbench.suite import suite_from_dict

    spec = suite_from_dict(suite, str(tmp / f"{suite['name']}.yaml"))
    summary = benchbench.run_suite(spec, out_dir=tmp, progress=False)
    return [json.loads(line) for line in (summary.run_dir / "records.jsonl").open()]


def bare_fps(model_name: str, hw, precision: str, channels_last=False, n=200) -> float:
    """The loop a paper's eval script runs: N forwards between two synchronisations."""
    import torch

    import benchbench

    dtype = torch.float16 if precision == "fp16" else torch.float32
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = benchbench.create_model(model_name).eval().cuda().to(dtype, memory_format=fmt)
    x = torch.randn(1, 3, *hw, device="cuda", dtype=dtype).contiguous(memory_format=fmt)
    with torch.inference_mode():
        for _ in range(30):
            model(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            model(x)
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def check_timing(tmp: Path, sizes, quick: bool) -> dict:
    rows = []
    for protocol in ("robust", "paper"):
        backends = [{"name": b, "precision": p} for b in BACKENDS for p in ("fp32", "fp16")]
        records = _run({"name": f"timing_{protocol}", "device": "cuda", "models": [MODEL],
                        "resolutions": [list(s) for s in sizes], "backends": backends,
                        "equivalence": False,
                        "timing": {"protocol": protocol, "warmup": 30, "iterations": 300,
                                   "max_time_s": 2 if quick else 5}}, tmp)
        for r in records:
            if r["status"] != "ok":
                rows.append({"cell": r["cell_id"], "protocol": protocol, "status": r["status"],
                             "error": r.get("error")})
                continue
            bare = bare_fps(MODEL, (r["height"], r["width"]), r["precision"],
                            channels_last=r["backend_name"] == "channels_last")
            rows.append({"cell": r["cell_id"], "protocol": protocol, "fps": r["fps"],
                         "bare_loop_fps": bare, "ratio": r["fps"] / bare,
                         "cuda_graphs": r["protocol"]["cuda_graphs"],
                         "sync": r["protocol"]["sync"]})
    timed = [r for r in rows if "ratio" in r]
    # cuda_graphs and compile are faster than the bare eager loop by design: only eager and
    # channels_last must agree with it
    plain = [r for r in timed if "/eager-" in r["cell"] or "/channels_last-" in r["cell"]]
    return {"ok": bool(plain) and all(0.9 <= r["ratio"] <= 1.1 for r in plain), "rows": rows}


def check_compile_sweep(tmp: Path) -> dict:
    records = _run({"name": "compile_sweep", "device": "cuda", "models": [MODEL],
                    "resolutions": [list(s) for s in SWEEP], "backends": ["compile"],
                    "equivalence": False,
                    "timing": {"warmup": 10, "min_iterations": 20, "max_time_s": 1}}, tmp)
    compiled = [r for r in records if r["status"] == "ok"
                and (r.get("backend_info") or {}).get("graphs_compiled", 0) >= 1]
    return {"ok": len(compiled) == len(SWEEP), "cells": len(records),
            "compiled_cells": len(compiled),
            "graphs": [(r["cell_id"], (r.get("backend_info") or {}).get("graphs_compiled"),
                        r["status"]) for r in records]}


def _load(seconds: float):
    """Keep the GPU busy for ``seconds`` (matmuls), returning when done."""
    import torch

    a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            a @ a
        torch.cuda.synchronize()


def check_energy(seconds: float) -> dict:
    import threading

    import torch
    from benchbench.measure.power.nvml import _handle, _nvml

    pynvml = _nvml()
    h = _handle(pynvml, torch.cuda.current_device())
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
    except pynvml.NVMLError as exc:
        return {"ok": None, "skipped": f"no energy counter on this GPU ({exc})"}
    # the counter's update period: the time between two changes of its value, at rest
    changes, last, t_last = [], pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()
    deadline = time.perf_counter() + 2.0
    while time.perf_counter() < deadline and len(changes) < 10:
        value = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        if value != last:
            now = time.perf_counter()
            changes.append(now - t_last)
            last, t_last = value, now
        time.sleep(0.001)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.perf_counter(), pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0))
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
    t0 = time.perf_counter()
    thread.start()
    _load(seconds)
    stop.set()
    thread.join()
    e1, t1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()
    integral = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(samples, samples[1:]))
    counter_j = (e1 - e0) / 1000.0
    ratio = counter_j / integral if integral else None
    return {"ok": ratio is not None and 0.9 <= ratio <= 1.1, "counter_j": counter_j,
            "power_integral_j": integral, "ratio": ratio, "seconds": t1 - t0,
            "power_samples": len(samples),
            "counter_update_period_ms": (1000 * statistics.median(changes[1:])
                                         if len(changes) > 2 else None)}


def check_clock_events() -> dict:
    import threading

    import torch
    from benchbench.measure.power.nvml import snapshot

    index = torch.cuda.current_device()
    time.sleep(2.0)
    rest = snapshot(index)
    seen: list = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append(snapshot(index)["clock_event_reasons"])
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    _load(5.0)
    done.set()
    thread.join()
    under = sorted({r for reasons in seen if reasons for r in reasons})
    return {"ok": rest["clock_event_reasons"] is not None, "at_rest": rest["clock_event_reasons"],
            "under_load": under, "sm_clock_mhz_at_rest": rest.get("sm_clock_mhz")}


def check_equivalence(tmp: Path) -> dict:
    backends = [{"name": b, "precision": p} for b in BACKENDS for p in ("fp32", "fp16")]
    records = _run({"name": "equivalence", "device": "cuda", "models": [MODEL],
                    "resolutions": [list(SIZES[0])], "backends": backends,
                    "equivalence": True, "timing": {"warmup": 5, "min_iterations": 10,
                                                    "max_time_s": 0.5}}, tmp)
    rows = [{"cell": r["cell_id"], "status": r["status"], "equivalence": r.get("equivalence"),
             "argmax_agreement": r.get("argmax_agreement"),
             "logits_max_abs_diff": r.get("logits_max_abs_diff")} for r in records]
    return {"ok": all(r["status"] == "ok" and r["equivalence"] in ("match", "reference")
                      for r in rows), "rows": rows}


def check_memory(tmp: Path) -> dict:
    records = _run({"name": "memory", "device": "cuda", "models": [MODEL],
                    "resolutions": [list(SIZES[1])], "backends": ["eager", "cuda_graphs"],
                    "equivalence": False,
                    "timing": {"warmup": 5, "min_iterations": 20, "max_time_s": 1}}, tmp)
    keys = ("peak_mem_allocated_mib", "peak_mem_reserved_mib", "gpu_mem_process_mib",
            "gpu_mem_used_delta_mib")
    rows = [{"cell": r["cell_id"], **{k: r.get(k) for k in keys}} for r in records]
    return {"ok": all(r["gpu_mem_process_mib"] is None or
                      r["gpu_mem_process_mib"] >= (r["peak_mem_reserved_mib"] or 0)
                      for r in rows), "rows": rows}


def libraries() -> dict:
    out = {}
    try:
        import onnxruntime as ort
        offered = ort.get_available_providers()
        out["onnxruntime"] = {"version": ort.__version__, "providers": offered}
        if "CUDAExecutionProvider" not in offered:
            out["onnxruntime"]["note"] = ("CPU build only: pip install onnxruntime-gpu for the "
                                          "CUDA / TensorRT EPs (not checked here)")
    except ImportError:
        out["onnxruntime"] = "not installed (the ONNX Runtime checks were not run)"
    try:
        import tensorrt
        out["tensorrt"] = tensorrt.__version__
    except ImportError:
        out["tensorrt"] = "not installed (the TensorRT checks were not run)"
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="gpu_acceptance.json")
    p.add_argument("--quick", action="store_true", help="shorter timing windows")
    args = p.parse_args()
    import torch

    if not torch.cuda.is_available():
        result = {"skipped": "no CUDA device (torch.cuda.is_available() is False): nothing to "
                             "accept here; run this on a GPU machine"}
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(result["skipped"])
        return 0
    started = time.perf_counter()
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "cuda": torch.version.cuda, "libraries": libraries()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, check in (("timing", lambda: check_timing(Path(tmp), SIZES, args.quick)),
                            ("compile_sweep", lambda: check_compile_sweep(Path(tmp))),
                            ("energy", lambda: check_energy(10.0)),
                            ("clock_events", check_clock_events),
                            ("equivalence", lambda: check_equivalence(Path(tmp))),
                            ("memory", lambda: check_memory(Path(tmp)))):
            t0 = time.perf_counter()
            try:
                result[name] = check()
            except Exception as exc:  # noqa: BLE001 - one check failing is a figure too
                result[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            result[name]["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"{name}: ok={result[name].get('ok')} ({result[name]['seconds']} s)",
                  flush=True)
            Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    result["total_s"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out} ({result['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
