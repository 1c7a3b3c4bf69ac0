"""Timing engine invariants on the CPU (never speeds), and the CUDA paths when a GPU exists."""
import pytest
import torch
from torch import nn

from benchbench.measure.backends import create_backend
from benchbench.measure.engine import TimingConfig, measure
from conftest import requires_cuda


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x)


def prepared(backend_name="eager", device="cpu", precision="fp32", include_transfer=False):
    model = Counting()
    backend = create_backend(backend_name)
    backend.prepare(model, torch.randn(1, 3, 32, 64), torch.device(device), precision,
                    include_transfer)
    return backend, model


def test_paper_protocol_runs_exactly_warmup_plus_n():
    backend, model = prepared()
    r = measure(backend, torch.device("cpu"), TimingConfig(protocol="paper", warmup=5,
                                                            iterations=40))
    assert model.calls == 45
    assert r.iterations == 40 and r.stats is None
    assert r.fps == pytest.approx(40 / r.elapsed_s)
    assert r.latency_ms_mean == pytest.approx(r.elapsed_s / 40 * 1000)


def test_robust_protocol_statistics_and_stop_rule():
    backend, model = prepared()
    cfg = TimingConfig(protocol="robust", warmup=2, min_iterations=30, max_time_s=0.5,
                       target_ci_rel=1e-9)   # unreachable target: must stop on the budget
    r = measure(backend, torch.device("cpu"), cfg)
    assert r.stop_reason == "time_budget"
    assert r.iterations >= 30 and len(r.samples_ms) == min(r.iterations, cfg.keep_samples)
    s = r.stats
    assert 0 < s.min_ms <= s.p50_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    # FPS at the median latency (records.FPS_DEFINITIONS), not the mean's
    assert r.fps == pytest.approx(1000 / s.p50_ms, rel=1e-6)
    assert r.metrics(batch=4)["fps"] == pytest.approx(4000 / s.p50_ms, rel=1e-6)


class Sleeping(nn.Module):
    """A forward of at least 10 ms, whatever the machine."""

    def forward(self, x):
        import time
        time.sleep(0.01)
        return x


def test_robust_keeps_to_its_time_budget():
    """After the first min_iterations the next chunk is sized to what the budget has left, not
    to a fixed quarter second (which took 2 + 25 forwards of 10 ms for a 0.1 s budget)."""
    backend = create_backend("eager")
    backend.prepare(Sleeping(), torch.randn(1, 3, 8, 8), torch.device("cpu"), "fp32", False)
    r = measure(backend, torch.device("cpu"), TimingConfig(
        warmup=0, min_iterations=2, max_time_s=0.1, target_ci_rel=1e-9))
    assert r.stop_reason == "time_budget"
    assert 2 <= r.iterations <= 11, r.iterations        # 0.1 s of 10 ms forwards, one over at most


def test_robust_stops_at_max_iterations_and_ci_target():
    backend, _ = prepared()
    r = measure(backend, torch.device("cpu"), TimingConfig(min_iterations=5, max_iterations=12,
                                                           target_ci_rel=1e-12))
    assert r.iterations == 12 and r.stop_reason == "max_iterations"
    r = measure(backend, torch.device("cpu"), TimingConfig(min_iterations=20, target_ci_rel=10.0))
    assert r.stop_reason == "ci_target" and r.iterations >= 20


def test_autograd_option_mirrors_official_eval_fps():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(torch.is_grad_enabled())
            return x * 2

    for autograd in (True, False):
        seen.clear()
        backend = create_backend("eager")
        backend.prepare(Probe(), torch.randn(1, 3, 8, 8), torch.device("cpu"), "fp32", False)
        measure(backend, torch.device("cpu"), TimingConfig(protocol="paper", warmup=1,
                                                            iterations=2, autograd=autograd))
        assert set(seen) == {autograd}


def test_warmup_by_time():
    backend, model = prepared()
    r = measure(backend, torch.device("cpu"), TimingConfig(protocol="paper", warmup=0,
                                                            warmup_s=0.2, iterations=1))
    assert r.warmup_s >= 0.2 and r.warmup_iterations >= 1


def test_threads_are_set_and_channels_last_is_applied():
    before = torch.get_num_threads()
    try:
        backend, _ = prepared("channels_last")
        assert backend.frame.is_contiguous(memory_format=torch.channels_last)
        measure(backend, torch.device("cpu"), TimingConfig(protocol="paper", warmup=0,
                                                            iterations=1, threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_unavailable_reasons_on_this_machine():
    eager = create_backend("eager")
    assert "fp16" in eager.unavailable_reason("cpu", "fp16")
    if not torch.cuda.is_available():
        assert "CUDA is not available" in eager.unavailable_reason("cuda", "fp32")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert "TensorRT is not installed" in create_backend("tensorrt").unavailable_reason(
            "cuda", "fp16")


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("backend_name,precision", [("eager", "fp32"), ("channels_last", "fp32"),
                                                    ("eager", "fp16")])
@pytest.mark.parametrize("protocol", ["paper", "robust"])
def test_cuda_protocols(backend_name, precision, protocol):
    backend, model = prepared(backend_name, "cuda", precision)
    r = measure(backend, torch.device("cuda"), TimingConfig(protocol=protocol, warmup=5,
                                                             iterations=50, max_time_s=1.0))
    assert r.fps > 0
    assert r.sync == ("cuda_events" if protocol == "robust" else "cuda_synchronize")


@requires_cuda
@pytest.mark.cuda
def test_cuda_include_transfer():
    backend, _ = prepared("eager", "cuda", "fp32", include_transfer=True)
    assert backend.host_frame.is_pinned()
    r = measure(backend, torch.device("cuda"), TimingConfig(protocol="paper", iterations=20,
                                                             include_transfer=True))
    assert r.fps > 0
