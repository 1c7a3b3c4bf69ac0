"""JetSeg against the official configurator's exact parameter counts (ARCHITECTURES.md §4)."""
import pytest
import torch

import benchbench as bb
from benchbench.analysis import analyze
from benchbench.suite import GRIDS
from benchbench.zoo.jetseg import REU, encoder_config, fmap_ladder, get_groups


def n_params(name, hw, classes=19, combination=0):
    model = bb.create_model(name, input_size=hw, num_classes=classes, combination=combination)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,hw,expected", [
    ("jetseg_nano", (256, 512), 31_295), ("jetseg_nano", (512, 1024), 33_733),
    ("jetseg_nano", (1024, 2048), 36_171), ("jetseg_nano", (320, 640), 33_733),
    ("jetseg_nano", (576, 1152), 36_171),
    ("jetseg_agx", (512, 1024), 354_744), ("jetseg_agx", (1024, 2048), 370_375),
    ("jetseg_workstation", (512, 1024), 1_296_300),
    ("jetseg_workstation", (1024, 2048), 1_339_323)])
def test_official_parameter_counts(name, hw, expected):
    assert n_params(name, hw) == expected


@pytest.mark.parametrize("combination,expected", [(0, 32_140), (1, 32_448), (2, 34_361),
                                                  (3, 31_632), (4, 32_016), (5, 31_945)])
def test_nano_camvid_512_combinations(combination, expected):
    assert n_params("jetseg_nano", (512, 512), 32, combination) == expected


def test_configurator_rules():
    assert [e[0] for e in fmap_ladder(512, 512)] == [512, 256, 128, 64, 32, 16]
    assert len(fmap_ladder(1024, 2048)) == 8
    assert [get_groups(*p) for p in [(32, 32), (64, 64), (256, 192), (8, 16), (3, 8), (48, 48),
                                     (768, 512), (1024, 1024)]] == [8, 16, 16, 4, 1, 12, 64, 128]
    blocks, _ = encoder_config(512, 512, "nano")
    assert [(b["in"], b["exp"], b["out"]) for b in blocks if not b["residual"]] == [
        (3, 16, 8), (8, 16, 16), (16, 32, 32), (32, 64, 48), (48, 64, 64), (64, 64, 64)]
    assert len(blocks) == 10 and blocks[-1]["stride"] == 1
    assert len(encoder_config(512, 512, "workstation")[0]) == 20


SIZES = list(GRIDS["cityscapes-13"]) + [(512, 512), (360, 480)]


@pytest.mark.parametrize("name", ["jetseg_nano", "jetseg_agx", "jetseg_workstation"])
def test_every_mode_runs_at_every_grid_size(name):
    for hw in SIZES:
        r = analyze(name, hw, num_classes=19)      # meta-device forward at the real size
        assert r.output_shape == (1, 19, *hw), (name, hw)


def test_real_forward_small():
    model = bb.create_model("jetseg_nano", input_size=(256, 512)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 256, 512))
    assert out.shape == (1, 19, 256, 512) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="cannot be built for this input size"):
        bb.create_model("jetseg_nano", input_size=(128, 256))


def test_reu_is_counted_and_jetseg_formula():
    x = torch.linspace(-3, 3, 13)
    assert torch.allclose(REU()(x), torch.where(x <= 0, x * torch.exp(x), x))
    r = analyze("jetseg_nano", (512, 512), num_classes=32)
    # the repo's own counter (config/hooks.py) gives 1.1146 G for M3 C0 at 512x512, 32 classes
    assert round(r.macs_jetseg_formula / 1e9, 4) == 1.1146
    assert round(analyze("jetseg_nano", (512, 512), num_classes=19).macs_jetseg_formula / 1e9,
                 4) == 1.0600
    assert round(r.conv_macs / 1e9, 4) == 1.0419          # conv-only hooks, ARCHITECTURES §1
    # REU elements are in the papers' convention count (an ordinary module, not an opaque op)
    assert r.macs_paper > r.conv_macs + 10_000_000
