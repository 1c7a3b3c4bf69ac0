"""Accuracy inside suites: every cell is scored through its own backend and precision; the report
draws Fig. 6, the per-class table and the fp32-vs-reduced-precision table from a real run."""
import json

import pytest

from _fixtures import make_cityscapes, oracle_checkpoint
from benchbench.cli import main
from benchbench.errors import SuiteError
from benchbench.report.tables import load_runs, per_class_table, precision_table
from benchbench.store import read_records
from benchbench.suite import load_suite

SUITE = """\
name: acc
device: cpu
models: [color_oracle, fassd_net_l2]
resolutions: [[64, 128], [128, 256]]
backends: [{name: eager, precision: fp32}, {name: eager, precision: bf16}]
timing: {protocol: robust, warmup: 1, min_iterations: 3, max_time_s: 0.05}
accuracy:
  dataset: cityscapes
  root: data/cityscapes
  split: val
  eval_at: full
  limit: 3
  weights: {color_oracle: oracle.pth}
"""


@pytest.fixture
def suite_dir(tmp_path):
    make_cityscapes(tmp_path / "data" / "cityscapes")
    oracle_checkpoint(tmp_path / "oracle.pth")
    (tmp_path / "acc.yaml").write_text(SUITE)
    return tmp_path


def test_suite_cells_carry_accuracy_and_the_report_draws_it(suite_dir, capsys):
    report = suite_dir / "acc.html"
    code = main(["run", str(suite_dir / "acc.yaml"), "--out", str(suite_dir / "res"),
                 "--report", str(report), "--json", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] == 8
    records = {r["cell_id"]: r for r in read_records(f"{out['run_dir']}/records.jsonl")}
    full = records["color_oracle@128x256/b1/eager-fp32/cpu"]
    assert full["miou"] == 100.0 and full["n_images"] == 3 and full["eval_at"] == "full"
    assert full["fps"] > 0 and full["latency_ms_p50"] > 0          # timed and scored
    assert len(full["weights_sha256"]) == 64 and full["weights"].endswith("oracle.pth")
    assert full["accuracy_protocol"]["preprocess"]["name"] == "imagenet_rgb"
    assert full["iou_per_class"]["road"] in (100.0, None)
    small = records["color_oracle@64x128/b1/eager-fp32/cpu"]
    assert 80 < small["miou"] < 100                                  # upsampled to full labels
    bf16 = records["color_oracle@128x256/b1/eager-bf16/cpu"]
    assert bf16["miou"] is not None and bf16["accuracy_protocol"]["input_size"] == [128, 256]
    untrained = records["fassd_net_l2@128x256/b1/eager-fp32/cpu"]
    assert untrained["status"] == "ok" and untrained["fps"] > 0 and untrained["miou"] is None
    assert "no weights for fassd_net_l2" in untrained["accuracy_unavailable"]
    html = report.read_text()
    assert "mIoU vs input resolution (FASSD Fig. 6)" in html
    assert "Per-class IoU, %" in html and "FASSD Table VIII style" in html

    frame, _ = load_runs([out["run_dir"]])
    pc = per_class_table(frame)
    assert len(pc) == 4 and {"road", "bicycle", "mIoU"} <= set(pc.columns)
    prec = precision_table(frame)
    row = prec[(prec["model"] == "color_oracle") & (prec["resolution"] == "128x256")].iloc[0]
    assert row["mIoU fp32"] == 100.0 and row["reduced"] == "eager-bf16"
    assert row["difference"] == pytest.approx(bf16["miou"] - 100.0)


@pytest.mark.parametrize("edit, field", [
    ("root: data/cityscapes", "accuracy.root"),
    ("weights: {color_oracle: oracle.pth}", "accuracy.weights.fassd_net"),
    ("weights: {color_oracle: oracle.pth}", "accuracy.weights.color_oracle"),
    ("dataset: cityscapes", "num_classes"),
    ("eval_at: full", "accuracy.eval_at"),
])
def test_bad_accuracy_sections_fail_up_front(suite_dir, edit, field):
    replacement = {
        "accuracy.root": "root: data/nowhere",
        "accuracy.weights.fassd_net": "weights: {fassd_net: oracle.pth}",
        "accuracy.weights.color_oracle": "weights: {color_oracle: missing.pth}",
        "num_classes": "dataset: camvid",
        "accuracy.eval_at": "eval_at: everywhere",
    }[field]
    path = suite_dir / "bad.yaml"
    path.write_text(SUITE.replace(edit, replacement))
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert f": {field}:" in str(err.value) and "\n" not in str(err.value)
