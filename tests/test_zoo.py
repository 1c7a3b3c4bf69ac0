"""Models against the official code's exact counts and the papers' tables."""
import pytest
import torch

import benchbench as bb
from conftest import zoo_models
from benchbench.errors import UnknownModel, UsageError
from benchbench.zoo._layers import HarDBlock, hardblock_link


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ARCHITECTURES.md §1/§3 (counted from the official repos), 19 classes
OFFICIAL_PARAMS = {
    "fassd_net": 2_845_351,
    "fassd_net_l1": 2_845_351,
    "fassd_net_l2": 2_289_454,
    "fc_hardnet_70": 4_119_257,
    "fc_hardnet_70_l1": 4_119_257,
    "fc_hardnet_70_l2": 2_857_143,
    "fassd_baseline": 1_896_365,
    "fassd_aspp": 3_849_069,
    "fassd_dapf": 2_362_509,
    "fassd_mda": 2_379_207,
}


@pytest.mark.parametrize("name,expected", sorted(OFFICIAL_PARAMS.items()))
def test_exact_parameter_count(name, expected):
    assert n_params(bb.create_model(name)) == expected


@pytest.mark.parametrize("alpha,expected", [(1, 3_536_839), (2, 2_845_351), (4, 2_584_279),
                                            (6, 2_508_526)])
def test_table_iv_alpha_parameter_counts(alpha, expected):
    assert n_params(bb.create_model("fassd_net", alpha=alpha)) == expected


def test_table_ii_aspp_mda_params_match_printed_4_33m():
    assert round(n_params(bb.create_model("fassd_aspp_mda")) / 1e6, 2) == 4.33


@pytest.mark.parametrize("name", zoo_models())
def test_reported_params_match_paper_precision(name):
    card = bb.model_card(name)
    count = n_params(bb.create_model(name))
    for rep in card.reported:
        if card.family in ("fassd-backbones", "desanet"):
            continue   # reconstructions without official code: within 5%, tested elsewhere
        if rep.params is not None and "Table IV" not in rep.source:
            digits = len(f"{rep.params / 1e6}".split(".")[1])
            assert round(count / 1e6, digits) == pytest.approx(rep.params / 1e6), rep.source


@pytest.mark.parametrize("name", zoo_models())
@pytest.mark.parametrize("extra", [0, 3])
def test_logits_at_input_resolution(name, extra):
    """Any multiple of the size divisor from the output stride up; extra=3 gives sizes that are
    odd multiples of the divisor (feature maps that do not halve evenly). JetSeg, built per size,
    from 160x320, the smallest size every mode builds at (a real forward at 256x512 took its
    workstation mode 1.8 s here, 0.7 s at 160x320)."""
    card = bb.model_card(name)
    base = 160 if card.builds_per_size else max(64, card.output_stride)
    hw = (base + extra * card.size_divisor, 2 * base + 2 * extra * card.size_divisor)
    assert hw[0] % card.size_divisor == 0 and hw[1] % card.size_divisor == 0
    per_size = {"input_size": hw} if card.builds_per_size else {}
    model = bb.create_model(name, num_classes=11, **per_size).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *hw))
    assert out.shape == (1, 11, *hw)
    assert torch.isfinite(out).all()


def test_l1_first_conv_is_stride_3_and_l2_second_is_stride_2():
    x = torch.zeros(1, 3, 1024, 2048, device="meta")
    with torch.device("meta"):
        l1, l2 = bb.create_model("fassd_net_l1"), bb.create_model("fassd_net_l2")
    assert tuple(l1.stem[0](x).shape[2:]) == (342, 683)       # ARCHITECTURES §3.4
    assert l2.stem[1].conv.stride == (2, 2)
    assert [type(s.block).__name__ for s in l2.decoder.values()] == ["ConvLayer"] * 3
    assert l2.head.in_channels == 64


