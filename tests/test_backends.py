"""ONNX Runtime, torch.compile and the equivalence check, run for real on the CPU; CUDA-only
backends skip here with their reason."""
import importlib.util
import json
import sys

import pytest
import torch

import _fixtures  # noqa: F401 - registers tiny_seg, data_dependent_seg, restless_seg
import benchbench
from benchbench.errors import SuiteError
from benchbench.measure.backends import create_backend
from benchbench.measure.equivalence import Reference, compare_to_reference
from benchbench.report.html import render
from benchbench.suite import suite_from_dict

# found, not imported: onnxscript's import takes a second, and every pytest-xdist worker collects
# this module; the tests that export import it themselves
for _needed in ("onnxruntime", "onnxscript"):
    if importlib.util.find_spec(_needed) is None:
        pytest.skip(f"needs {_needed}", allow_module_level=True)

FAST = {"warmup": 2, "min_iterations": 5, "max_time_s": 0.3, "threads": 1}


def _run(tmp_path, models, backends, **extra):
    suite = suite_from_dict({"name": "backends", "device": "cpu", "models": models,
                             "resolutions": [[32, 64]], "backends": backends,
                             "timing": FAST, **extra}, str(tmp_path / "suite.yaml"))
    summary = benchbench.run_suite(suite, out_dir=tmp_path, progress=False)
    records = [json.loads(line) for line in (summary.run_dir / "records.jsonl").open()]
    return summary, {r["cell_id"]: r for r in records}


