"""Issue 21: every backend measures what its label says. What can be shown on this CPU runs
here; the CUDA paths are marked and run where a GPU is at hand."""
import pytest
import torch

import _fixtures  # noqa: F401 - registers tiny_seg
from benchbench.errors import SuiteError
from benchbench.measure.backends.base import (Capabilities, apply_tf32, apply_tf32_state,
                                              tf32_state)
from benchbench.suite import suite_from_dict
from conftest import alone, requires_cuda


@pytest.fixture
def restored_tf32():
    saved = tf32_state()
    yield
    apply_tf32_state(saved)


@pytest.mark.parametrize("allow", [True, False])
def test_tf32_is_set_through_one_api_that_every_reader_agrees_with(allow, restored_tf32):
    """PyTorch >= 2.9 has two TF32 APIs; writing only ``fp32_precision`` leaves the legacy
    flags behind and their getters -- which inductor reads -- raise. Both must agree."""
    apply_tf32(allow)
    assert torch.backends.cuda.matmul.allow_tf32 is allow            # legacy getters: no raise
    assert torch.backends.cudnn.allow_tf32 is allow
    assert torch.get_float32_matmul_precision() == ("high" if allow else "highest")
    assert tf32_state() == {"cudnn_conv_tf32": allow, "cuda_matmul_tf32": allow}
    if hasattr(torch.backends.cudnn, "conv"):                         # the new API agrees
        assert torch.backends.cuda.matmul.fp32_precision == ("tf32" if allow else "ieee")
        assert (torch.backends.cudnn.conv.fp32_precision == "tf32") is allow
        assert (torch.backends.cudnn.rnn.fp32_precision == "tf32") is allow


def test_compile_builds_after_tf32_was_set_either_way(restored_tf32):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 2)).eval()
    x = torch.randn(1, 3, 8, 8)
    for allow in (True, False):
        apply_tf32(allow)
        torch._dynamo.reset()
        with torch.inference_mode():
            assert torch.allclose(torch.compile(model)(x), model(x), atol=1e-5)


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_autograd_with_a_cudagraph_compile_mode_is_refused(mode):
    with pytest.raises(SuiteError, match=rf"timing.autograd: true with backends\[0\] compile "
                                         rf"mode {mode}: that mode captures CUDA graphs"):
        suite_from_dict({"name": "s", "device": "cpu", "models": ["tiny_seg"],
                         "resolutions": [[32, 64]],
                         "backends": [{"name": "compile", "options": {"mode": mode}}],
                         "timing": {"autograd": True}}, "s.yaml")
    suite_from_dict({"name": "s", "device": "cpu", "models": ["tiny_seg"],
                     "resolutions": [[32, 64]],
                     "backends": [{"name": "compile",
                                   "options": {"mode": "max-autotune-no-cudagraphs"}}],
                     "timing": {"autograd": True}}, "s.yaml")


def test_a_cpu_compile_cell_says_it_used_no_cuda_graphs(tmp_path):
    from test_backends import _run

    _, records = _run(tmp_path, ["tiny_seg"], ["compile"])
    [r] = records.values()
    assert r["status"] == "ok" and r["protocol"]["cuda_graphs"] is False
    assert r["backend_info"]["cuda_graphs"] is False and r["backend_info"]["cudagraph_skips"] == 0


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("mode, graphs", [("default", False), ("reduce-overhead", True)])
def test_compile_records_whether_inductor_used_cuda_graphs(tmp_path, mode, graphs):
    import benchbench
    import json

    suite = suite_from_dict({"name": "cg", "device": "cuda", "models": ["tiny_seg"],
                             "resolutions": [[64, 128]],
                             "backends": [{"name": "compile", "options": {"mode": mode}}],
                             "timing": {"warmup": 5, "min_iterations": 20, "max_time_s": 1}},
                            str(tmp_path / "s.yaml"))
    summary = benchbench.run_suite(suite, out_dir=tmp_path, progress=False)
    [r] = [json.loads(line) for line in (summary.run_dir / "records.jsonl").open()]
    assert r["status"] == "ok" and r["protocol"]["cuda_graphs"] is graphs


# --- ONNX Runtime: the provider is checked, not trusted ------------------------------------------

class FakeSilentCpuSession:
    """What onnxruntime-gpu does when libcudnn does not load: its C++ logger writes the error
    to file descriptor 2 and the session runs on the CPU provider (get_providers says so)."""

    def __init__(self, graph, sess_options=None, providers=()):
        import os
        os.write(2, b"2026-12-03 10:00:00.0 [E:onnxruntime:Default, provider_bridge_ort.cc:2036 "
                    b"TryGetProviderInfo_CUDA] Failed to load library libonnxruntime_providers"
                    b"_cuda.so with error: libcudnn.so.9: cannot open shared object file\n")
        self.requested = providers

    def get_providers(self):
        return ["CPUExecutionProvider"]


