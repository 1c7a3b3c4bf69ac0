"""GPU normalisation against FASSD-Net Table X, and the literature database."""
import json

import pytest

from benchbench.cli import main
from benchbench.normalize import (device_key_for, gpu_key, literature, literature_per_class,
                                  normalize_fps)

TABLE_X = literature("cityscapes").query("table == 'Table X'")


@pytest.mark.parametrize("row", [r for _, r in TABLE_X.iterrows() if r["fps"] == r["fps"]],
                         ids=lambda r: r["method"])
def test_table_x_fps_norm_column_row_by_row(row):
    assert abs(row["fps_norm"] - float(row["fps_norm_printed"])) <= 0.1
    assert not row["fps_norm_estimate"]


def test_table_x_is_complete_and_non_numeric_rows_are_kept():
    assert len(TABLE_X) == 26
    dl = TABLE_X[TABLE_X["method"] == "DeepLabV3+"].iloc[0]
    assert dl["fps_text"] == "≈ 1" and dl["fps_norm"] != dl["fps_norm"]   # NaN, not invented


def test_factors_and_tensorrt():
    assert normalize_fps(61.0, "titan-x-maxwell").value == pytest.approx(100.0)
    assert normalize_fps(165.0, "gtx1080ti", tensorrt=True).value == pytest.approx(100.0)
    h100 = normalize_fps(590.0, "h100")
    assert h100.value == pytest.approx(100.0) and h100.estimate
    assert normalize_fps(10.0, None).reason == "GPU unknown or ambiguous"
    assert normalize_fps(10.0, "cpu").value is None


def test_gpu_aliases():
    assert gpu_key("Titan X (M)") == "titan-x-maxwell"
    assert gpu_key("Titan XP") == "titan-xp"
    assert gpu_key("Titan X") is None                  # ambiguous as printed
    assert device_key_for("NVIDIA H100 80GB HBM3", "cuda", "h100") == "h100"
    assert device_key_for("AMD EPYC", "cpu", "cpu") == "cpu"
    assert device_key_for("NVIDIA GeForce RTX 4090", "cuda", "gtx1080ti") is None  # no profile


def test_every_seed_table_is_in_the_database():
    tables = set(literature()["source"])
    for t in ["FASSD-Net, Table II", "FASSD-Net, Table IV", "FASSD-Net, Table V",
              "FASSD-Net, Table VIII", "FASSD-Net, Table IX", "FASSD-Net, Table X",
              "FASSD-Net, Table XI", "FarSee-Net, Table I", "FarSee-Net, Table II",
              "DESANet, Table 1", "JetSeg, Table 1"]:
        assert t in tables
    per_class = literature_per_class()
    fassd = per_class[(per_class["method"] == "FASSD-Net") & (per_class["table"] == "Table VI")]
    assert fassd.iloc[0]["truck"] == 80.8 and fassd.iloc[0]["miou"] == 78.8


def test_farsee_titan_x_maxwell_normalisation():
    farsee = literature().query("method == 'FarSee-Net' and input_w == 768").iloc[0]
    assert farsee["fps_norm"] == pytest.approx(84.0 / 0.61)


def test_literature_cli(capsys):
    assert main(["literature", "--dataset", "camvid", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 16 and {r["dataset"] for r in rows} == {"camvid"}
    assert main(["literature"]) == 0
    assert "FASSD-Net, Table X" in capsys.readouterr().out