@pytest.fixture(scope="module")
def four_backends(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("four")
    return _run(tmp, ["tiny_seg", "color_oracle"],
                ["eager", "channels_last", "onnxruntime", "compile"])


# the tests that use `four_backends` go to one pytest-xdist worker, which makes it once
shares_four_backends = pytest.mark.xdist_group("test_backends.four_backends")


@shares_four_backends
def test_every_backend_runs_ok_and_agrees_with_eager_fp32(four_backends):
    summary, records = four_backends
    assert summary.ok == 8 and summary.failed == summary.skipped == 0
    for r in records.values():
        assert r["argmax_agreement"] == 1.0, r["cell_id"]
        assert r["equivalence"] == ("reference" if r["backend"] == "eager" else "match")
        assert r["logits_max_abs_diff"] < 1e-4
        assert r["equivalence_reference"] == "eager-fp32/cpu"


@shares_four_backends
def test_onnxruntime_records_how_it_ran(four_backends):
    _, records = four_backends
    info = records["tiny_seg@32x64/b1/onnxruntime-fp32/cpu"]["backend_info"]
    import onnxruntime
    assert info["onnxruntime_version"] == onnxruntime.__version__
    assert info["providers_used"] == ["CPUExecutionProvider"]
    assert info["onnx_exporter"] == "dynamo" and info["onnx_opset"] == 18
    assert info["graph_optimization_level"] == "ORT_ENABLE_ALL" and info["io_binding"] is True
    assert info["intra_op_threads"] == 1      # the suite's threads, not ORT's own (a core each)
    # the exported graph's nodes, for the work gate: TinySeg's two convolutions and its ReLU
    assert info["onnx_ops"]["Conv"] == 2 and info["onnx_ops"]["Relu"] == 1


@shares_four_backends
def test_compile_time_is_recorded_apart_from_timing(four_backends):
    _, records = four_backends
    r = records["tiny_seg@32x64/b1/compile-fp32/cpu"]
    info = r["backend_info"]
    assert info["compile_mode"] == "default" and info["compile_s"] > 0
    assert info["graphs_compiled"] >= 1 and info["recompiles_during_timing"] == 0
    # the compile took far longer than any timed forward: it is not in the samples
    assert max(r["latency_samples_ms"]) < info["compile_s"] * 1000
    assert r["protocol"]["cuda_graphs"] is False


@shares_four_backends
def test_report_puts_backends_side_by_side(four_backends, tmp_path):
    summary, _ = four_backends
    page = render([summary.run_dir], tmp_path / "r.html").read_text()
    assert "Backends side by side" in page and "speed-up vs eager fp32" in page
    assert "FPS vs input resolution per backend" in page
    assert page.count("match (argmax 100.00%)") >= 6


def test_dynamo_export_failure_falls_back_to_torchscript_and_says_why(tmp_path):
    summary, records = _run(tmp_path, ["data_dependent_seg"], ["eager", "onnxruntime"])
    r = records["data_dependent_seg@32x64/b1/onnxruntime-fp32/cpu"]
    assert r["status"] == "ok" and r["equivalence"] == "match"
    info = r["backend_info"]
    assert info["onnx_exporter"] == "torchscript" and info["onnx_opset"] == 17
    assert info["onnx_export_fallback_reason"].startswith("dynamo exporter failed:")
    assert "\n" not in info["onnx_export_fallback_reason"]
    # the static analysis could not run on meta tensors either: counted on real ones
    assert r["analysis_counted_on"].startswith("cpu (the forward reads tensor values")
    assert r["params"] == 3 * 8 * 9 + 8 + 2 * 8 + 8 * 19 + 19


def test_a_recompilation_inside_the_timed_loop_flags_the_cell(tmp_path):
    _, records = _run(tmp_path, ["restless_seg"], [{"name": "compile",
                                                    "options": {"warmup_calls": 1}}])
    r = records["restless_seg@32x64/b1/compile[warmup_calls=1]-fp32/cpu"]
    assert r["status"] == "ok" and r["backend_label"] == "compile[warmup_calls=1]"
    assert r["backend_info"]["recompiles_during_timing"] > 0
    assert "compiled inside the timed loop" in r["backend_info"]["warning"]


def test_a_tolerance_the_output_misses_marks_the_cell_mismatch(tmp_path):
    _, records = _run(tmp_path, ["tiny_seg"], [{"name": "eager", "precision": "bf16"}],
                      equivalence={"min_argmax_agreement": 1.0})
    r = records["tiny_seg@32x64/b1/eager-bf16/cpu"]
    assert r["status"] == "ok" and r["argmax_agreement"] < 1.0
    assert r["equivalence"] == "mismatch" and "below 100.00%" in r["equivalence_reason"]


def test_fp16_overflow_is_a_mismatch_with_the_reason_not_a_crash():
    logits = torch.zeros(1, 3, 4, 4)
    logits[0, 1] = 1e9                                       # random weights: JetSeg does this
    ref = Reference(logits, "cuda", max_abs_logit=1e9)
    overflowed = logits.half()                               # inf in fp16
    out = compare_to_reference(ref, lambda x: overflowed, torch.zeros(1), 0.995)
    assert out["equivalence"] == "mismatch"
    assert "not finite" in out["equivalence_reason"] and "fp16's range (65504)" in out[
        "equivalence_reason"]


def test_a_backend_whose_check_input_fails_is_unchecked_not_failed():
    ref = Reference(torch.zeros(1, 2, 2, 2), "cpu", 0.0)

    def broken(x):
        raise RuntimeError("engine takes (1, 3, 8, 8)\nmore")
    out = compare_to_reference(ref, broken, torch.zeros(1), 0.995)
    assert out["equivalence"] == "unchecked" and "engine takes (1, 3, 8, 8)" in out[
        "equivalence_reason"]


def test_cuda_only_backends_skip_on_cpu_with_their_reason():
    assert "need a CUDA device" in create_backend("cuda_graphs").unavailable_reason("cpu", "fp32")
    reason = create_backend("onnxruntime").unavailable_reason("cpu", "fp16")
    assert "use fp32 on CPU" in reason
    if not torch.cuda.is_available():
        assert "CUDA is not available" in create_backend("cuda_graphs").unavailable_reason(
            "cuda", "fp32")
        assert "CUDA is not available" in create_backend("onnxruntime").unavailable_reason(
            "cuda", "fp32")


def test_missing_onnxruntime_skips_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    reason = create_backend("onnxruntime").unavailable_reason("cpu", "fp32")
    assert "ONNX Runtime is not installed" in reason and "benchbench[onnx]" in reason


@pytest.mark.parametrize("entry,message", [
    ({"name": "compile", "options": {"mode": "fastest"}},
     "backends[0].options: backend 'compile' option 'mode' must be one of default, "
     "reduce-overhead, max-autotune, max-autotune-no-cudagraphs, got 'fastest'"),
    ({"name": "onnxruntime", "options": {"providers": "cpu"}},
     "backends[0].options: backend 'onnxruntime' has no option 'providers'"),
    ({"name": "tensorrt", "options": {"workspace_mib": "1G"}},
     "backends[0].options: backend 'tensorrt' option 'workspace_mib' must be int"),
    ({"name": "compile", "options": [1]}, "backends[0].options: must be a mapping"),
])
def test_bad_backend_options_are_one_line_errors(entry, message):
    with pytest.raises(SuiteError) as err:
        suite_from_dict({"name": "x", "device": "cpu", "models": ["tiny_seg"],
                         "resolutions": [[32, 64]], "backends": [entry]}, "s.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("value,message", [
    ({"min_argmax_agreement": 1.5}, "must be a share in (0, 1]"),
    ({"enabled": "yes"}, "must be true or false"), ({"tolerance": 0.9}, "tolerance"),
])
def test_bad_equivalence_settings_are_one_line_errors(value, message):
    with pytest.raises(SuiteError, match=None) as err:
        suite_from_dict({"name": "x", "device": "cpu", "models": ["tiny_seg"],
                         "resolutions": [[32, 64]], "equivalence": value}, "s.yaml")
    assert message in str(err.value)


