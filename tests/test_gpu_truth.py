"""Issue 21: every backend measures what its label says. What can be shown on this CPU runs
here; the CUDA paths are marked and run where a GPU is at hand."""
import pytest
import torch

import _fixtures  # noqa: F401 - registers tiny_seg
from benchbench.errors import SuiteError
from benchbench.measure.backends.base import apply_tf32, apply_tf32_state, tf32_state
from benchbench.suite import suite_from_dict
from conftest import requires_cuda


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
