"""Suite validation: every malformed suite is one clean stderr line and exit code 2."""
from pathlib import Path

import pytest

from benchbench.cli import main
from benchbench.suite import GRIDS, load_suite

ROOT = Path(__file__).resolve().parent.parent
GOOD = """\
name: t
device: cpu
models: [fassd_net_l2]
resolutions: [[64, 128]]
"""

# (yaml text, a fragment the one error line must contain)
MALFORMED = [
    ("name: [unclosed\n", "invalid YAML at line"),
    ("- just\n- a list\n", "a suite is a mapping"),
    ("", "a suite is a mapping of keys, got nothing"),
    (GOOD + "colour: blue\n", "colour: unknown key"),
    (GOOD.replace("name: t\n", ""), "name: is required"),
    (GOOD.replace("name: t", "name: 3"), "name: must be a non-empty string"),
    (GOOD.replace("models: [fassd_net_l2]", "models: [fasd_net]"),
     "models[0]: unknown model 'fasd_net' (did you mean 'fassd_net'?)"),
    (GOOD.replace("models: [fassd_net_l2]", "models: []"), "models: must not be empty"),
    (GOOD.replace("models: [fassd_net_l2]", "models: fassd_net"), "models: must be a list"),
    (GOOD.replace("models: [fassd_net_l2]", "models: [{name: fassd_net, args: {beta: 2}}]"),
     "models[0].args.beta: fassd_net takes no argument 'beta'"),
    (GOOD.replace("models: [fassd_net_l2]", "models: [{args: {alpha: 2}}]"),
     "models[0]: a model entry needs a 'name'"),
    (GOOD.replace("device: cpu", "device: gpu"), "device: 'gpu' is not one of: cpu, cuda, auto"),
    (GOOD.replace("[[64, 128]]", "[]"), "resolutions: must not be empty"),
    (GOOD.replace("[[64, 128]]", "[[0, 128]]"), "resolutions[0][0]: must be a positive integer"),
    (GOOD.replace("[[64, 128]]", "[[-64, 128]]"), "must be a positive integer, got -64"),
    (GOOD.replace("[[64, 128]]", "[[100, 200]]"), "100x200 is not a multiple of 16"),
    (GOOD.replace("[[64, 128]]", "[[64, 128, 3]]"), "a size is [H, W] or 'HxW'"),
    (GOOD.replace("[[64, 128]]", "[[64, 128], [64, 128]]"), "lists the same size twice"),
    (GOOD.replace("[[64, 128]]", "cityscape-13"),
     "unknown grid 'cityscape-13'"),
    (GOOD.replace("[[64, 128]]", "[[32, 64]]"), "smaller than fassd_net_l2's output stride 64"),
    (GOOD + "backends: [{name: onnx}]\n", "backends[0].name: 'onnx' is not one of"),
    (GOOD + "backends: [{name: eager, precision: fp8}]\n", "backends[0].precision: 'fp8'"),
    (GOOD + "backends: [{name: eager, precision: fp16}]\n",
     "eager fp16 cannot run with device: cpu"),
    (GOOD + "backends: [eager, eager]\n", "backends[1]: eager-fp32 is listed twice"),
    (GOOD + "backends: [{name: eager, dtype: fp32}]\n", "backends[0].dtype: unknown key"),
    (GOOD + "timing: {protocol: fastest}\n", "timing.protocol: 'fastest' is not one of"),
    (GOOD + "timing: {iterations: 0}\n", "timing.iterations: must be a positive integer"),
    (GOOD + "timing: {iterations: ten}\n", "timing.iterations: must be a positive integer"),
    (GOOD + "timing: {warmup: -1}\n", "timing.warmup: must be a non-negative integer"),
    (GOOD + "timing: {max_time_s: 0}\n", "timing.max_time_s: must be greater than 0"),
    (GOOD + "timing: {include_transfer: maybe}\n", "timing.include_transfer: must be true or"),
    (GOOD + "timing: {iteration: 10}\n", "(did you mean 'iterations'?)"),
    (GOOD + "timing: {min_iterations: 50, max_iterations: 10}\n", "must not exceed"),
    (GOOD + "timing: [1, 2]\n", "timing: must be a mapping"),
    (GOOD + "power: {sampler: magic}\n", "power.sampler: 'magic' is not one of"),
    (GOOD + "num_classes: 0\n", "num_classes: must be a positive integer"),
    (GOOD + "batch_sizes: [1, 0]\n", "batch_sizes[1]: must be a positive integer"),
    (GOOD + "target: jetson-tx3\n", "target: 'jetson-tx3' is not one of"),
]


@pytest.mark.parametrize("text,fragment", MALFORMED, ids=[f[1][:40] for f in MALFORMED])
def test_malformed_suite_is_one_clean_line(tmp_path, capsys, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"bench: {path}: ")
    assert fragment in err


def test_missing_file_and_directory(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err
    assert main(["run", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_binary_file(tmp_path, capsys):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81")
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_named_grids():
    assert len(GRIDS["cityscapes-13"]) == 13
    assert GRIDS["cityscapes-13"][0] == (256, 512) and GRIDS["cityscapes-13"][-1] == (1024, 2048)
    assert len(GRIDS["cityscapes-10"]) == 10
    assert {(512, 1024), (576, 1152), (704, 1408), (1024, 2048)} <= set(GRIDS["cityscapes-10"])


@pytest.mark.parametrize("path", sorted((ROOT / "suites").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_suites_are_valid(path):
    suite = load_suite(path)
    assert suite.models and suite.resolutions and suite.backends


def test_model_args_and_hxw_strings(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("models: [fassd_net_l2]",
                                 "models: [{name: fassd_net, args: {alpha: 4}}]")
                    .replace("[[64, 128]]", "['64x128', [128, 256]]"))
    suite = load_suite(path)
    assert suite.models[0].kwargs == {"alpha": 4}
    assert suite.resolutions == ((64, 128), (128, 256))