def test_same_backend_twice_with_different_options_are_two_cells():
    suite = suite_from_dict({"name": "x", "device": "cpu", "models": ["tiny_seg"],
                             "resolutions": [[32, 64]], "backends": [
                                 "compile", {"name": "compile",
                                             "options": {"mode": "max-autotune"}}]}, "s.yaml")
    from benchbench.cells import expand
    ids = [c.id for c in expand(suite)]
    assert ids == ["tiny_seg@32x64/b1/compile-fp32/cpu",
                   "tiny_seg@32x64/b1/compile[mode=max-autotune]-fp32/cpu"]


def test_a_compile_sweep_compiles_every_cell_and_never_reports_eager_as_compile(tmp_path,
                                                                                 monkeypatch):
    """Dynamo caches per code object, shared by every instance of a model class: past
    ``recompile_limit`` sizes it runs eager silently (8 by default; 1 here, to show it with
    three sizes). Every cell starts from a fresh Dynamo, and a cell whose compile produced no
    graph fails instead of being timed as eager under a compile label."""
    import torch._dynamo.config

    from benchbench.measure.backends.compiled import CompileBackend

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    sizes = [[32, 64], [64, 128], [96, 192]]

    def sweep(name):
        suite = suite_from_dict({"name": name, "device": "cpu", "models": ["tiny_seg"],
                                 "resolutions": sizes, "backends": ["compile"],
                                 "timing": FAST, "equivalence": False},
                                str(tmp_path / "suite.yaml"))
        summary = benchbench.run_suite(suite, out_dir=tmp_path, progress=False)
        return [json.loads(line) for line in (summary.run_dir / "records.jsonl").open()]

    records = sweep("fresh")
    assert [r["status"] for r in records] == ["ok"] * 3
    assert all(r["backend_info"]["graphs_compiled"] >= 1 for r in records)
    torch._dynamo.reset()
    monkeypatch.setattr(CompileBackend, "_live", 1)   # as if a compiled model were still live:
    stale = sweep("stale")                            # no reset, the shared cache fills up
    assert stale[0]["status"] == "ok"
    assert [r["status"] for r in stale[1:]] == ["failed", "failed"]
    assert "compiled no graph for this cell (Dynamo fell back to eager)" in stale[1]["error"]