def test_a_session_that_fell_back_to_cpu_fails_the_cell_with_orts_message(capfd):
    from benchbench.measure.backends.onnxruntime import captured_stderr, check_providers

    requested = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    with captured_stderr() as log:
        session = FakeSilentCpuSession(b"graph", providers=requested)
    with pytest.raises(RuntimeError) as err:
        check_providers(session.get_providers(), requested, log.text())
    assert str(err.value).startswith("ONNX Runtime built a session on CPUExecutionProvider, not "
                                     "the requested CUDAExecutionProvider")
    assert "libcudnn.so.9: cannot open shared object file" in str(err.value)
    assert "Failed to load library" in capfd.readouterr().err    # and the user still sees it
    check_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], requested)   # no raise


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_the_tensorrt_ep_is_registered_with_cuda_as_its_fallback(precision, tmp_path):
    from benchbench.measure.backends import create_backend

    backend = create_backend("onnxruntime", {"provider": "tensorrt",
                                             "trt_engine_cache": str(tmp_path)})
    backend.precision, backend.tf32_in_force = precision, None
    (trt, trt_opts), (cuda, cuda_opts), cpu = backend._providers(torch.device("cuda", 1))
    assert (trt, cuda, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                                "CPUExecutionProvider")
    assert trt_opts["trt_fp16_enable"] is (precision == "fp16")
    assert trt_opts["device_id"] == cuda_opts["device_id"] == 1
    assert trt_opts["trt_engine_cache_enable"] is True
    assert trt_opts["trt_engine_cache_path"] == str(tmp_path)


def test_a_cpu_session_is_checked_and_says_what_was_asked(tmp_path):
    pytest.importorskip("onnxruntime")
    from test_backends import _run

    _, records = _run(tmp_path, ["tiny_seg"], ["onnxruntime"])
    [r] = records.values()
    assert r["status"] == "ok"
    assert r["backend_info"]["providers_requested"] == ["CPUExecutionProvider"]
    assert r["backend_info"]["providers_used"][0] == "CPUExecutionProvider"


# --- cuda:N is the current device for the cell's whole life --------------------------------------

def test_the_cells_cuda_device_is_current_for_its_whole_life(monkeypatch):
    """A fake second GPU: the process's current device is 0, the cell's is cuda:1. Every stage
    (CUDA events, graph capture, synchronize()) must run with cuda:1 current, and 0 after."""
    from benchbench.cells import Cell
    from benchbench.executors import stages
    from benchbench.suite import ModelSpec

    state = {"current": 0, "calls": []}

    def set_device(index):
        state["calls"].append(index)
        state["current"] = index

    monkeypatch.setattr(torch.cuda, "current_device", lambda: state["current"])
    monkeypatch.setattr(torch.cuda, "set_device", set_device)

    class TwoGpuBackend:
        def unavailable_reason(self, device, precision):
            return None

        def close(self):
            state["closed_on"] = state["current"]

    seen = []

    def stage(name):
        return lambda ctx: seen.append((name, state["current"], str(ctx.device))) or {}

    monkeypatch.setattr(stages, "create_backend", lambda name, options: TwoGpuBackend())
    monkeypatch.setattr(stages, "STAGES", tuple((n, stage(n), True) for n in ("build", "time")))
    monkeypatch.setattr(stages, "device_state", lambda device: {})
    monkeypatch.setattr(stages, "throttle_summary", lambda *args: {})
    suite = suite_from_dict({"name": "two", "device": "cpu", "models": ["tiny_seg"],
                             "resolutions": [[32, 64]]}, "s.yaml")
    cell = Cell(ModelSpec("tiny_seg"), 32, 64, 1, "eager", "fp32", "cuda:1", 19)
    record = stages.run_cell(cell, suite, "run-1")
    assert record["status"] == "ok", record.get("error")
    assert seen == [("build", 1, "cuda:1"), ("time", 1, "cuda:1")]
    assert state["closed_on"] == 1 and state["calls"] == [1, 0] and state["current"] == 0


# --- device memory as the driver sees it ---------------------------------------------------------

def test_process_gpu_memory_comes_from_nvml_for_this_process(monkeypatch):
    import os
    import sys
    import types

    from benchbench.executors.stages import MEMORY_SOURCES, process_gpu_memory_mib

    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetHandleByIndex = lambda i: ("h", i)
    entry = types.SimpleNamespace
    procs = {("h", 1): [entry(pid=os.getpid() + 1, usedGpuMemory=9 << 30),
                        entry(pid=os.getpid(), usedGpuMemory=1536 << 20)]}
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: procs.get(h, [])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    # TensorRT's engine and ORT's arena are in the process's 1536 MiB, not in torch's peak
    assert process_gpu_memory_mib(torch.device("cuda", 1)) == 1536.0
    assert process_gpu_memory_mib(torch.device("cuda", 0)) is None      # not on that GPU
    assert "TensorRT / ONNX Runtime allocations" in MEMORY_SOURCES["gpu_mem_process_mib"]
    assert "misses TensorRT's" in MEMORY_SOURCES["peak_mem_allocated_mib"]


