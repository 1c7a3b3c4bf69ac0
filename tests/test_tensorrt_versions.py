"""The TensorRT backend driven through fake ``tensorrt`` modules with the API shapes of 8.2
(JetPack 4.6), 10.x and 11.x: a renamed or removed attribute breaks a test here."""
import sys

import pytest
import torch

from benchbench.measure.backends import create_backend
from benchbench.measure.equivalence import compare_to_reference, reference_logits

from fake_tensorrt import make_fake_tensorrt

pytest.importorskip("onnxruntime")


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 5, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.interpolate(self.conv(x).relu(), scale_factor=2.0,
                                               mode="bilinear", align_corners=False)


@pytest.fixture
def fake_trt(monkeypatch, request):
    module = make_fake_tensorrt(request.param)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return module


def _prepare(precision="fp32", **options):
    backend = create_backend("tensorrt", options)
    example = torch.randn(1, 3, 8, 12, generator=torch.Generator().manual_seed(1))
    model = TinyNet()
    ref = reference_logits(TinyNet(), example, torch.device("cpu"), is_reference=False)
    backend.prepare(model, example, torch.device("cpu"), precision, include_transfer=False)
    return backend, example, ref


def _names(calls):
    return [c[0] for c in calls]


@pytest.mark.parametrize("fake_trt", ["8.2.1.8"], indirect=True)
def test_tensorrt_8_2_uses_binding_indices_and_max_workspace_size(fake_trt):
    backend, example, ref = _prepare(workspace_mib=256)
    backend.run()
    calls = fake_trt.calls
    assert ("create_network", 1 << 0) in calls                  # EXPLICIT_BATCH before 10.0
    assert ("max_workspace_size", 256 << 20) in calls
    assert "set_memory_pool_limit" not in _names(calls)
    assert ("execute_async_v2", 2, 0) in calls
    assert "execute_async_v3" not in _names(calls)
    info = backend.info()
    assert info["io_api"] == "binding_indices/execute_async_v2"
    assert info["tensorrt_version"] == "8.2.1.8" and info["workspace_mib"] == 256
    assert info["builder_flags"] == {"FP16": False, "TF32": True, "INT8": False,
                                     "STRICT_TYPES": False}
    assert info["tf32_allowed"] is True
    out = compare_to_reference(ref, backend.infer, example, 0.995)
    assert out["equivalence"] == "match" and out["argmax_agreement"] == 1.0
    assert out["logits_max_abs_diff"] < 1e-5


@pytest.mark.parametrize("fake_trt", ["8.2.1.8", "10.3.0.26"], indirect=True)
def test_fp16_is_the_builder_flag_up_to_10(fake_trt):
    backend, *_ = _prepare("fp16")
    assert ("set_flag", "FP16") in fake_trt.calls
    build = next(c for c in fake_trt.calls if c[0] == "build_serialized_network")
    assert build[1]["fp16_flag"] is True
    assert backend.info()["fp16_route"] == "builder_flag"


@pytest.mark.parametrize("fake_trt", ["10.3.0.26"], indirect=True)
def test_tensorrt_10_uses_named_tensors_memory_pool_and_no_explicit_batch(fake_trt):
    backend, example, ref = _prepare(tf32=False, builder_optimization_level=5)
    backend.run()
    calls = fake_trt.calls
    assert ("create_network", 0) in calls                       # explicit batch is implied
    assert ("set_memory_pool_limit", "WORKSPACE", 1 << 30) in calls   # the 1 GiB default
    assert ("clear_flag", "TF32") in calls
    assert ("execute_async_v3", 0) in calls
    assert {c[1] for c in calls if c[0] == "set_tensor_address"} == {"input", "logits"}
    info = backend.info()
    assert info["io_api"] == "named_tensors/execute_async_v3"
    assert info["tf32_allowed"] is False and info["builder_optimization_level"] == 5
    assert "STRICT_TYPES" not in info["builder_flags"]
    assert compare_to_reference(ref, backend.infer, example, 0.995)["equivalence"] == "match"


