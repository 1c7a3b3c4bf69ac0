"""Run one ``trtexec`` cell on a board (over SSH) or on this machine, and write the same record
as a local cell.

On the host: build the model, analyse it, export a static-shape ONNX (the TensorRT backend's
export). On the board: build the engine with trtexec (cached by ONNX hash + TensorRT version +
flags), time it with trtexec (``--exportTimes`` for per-inference samples) with tegrastats
beside it (an idle window first, then the timed run; each tegrastats ended by its PID), and
clean the cell's work directory. Back on the host: parse the logs into latency percentiles, FPS,
power and energy per frame, with the protocol (trtexec version and exact command lines) and the
board's identity.
"""
from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
import threading
import time
from pathlib import Path

import torch

from ..measure.backends.onnx_export import export_onnx
from ..measure.power.tegrastats import parse_log as parse_tegrastats, summarize
from ..records import FPS_DEFINITIONS, latency_fields, robust_fps
from ..stats import LatencyStats
from ..trtexec import (TrtexecSettings, build_command, parse_export_times, parse_log,
                       parse_version, time_command)
from ..trtexec.command import check_version, fp16_from_graph, shell_join
from .board import parse_probe, probe_script
from .transport import RemoteCommandFailed

BUILD_TIMEOUT_S = 3600