@requires_cuda
@pytest.mark.cuda
def test_a_cuda_cell_records_driver_level_memory_beside_torchs(tmp_path):
    import json

    import benchbench

    suite = suite_from_dict({"name": "mem", "device": "cuda", "models": ["tiny_seg"],
                             "resolutions": [[64, 128]], "backends": ["eager"],
                             "timing": {"warmup": 5, "min_iterations": 20, "max_time_s": 1}},
                            str(tmp_path / "s.yaml"))
    summary = benchbench.run_suite(suite, out_dir=tmp_path, progress=False)
    [r] = [json.loads(line) for line in (summary.run_dir / "records.jsonl").open()]
    assert r["status"] == "ok"
    assert r["gpu_mem_process_mib"] is None or r["gpu_mem_process_mib"] >= \
        r["peak_mem_reserved_mib"]
    assert set(r["memory_sources"]) >= {"peak_mem_allocated_mib", "gpu_mem_used_delta_mib"}


# --- a paired reference beside a host-synchronous backend ----------------------------------------

class FakeGpu:
    """A GPU timeline: an asynchronous launch queues work and returns at once; a CUDA event
    records when the stream reaches it; synchronize() waits until the queue is empty."""

    def __init__(self):
        import time
        self.clock, self.sleep = time.perf_counter, time.sleep
        self.free_at = self.clock()

    def launch(self, seconds):
        self.free_at = max(self.clock(), self.free_at) + seconds

    def synchronize(self, device=None):
        self.sleep(max(0.0, self.free_at - self.clock()))

    def event_class(self):
        gpu = self

        class Event:
            def __init__(self, enable_timing=False):
                self.at = None

            def record(self, stream=None):
                self.at = max(gpu.clock(), gpu.free_at)

            def elapsed_time(self, end):
                return (end.at - self.at) * 1000.0
        return Event


@alone        # its fake GPU sleeps: on a loaded machine a sleep overshoots the bounds
def test_each_side_of_a_pair_is_timed_the_way_its_backend_needs(monkeypatch):
    """The builtin eager reference launches 20 ms of asynchronous work; the cell is ONNX
    Runtime, host-synchronous (8 ms on its own stream). Timed with perf_counter alone, the
    reference would measure its launch (~0 ms) and its work would overlap the cell's."""
    from benchbench.measure import engine

    gpu = FakeGpu()
    monkeypatch.setattr(torch.cuda, "Event", gpu.event_class())
    monkeypatch.setattr(torch.cuda, "synchronize", gpu.synchronize)

    class EagerOnGpu:
        def run(self):
            gpu.launch(0.020)

    class OrtLike:
        capabilities = Capabilities(host_synchronous=True)

        def run(self):
            gpu.sleep(0.008)

    device = torch.device("cuda", 0)
    assert engine.clock_for(EagerOnGpu(), device) == "events"
    assert engine.clock_for(OrtLike(), device) == "host"
    assert engine.clock_for(EagerOnGpu(), torch.device("cpu")) == "host"
    cell, ref = engine._time_chunk_paired(OrtLike(), EagerOnGpu(), 5, device)
    assert all(19.0 < r < 26.0 for r in ref), ref            # the reference's own work
    assert all(7.5 < c < 12.0 for c in cell), cell           # the cell's, after the queue drained


# --- one capabilities record per backend ---------------------------------------------------------

def test_every_backend_declares_what_it_is_and_the_readers_use_that():
    from benchbench.measure.backends import BACKENDS, create_backend
    from benchbench.report.tables import _runs_tensorrt

    caps = {name: create_backend(name).capabilities for name in BACKENDS}
    assert {n for n, c in caps.items() if c.host_synchronous} == {"onnxruntime"}
    assert {n for n, c in caps.items() if not c.in_process} == {"trtexec"}
    assert {n for n, c in caps.items() if c.own_stream} == {"tensorrt"}
    assert {n for n, c in caps.items() if c.cuda_graphs} == {"cuda_graphs"}   # compile: once built
    assert {n for n, c in caps.items() if c.dynamic_shapes} == {"eager", "channels_last", "compile"}
    assert {n for n, c in caps.items() if c.tensorrt_engine} == {"tensorrt", "trtexec"}
    assert {n for n in BACKENDS if _runs_tensorrt(n)} == {"tensorrt", "trtexec"}   # the 1.65 factor
    assert not _runs_tensorrt("onnxruntime") and not _runs_tensorrt(None)
    compiled = create_backend("compile")
    compiled.used_cuda_graphs = True                  # what prepare finds out on a CUDA device
    assert compiled.capabilities.cuda_graphs and compiled.capabilities.timing_hooks


def test_the_gpu_acceptance_script_skips_cleanly_without_cuda(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run benchmarks/gpu_acceptance.py itself (minutes)")
    out = tmp_path / "acceptance.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_acceptance.py"
    proc = subprocess.run([sys.executable, str(script), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["skipped"].startswith("no CUDA device")
