"""Official checkpoints, synthesised in the authors' layout from their state-dict key lists."""
import json
from pathlib import Path

import pytest
import torch

import benchbench as bb
from benchbench.errors import WeightsError

DATA = Path(__file__).parent / "data" / "official_state_dicts"


def synthesise(name: str, prefix: str = "") -> dict:
    spec = json.loads((DATA / f"{name}.json").read_text())
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in spec["state_dict"]:
        if key.endswith("num_batches_tracked"):
            state[prefix + key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[prefix + key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[prefix + key] = torch.randn(shape, generator=g) * 0.05
    return state


@pytest.mark.parametrize("name", ["fassd_net", "fassd_net_l1", "fassd_net_l2", "fc_hardnet_70"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_layout_loads_every_tensor(tmp_path, name, prefix):
    official = synthesise(name, prefix)
    path = tmp_path / "ckpt.pkl"
    torch.save({"epoch": 1, "model_state": official}, path)
    model = bb.create_model(name, weights=str(path))
    ours = model.state_dict()
    assert len(ours) == len(official)
    # spot-check values landed where the official names say
    assert torch.equal(ours["stem.0.conv.weight"], official[prefix + "base.0.conv.weight"])
    assert torch.equal(ours["head.weight"], official[prefix + "finalConv.weight"])
    if name.startswith("fassd"):
        assert torch.equal(ours["context.branches.1.conv1x3.weight"],
                           official[prefix + "DAPF.pyBranch3.atrous_conv1x3.weight"])
        assert torch.equal(ours["decoder.b3.mda.conv1x1.conv.weight"],
                           official[prefix + "mda.2.conv1x1.conv.weight"])


def test_mismatch_lists_missing_unexpected_and_misshaped(tmp_path):
    state = synthesise("fassd_net")
    del state["finalConv.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["base.0.conv.weight"] = torch.zeros(8, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save({"model_state": state}, path)
    with pytest.raises(WeightsError) as err:
        bb.create_model("fassd_net", weights=str(path))
    msg = str(err.value)
    assert "missing (1): head.bias" in msg
    assert "unexpected (1): extra.weight" in msg
    assert "mis-shaped (1): stem.0.conv.weight (8, 3, 3, 3) vs model (16, 3, 3, 3)" in msg


def test_l2_checkpoint_does_not_fit_full_model(tmp_path):
    path = tmp_path / "l2.pth"
    torch.save({"model_state": synthesise("fassd_net_l2")}, path)
    with pytest.raises(WeightsError, match="missing"):
        bb.create_model("fassd_net", weights=str(path))


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="no such checkpoint"):
        bb.create_model("fassd_net", weights=str(tmp_path / "nope.pth"))