def test_hardblock_width_rule_and_example():
    widths = [hardblock_link(j, 48, 24, 1.7)[0] for j in range(1, 9)]
    assert widths == [24, 40, 24, 70, 24, 40, 24, 118]          # ARCHITECTURES §3.1
    block = HarDBlock(48, 10, 4)
    assert block.out_channels == 48 and n_params(block) == 34_620
    assert block.links == [[0], [1, 0], [2], [3, 2, 0]]


def test_registry_strictness():
    with pytest.raises(UnknownModel, match="did you mean 'fassd_net'"):
        bb.create_model("fasd_net")
    with pytest.raises(UsageError, match="takes no argument"):
        bb.create_model("fc_hardnet_70", alpha=2)
    assert bb.list_models("fassd_net*") == ["fassd_net", "fassd_net_l1", "fassd_net_l2"]


def test_duplicate_registration_raises():
    from benchbench.zoo import register_model

    with pytest.raises(ValueError, match="already registered"):
        @register_model(family="x", paper="x")
        def fassd_net():  # noqa: F811
            pass


def test_every_model_carries_paper_figures():
    for name in zoo_models():
        card = bb.model_card(name)
        if not card.reported:
            assert "paper prints no figures" in card.notes, name
            continue
        assert all(r.source and (r.fps or r.gflops or r.params) for r in card.reported)


TABLE_V = ["u_mobilenetv2", "fassd_mobile", "u_shufflenetv2", "fassd_shuffle", "u_resnet18",
           "fassd_resnet"]


@pytest.mark.parametrize("name", TABLE_V)
def test_table_v_reconstructions_within_5_percent(name):
    from benchbench.analysis import analyze
    from benchbench.zoo.fassd_backbones import PRINTED

    gflops, params, _, _ = PRINTED[name]
    r = analyze(name, (1024, 2048))
    assert abs(r.gflops / gflops - 1) <= 0.05
    assert abs(r.params / params - 1) <= 0.05


def test_backbone_trunks_match_torchvision_counts():
    from benchbench.zoo.backbones import MobileNetV2, ResNet18, ShuffleNetV2

    # torchvision totals minus classifier (and MobileNetV2's 1280 / ShuffleNetV2's conv5 1024)
    assert n_params(ResNet18()) == 11_689_512 - 513_000
    assert n_params(MobileNetV2()) == 3_504_872 - 1_281_000 - 412_160
    assert n_params(ShuffleNetV2()) == 2_278_604 - 1_025_000 - 477_184
    feats = ResNet18()(torch.zeros(1, 3, 64, 128))
    assert [f.shape[1:] for f in feats] == [(64, 16, 32), (128, 8, 16), (256, 4, 8), (512, 2, 4)]


def test_farsee_table_i_methods():
    from torch import nn

    assert bb.list_models("farsee*") == ["farsee_aspp_decoder", "farsee_cfaspp_nosr",
                                         "farsee_faspp_decoder", "farsee_net"]
    shuffles = {n: sum(isinstance(m, nn.PixelShuffle) for m in bb.create_model(n).modules())
                for n in bb.list_models("farsee*")}
    assert shuffles == {"farsee_aspp_decoder": 0, "farsee_cfaspp_nosr": 0,
                        "farsee_faspp_decoder": 0, "farsee_net": 2}   # SR only in the full method
    full = bb.model_card("farsee_net").reported[0]
    assert full.fps == round(1000 / 46.1, 1) and full.gpu == "Titan X (Maxwell)"
    # the backbone is the plain-torch ResNet-18 trunk (11,176,512 params)
    assert n_params(bb.create_model("farsee_net").frontend) == 11_176_512


@pytest.mark.parametrize("name", zoo_models())
def test_runs_at_every_size_of_the_cityscapes_13_grid(name):
    """Shape propagation at every grid size (meta device, so it costs no arithmetic)."""
    from benchbench.analysis import analyze
    from benchbench.suite import GRIDS

    for hw in GRIDS["cityscapes-13"]:
        assert analyze(name, hw, num_classes=19).output_shape == (1, 19, *hw), hw