@pytest.mark.parametrize("fake_trt", ["11.0.0.9"], indirect=True)
def test_tensorrt_11_fp16_comes_from_an_fp16_graph_in_a_strongly_typed_network(fake_trt):
    assert not hasattr(fake_trt.BuilderFlag, "FP16")            # what broke fp16 cells before
    backend, example, ref = _prepare("fp16")
    calls = fake_trt.calls
    # no flag: on 11.x bit 1 is PREFER_JIT_PYTHON_PLUGINS, and strong typing is implicit
    assert ("create_network", 0) in calls and ("create_network", 1 << 1) not in calls
    assert "set_flag" not in _names(calls)
    info = backend.info()
    assert info["fp16_route"] == "fp16_onnx_strongly_typed"
    assert info["network_flags"] == ["STRONGLY_TYPED (implicit: every TensorRT 11 network)"]
    assert "FP16" not in info["builder_flags"]
    assert backend.io.input.dtype == torch.float16              # the graph's own types
    out = compare_to_reference(ref, backend.infer, example, 0.995)
    assert out["equivalence"] == "match", out
    assert 0 < out["logits_max_abs_diff"] < 1e-2                # fp16, but the same classes


@pytest.mark.parametrize("fake_trt", ["11.0.0.9"], indirect=True)
def test_builder_optimization_level_is_passed_where_it_exists(fake_trt):
    backend, *_ = _prepare(builder_optimization_level=1)
    assert backend.info()["builder_optimization_level"] == 1


@pytest.mark.parametrize("version,supported", [("7.1.3", False), ("8.0.1", False),
                                               ("8.2.1.8", True), ("8.6.1", True),
                                               ("10.13.0", True), ("11.4.1", True),
                                               ("12.0.0", False)])
def test_unavailable_reason_names_the_supported_versions(monkeypatch, version, supported):
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(version)
                        if version.split(".")[0] in ("8", "10", "11") else _bare(version))
    reason = create_backend("tensorrt").unavailable_reason("cuda", "fp16")
    if supported:
        assert reason is None or "CUDA" in reason               # no CUDA on this machine
    else:
        assert f"TensorRT {version} is not supported" in reason and "8.2 to 11.x" in reason


def _bare(version):
    import types
    mod = types.ModuleType("tensorrt")
    mod.__version__ = version
    return mod


def test_without_tensorrt_the_reason_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)      # import tensorrt -> ImportError
    reason = create_backend("tensorrt").unavailable_reason("cuda", "fp16")
    assert "TensorRT is not installed" in reason and "pip install tensorrt" in reason


def test_workspace_option_is_checked():
    with pytest.raises(ValueError, match="workspace_mib"):
        create_backend("tensorrt", {"workspace_mib": -1})
    with pytest.raises(ValueError, match="has no option 'workspace'"):
        create_backend("tensorrt", {"workspace": 10})


class TwoHeads(TinyNet):
    """A segmentation net with an auxiliary head (a second graph output, another shape)."""

    def forward(self, x):
        main = super().forward(x)
        return main, main.mean(dim=1, keepdim=True)[..., ::2, ::2]


@pytest.mark.parametrize("fake_trt", ["8.2.1.8", "10.3.0", "11.0.0.9"], indirect=True)
def test_a_multi_output_graph_times_and_scores_its_first_output_as_onnx_runtime_does(fake_trt):
    backend = create_backend("tensorrt", {})
    example = torch.randn(1, 3, 8, 12, generator=torch.Generator().manual_seed(1))
    backend.prepare(TwoHeads(), example, torch.device("cpu"), "fp32", include_transfer=False)
    with torch.no_grad():
        main, aux = TwoHeads()(example)
    out = backend.infer(example)
    assert out.shape == main.shape != aux.shape
    assert torch.allclose(out, main, atol=1e-4)


@pytest.mark.parametrize("fake_trt", ["10.3.0", "11.0.0.9"], indirect=True)
def test_engine_build_time_is_the_build_alone_and_the_flags_follow_the_headers(fake_trt):
    creation = fake_trt.NetworkDefinitionCreationFlag
    major = int(fake_trt.__version__.split(".")[0])
    assert int(creation.STRONGLY_TYPED) == (1 if major == 10 else 0)
    assert int(creation.PREFER_JIT_PYTHON_PLUGINS) == (2 if major == 10 else 1)
    backend, _, _ = _prepare("fp16")
    info = backend.info()
    assert info["onnx_export_s"] > 0 and info["engine_build_s"] >= 0
    assert info["engine_build_s"] < info["onnx_export_s"]      # the fake builds in no time
    made = [c[1] for c in fake_trt.calls if c[0] == "create_network"]
    # 10.x: STRONGLY_TYPED is bit 1 (the fp16 build without a BuilderFlag.FP16 is not used
    # there); 11.x: no bit at all -- bit 1 would be PREFER_JIT_PYTHON_PLUGINS
    assert made == [0]