class TrtexecExecutor:
    """Runs trtexec cells through one transport (one board, or this machine)."""

    def __init__(self, transport):
        self.transport = transport
        self.spec = transport.spec
        self._board = None
        self.cancelled = threading.Event()
        self._work: str | None = None      # the cell's work directory while a cell runs

    def cancel(self) -> None:
        """Stop this board's cell now (SIGTERM / Ctrl-C of the run): end the running trtexec
        and tegrastats on the board (the process group of the cell's shell, whose PID the
        script wrote) and remove the cell's work directory, so that a ``--resume`` never puts
        a second benchmark beside a leftover one."""
        self.cancelled.set()
        work = self._work
        if work is None:
            return
        w = shlex.quote(work)
        script = (f"P=$(cat {w}/.pid 2>/dev/null) && {{ kill -TERM -- -$P 2>/dev/null || "
                  f"{{ pkill -TERM -P $P; kill -TERM $P; }}; }} 2>/dev/null; "
                  + ("true" if self.spec.keep else f"rm -rf {w}"))
        try:
            self.transport.run(script, timeout=20, check=False)
        except Exception:  # noqa: BLE001 - a board already gone has nothing left to stop
            pass

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise RemoteCommandFailed(f"{self.transport.label}: the run was stopped")

    @property
    def board(self) -> dict:
        if self._board is None:
            done = self.transport.run(probe_script(self.spec), timeout=60, check=False)
            self._board = parse_probe(done.stdout)
            self._board["label"] = self.transport.label
        return self._board

    def settings(self, suite, cell) -> TrtexecSettings:
        t = suite.timing
        paper = t.protocol == "paper"
        return TrtexecSettings(
            precision=cell.precision, warmup_ms=max(200, int(t.warmup_s * 1000)),
            iterations=t.iterations if paper else t.min_iterations,
            duration_s=0 if paper else t.max_time_s, include_transfer=t.include_transfer,
            **dict(cell.backend_options))

    def run_cell(self, cell, suite, model: torch.nn.Module) -> dict:
        board = self.board
        if not board.get("trtexec"):
            raise RemoteCommandFailed(
                f"no trtexec on {self.transport.label} (looked on PATH and in "
                f"/usr/src/tensorrt/bin; set remote.trtexec to its path)")
        version = check_version(parse_version(board.get("tensorrt_version") or ""))
        settings = self.settings(suite, cell)
        graph_fp16 = cell.precision == "fp16" and fp16_from_graph(version)
        onnx = _export(model, cell, graph_fp16)
        work = f"{self.spec.workdir}/{_slug(cell.id)}-{int(time.time() * 1000)}"
        self._work = work
        try:
            self._check_cancelled()
            engine, build = self._engine(onnx, work, version, settings, board["trtexec"])
            self._check_cancelled()
            timed = self._time(engine, work, version, settings, board, suite)
        finally:
            self._work = None
            shutil.rmtree(onnx.path.parent, ignore_errors=True)     # the host's copy
            if not self.spec.keep:
                self.transport.run(f"rm -rf {shlex.quote(work)}", timeout=60, check=False)
        return _record(cell, suite, board, version, settings, onnx, build, timed)

    def _engine(self, onnx: "_Onnx", work: str, version, settings, trtexec: str):
        flags = shell_join(build_command("trtexec", version, "m.onnx", "m.engine", settings))
        key = hashlib.sha256(onnx.sha256.encode() + ".".join(map(str, version)).encode()
                             + flags.encode()).hexdigest()[:20]
        cache = f"{self.spec.workdir}/engines"
        engine = f"{cache}/{key}.engine"
        self.transport.run(f"mkdir -p {shlex.quote(work)} {shlex.quote(cache)}", timeout=60)
        remote_onnx = f"{work}/model.onnx"
        tmp = f"{engine}.part-{int(time.time() * 1000)}"
        cmd = build_command(trtexec, version, remote_onnx, tmp, settings)
        hit = self.transport.run(f"test -s {shlex.quote(engine)}", timeout=60, check=False)
        if hit.returncode == 0:       # the command that built it, with the same flags
            return engine, {"engine_cached": True, "engine_build_s": None, "engine_key": key,
                            "build_command": shell_join(cmd)}
        self.transport.put(onnx.path, remote_onnx)
        start = time.perf_counter()
        done = self.transport.run(f"echo $$ > {shlex.quote(work)}/.pid; "
                                  f"{shell_join(cmd)} > {shlex.quote(work)}/build.log 2>&1; "
                                  f"rc=$?; tail -n 5 {shlex.quote(work)}/build.log; exit $rc",
                                  timeout=BUILD_TIMEOUT_S, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RemoteCommandFailed(f"trtexec could not build the engine on "
                                      f"{self.transport.label}: {_trtexec_error(done.stdout)}")
        self.transport.run(f"mv {shlex.quote(tmp)} {shlex.quote(engine)}", timeout=60)
        return engine, {"engine_cached": False, "engine_build_s": round(seconds, 2),
                        "engine_key": key, "build_command": shell_join(cmd)}

    def _time(self, engine: str, work: str, version, settings, board: dict, suite) -> dict:
        times = f"{work}/times.json"
        cmd = time_command(board["trtexec"], version, engine, times, settings)
        teg = board.get("tegrastats") if suite.power.sampler in ("auto", "tegrastats") else None
        interval = suite.power.interval_ms
        idle_s = suite.power.idle_s
        w = shlex.quote(work)
        script = [f"cd {w}", "echo $$ > .pid"]      # for cancel(): this shell's PID
        if teg:
            q = shlex.quote(teg)
            script += [f"{q} --interval {interval} > idle.log 2>&1 & P=$!",
                       f"sleep {idle_s}", "kill $P; wait $P 2>/dev/null",
                       f"{q} --interval {interval} > busy.log 2>&1 & P=$!"]
        script += [f"{shell_join(cmd)} > trtexec.log 2>&1; RC=$?"]
        if teg:
            script += ["kill $P; wait $P 2>/dev/null"]
        script += ["for f in trtexec.log times.json idle.log busy.log; do echo \"@@$f\"; "
                   "cat \"$f\" 2>/dev/null; done", "exit $RC"]
        limit = settings.warmup_ms / 1000 + settings.duration_s + idle_s + 600
        start = time.perf_counter()
        done = self.transport.run("\n".join(script), timeout=limit, check=False)
        files = _sections(done.stdout)
        if done.returncode != 0:
            raise RemoteCommandFailed(f"trtexec failed on {self.transport.label}: "
                                      f"{_trtexec_error(files.get('trtexec.log', ''))}")
        return {"files": files, "command": shell_join(cmd), "wall_s": time.perf_counter() - start,
                "tegrastats": teg, "interval_ms": interval}


class _Onnx:
    def __init__(self, path: Path, sha256: str, info: dict):
        self.path, self.sha256, self.info = path, sha256, info


def _export(model, cell, graph_fp16: bool) -> _Onnx:
    dtype = torch.float16 if graph_fp16 else torch.float32
    example = torch.randn(cell.batch, 3, cell.height, cell.width,
                          generator=torch.Generator().manual_seed(0))
    graph = export_onnx(model.eval().to(dtype=dtype), example.to(dtype), "torchscript", 17)
    path = Path(tempfile.mkdtemp(prefix="bench-onnx-")) / "model.onnx"
    path.write_bytes(graph.data)
    info = dict(graph.info(), onnx_dtype="fp16" if graph_fp16 else "fp32")
    return _Onnx(path, hashlib.sha256(graph.data).hexdigest(), info)


def _sections(text: str) -> dict:
    out, current = {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("@@") and line.strip()[2:] in ("trtexec.log", "times.json",
                                                          "idle.log", "busy.log"):
            current = line.strip()[2:]
            out[current] = ""
        elif current is not None:
            out[current] += line
    return out


def _trtexec_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "[E]" in ln or "Error" in ln or "Unknown option" in ln]
    return (errors[0] if errors else (lines[-1] if lines else "no output"))[:300]


def _slug(cell_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in cell_id)[:80]


def _record(cell, suite, board, version, settings, onnx, build, timed) -> dict:
    files = timed["files"]
    summary = parse_log(files.get("trtexec.log", ""))
    export = parse_export_times(files.get("times.json", "")) if files.get("times.json") else None
    samples = (export or {}).get("samples_ms", {}).get("latency") or []
    out = {"device_name": board.get("model") or summary.get("device") or board["label"],
           "board": board, "board_label": board["label"],
           "trtexec": {k: v for k, v in summary.items() if k not in ("command",)},
           "backend_info": {"trtexec_version": ".".join(map(str, version)), **onnx.info, **build,
                            "settings": settings.as_dict()}}
    if samples:
        out.update(latency_fields(LatencyStats.from_samples(samples)),
                   latency_samples_ms=[round(s, 5) for s in samples[: suite.timing.keep_samples]],
                   iterations=len(samples))
    else:
        out.update(latency_ms_mean=summary.get("latency_ms_mean"),
                   latency_ms_p50=summary.get("latency_ms_median"),
                   latency_ms_p99=summary.get("latency_ms_p99"), latency_samples_ms=[])
    qps = summary.get("throughput_qps")
    median = out.get("latency_ms_p50")
    out["fps"] = qps * cell.batch if qps else robust_fps(median, cell.batch)
    if out["fps"] is None:
        raise RemoteCommandFailed(f"trtexec printed no throughput or latency "
                                  f"({'; '.join(summary['problems']) or 'empty log'})")
    for part in ("gpu_compute", "h2d", "d2h", "enqueue"):
        if f"{part}_ms_median" in summary:
            out[f"trtexec_{part}_ms_median"] = summary[f"{part}_ms_median"]
    out["protocol"] = {
        "name": "trtexec", "sync": "trtexec (CUDA events around each inference)",
        "fps_definition": FPS_DEFINITIONS["trtexec"] if qps else FPS_DEFINITIONS["robust"],
        "trtexec_version": ".".join(map(str, version)), "command": timed["command"],
        "build_command": build.get("build_command"), "warmup_ms": settings.warmup_ms,
        "iterations_min": settings.iterations, "duration_s": settings.duration_s,
        "iterations": out.get("iterations"), "include_transfer": settings.include_transfer,
        "cuda_graphs": settings.use_cuda_graph, "spin_wait": settings.use_spin_wait,
        "stop_reason": "trtexec: at least iterations_min and duration_s",
        "latency_source": "--exportTimes latencyMs" if samples else "console summary"}
    out.update(_power(files, timed, out["fps"]))
    return out


def _power(files: dict, timed: dict, fps: float) -> dict:
    if not timed["tegrastats"]:
        return {"power_sampler": "none", "power_unavailable": "no tegrastats on the board "
                "(or power.sampler is not auto/tegrastats)", "power_w_mean": None,
                "idle_power_w": None, "energy_mj_per_frame": None, "fps_per_watt": None}
    interval = timed["interval_ms"]
    busy = summarize(parse_tegrastats(files.get("busy.log", "")).samples, interval)
    idle = summarize(parse_tegrastats(files.get("idle.log", "")).samples, interval)
    power = busy["mean_power_mw"] / 1000 if busy["mean_power_mw"] is not None else None
    idle_w = idle["mean_power_mw"] / 1000 if idle["mean_power_mw"] is not None else None
    out = {"power_sampler": "tegrastats (on the board, beside trtexec)",
           "power_sampler_rate_hz": 1000.0 / interval, "power_method": "trace_mean",
           "power_samples": busy["power_samples"], "idle_power_w": idle_w,
           "module_power_rule": busy.get("module_power_rule"), "power_w_mean": power}
    if power is None:
        return {**out, "power_unavailable": "tegrastats printed no module power rail",
                "energy_mj_per_frame": None, "fps_per_watt": None}
    out.update(energy_mj_per_frame=power / fps * 1000, fps_per_watt=fps / power,
               power_w_above_idle=power - idle_w if idle_w is not None else None,
               energy_mj_per_frame_above_idle=(power - idle_w) / fps * 1000
               if idle_w is not None else None)
    return out
