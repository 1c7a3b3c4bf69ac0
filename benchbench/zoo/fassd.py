"""FASSD-Net: "Fast and Accurate Real-Time Semantic Segmentation with Dilated Asymmetric
Convolutions", Rosas-Arias, Benitez-Garcia et al., IEEE T-ITS 2022 (ICPR 2020 poster).

Official code: GibranBenitez/FASSD-Net (``ptsemseg/models/FASSDNet*.py``). Architecture: Table I
of the journal; DAPF Sec. III-B / Fig. 3; MDA Sec. III-C / Fig. 4; layer-by-layer counts in
``shared/reference/ARCHITECTURES.md`` §3.3-3.4.

Encoder = FC-HarDNet-70 without its fifth stage (bottleneck 224 ch at stride 32); DAPF at the
bottleneck; one MDA after each decoder up-conv (dilations 8, 4, 2 from deep to shallow).
Ablation rows of Table II (no official code) are reconstructed as ARCHITECTURES.md §3.4:

    fassd_baseline        DAPF and MDA removed
    fassd_aspp            DeepLabV3 ASPP (with image pooling) instead of DAPF, no MDA
    fassd_dapf            DAPF, no MDA
    fassd_mda             MDA, no DAPF
    fassd_aspp_mda        ASPP + MDA
    fassd_net             DAPF + MDA (the final model)
"""
from __future__ import annotations

import torch
from torch import nn

from ._layers import BNPReLU, ConvBNPReLU, ConvBNReLU
from ._registry import Reported, register_model
from .hardnet import HarDUNet

FASSD_STAGES = ("b1", "b2", "b3", "b4")    # Table I: four encoder HarDBlocks
DAPF_DILATIONS = (12, 24, 36)              # Sec. III-B, as ASPP
MDA_DILATIONS = (8, 4, 2)                  # Sec. III-C: MDA 1, 2, 3
ALPHA_CHOICES = {"alpha": (1, 2, 4, 6)}    # Table IV: DAPF compression factors studied


class DAPFBranch(nn.Module):
    """A 3x3 atrous conv factorised into 3x1 (dilation (d, 1)) then 1x3 (dilation (1, d))."""

    def __init__(self, cin: int, mid: int, d: int):
        super().__init__()
        self.conv3x1 = nn.Conv2d(cin, mid, (3, 1), padding=(d, 0), dilation=(d, 1), bias=False)
        self.bn3x1 = nn.BatchNorm2d(mid)
        self.conv1x3 = nn.Conv2d(mid, mid, (1, 3), padding=(0, d), dilation=(1, d), bias=False)
        self.bn1x3 = nn.BatchNorm2d(mid)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.relu(self.bn3x1(self.conv3x1(x)))
        return self.relu(self.bn1x3(self.conv1x3(x)))


class DAPF(nn.Module):
    """Dilated Asymmetric Pyramidal Fusion: K -> four branches of K // alpha -> 1x1 -> K."""

    def __init__(self, channels: int, alpha: int = 2):
        super().__init__()
        mid = channels // alpha
        self.pointwise = ConvBNReLU(channels, mid, 1)
        self.branches = nn.ModuleList(DAPFBranch(channels, mid, d) for d in DAPF_DILATIONS)
        self.project = ConvBNReLU(4 * mid, channels, 1)

    def forward(self, x):
        return self.project(torch.cat([self.pointwise(x)] + [b(x) for b in self.branches], 1))


class ASPP(nn.Module):
    """DeepLabV3 ASPP used for the Table II "+ASPP" rows: 1x1, three 3x3 atrous (12/24/36) and
    image pooling, 256 channels each, projected back to the input width."""

    def __init__(self, channels: int, width: int = 256):
        super().__init__()
        self.branches = nn.ModuleList([ConvBNReLU(channels, width, 1)] + [
            ConvBNReLU(channels, width, 3, padding=d, dilation=d) for d in DAPF_DILATIONS])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.image_pool = ConvBNReLU(channels, width, 1)
        self.project = ConvBNReLU(5 * width, channels, 1)

    def forward(self, x):
        pooled = self.image_pool(self.pool(x)).expand(-1, -1, *x.shape[2:])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))


class MDA(nn.Module):
    """Multi-resolution Dilated Asymmetric module (attribute names as the official checkpoint).

    BNPReLU -> 3x3 conv C -> C/2 -> [3x3 | 3x1(d) + 1x3(d)] summed -> BNPReLU -> 1x1 conv back to C
    (no BN, no activation) -> + raw input.
    """

    def __init__(self, channels: int, d: int):
        super().__init__()
        half = channels // 2
        self.bn_relu_1 = BNPReLU(channels)
        self.conv3x3 = ConvBNPReLU(channels, half, 3, padding=1)
        self.parallel_conv3x3 = ConvBNPReLU(half, half, 3, padding=1)
        self.parallel_ddconv3x1 = ConvBNPReLU(half, half, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.parallel_ddconv1x3 = ConvBNPReLU(half, half, (1, 3), padding=(0, d), dilation=(1, d))
        self.bn_relu_2 = BNPReLU(half)
        self.conv1x1 = nn.Module()
        self.conv1x1.conv = nn.Conv2d(half, channels, 1, bias=False)

    def forward(self, x):
        y = self.conv3x3(self.bn_relu_1(x))
        y = self.parallel_conv3x3(y) + self.parallel_ddconv1x3(self.parallel_ddconv3x1(y))
        return self.conv1x1.conv(self.bn_relu_2(y)) + x


def _fassd(num_classes: int, *, context=None, mda: bool = True, alpha: int = 2,
           stem_strides=(2, 1, 2, 1), conv64_decoder: bool = False) -> HarDUNet:
    contexts = {"dapf": lambda c: DAPF(c, alpha), "aspp": ASPP, None: None}
    return HarDUNet(num_classes, stages=FASSD_STAGES, stem_strides=stem_strides, last_pool=False,
                    context=contexts[context], mda=MDA if mda else None,
                    mda_dilations=MDA_DILATIONS, conv64_decoder=conv64_decoder)


_PAPER = "FASSD-Net (Rosas-Arias et al., IEEE T-ITS 2022)"


def _t2(gflops, params, fps, miou):
    return Reported("FASSD-Net Table II", params=params, gflops=gflops, fps=fps,
                    gpu="GTX 1080 Ti", miou_val=miou)


def _t4(alpha_params, fps, miou):
    return Reported("FASSD-Net Table IV", params=alpha_params, fps=fps, gpu="GTX 1080 Ti",
                    miou_val=miou)


_ALPHA_ROWS = {1: _t4(3.54e6, 39.8, 78.50), 2: _t4(2.85e6, 41.1, 78.22),
               4: _t4(2.58e6, 41.7, 77.63), 6: _t4(2.51e6, 41.9, 77.61)}


@register_model(family="fassd", paper=_PAPER, official_params=2_845_351, reported=(
    Reported("FASSD-Net Table X", params=2.85e6, gflops=45.1, fps=41.1, gpu="GTX 1080 Ti",
             miou_val=78.8, miou_test=76.0),
    _t2(45.1, 2.85e6, 41.1, 78.2),
    Reported("FASSD-Net Table V", params=2.85e6, gflops=45.1, fps=41.1, gpu="GTX 1080 Ti",
             miou_val=78.2),
    Reported("FASSD-Net Table IX (Jetson TX2, TensorRT fp16)", input_hw=(512, 1024), fps=14.3,
             gpu="Jetson TX2", tensorrt=True, miou_val=72.1),
), notes="alpha (DAPF compression, Table IV: 1, 2, 4, 6) is the only argument; 2 is the paper's.",
   arg_choices=ALPHA_CHOICES)
def fassd_net(*, num_classes: int = 19, alpha: int = 2) -> nn.Module:
    return _fassd(num_classes, context="dapf", alpha=alpha)


@register_model(family="fassd", paper=_PAPER, official_params=2_845_351, reported=(
    Reported("FASSD-Net Table X", params=2.85e6, gflops=20.0, fps=78.0, gpu="GTX 1080 Ti",
             miou_val=76.3, miou_test=73.9),
    Reported("FASSD-Net Table IX (Jetson TX2, TensorRT fp16)", input_hw=(576, 1152), fps=22.2,
             gpu="Jetson TX2", tensorrt=True, miou_val=69.5),
), notes="Stride-3 first conv (official FASSDNetL1): 1024x2048 -> 342x683; sizes round as upstream.",
   arg_choices=ALPHA_CHOICES)
def fassd_net_l1(*, num_classes: int = 19, alpha: int = 2) -> nn.Module:
    return _fassd(num_classes, context="dapf", alpha=alpha, stem_strides=(3, 1, 2, 1))


@register_model(family="fassd", paper=_PAPER, output_stride=64, official_params=2_289_454, reported=(
    Reported("FASSD-Net Table X", params=2.3e6, gflops=8.7, fps=133.1, gpu="GTX 1080 Ti",
             miou_val=74.1, miou_test=72.1),
    Reported("FASSD-Net Table IX (Jetson TX2, TensorRT fp16)", input_hw=(704, 1408), fps=28.5,
             gpu="Jetson TX2", tensorrt=True, miou_val=71.0),
), notes="Stride-2 second stem conv; decoder HarDBlocks replaced by 3x3 ConvLayers to 64 ch.",
   arg_choices=ALPHA_CHOICES)
def fassd_net_l2(*, num_classes: int = 19, alpha: int = 2) -> nn.Module:
    return _fassd(num_classes, context="dapf", alpha=alpha, stem_strides=(2, 2, 2, 1),
                  conv64_decoder=True)


_ABLATION = "Table II ablation, reconstructed (no official code): ARCHITECTURES.md §3.4."


@register_model(family="fassd", paper=_PAPER, reported=(_t2(32.9, 1.90e6, 56.3, 75.2),
                Reported("FASSD-Net Table V (HarDNet baseline)", params=1.90e6, gflops=32.9,
                         fps=56.3, gpu="GTX 1080 Ti", miou_val=75.2)), notes=_ABLATION)
def fassd_baseline(*, num_classes: int = 19) -> nn.Module:
    return _fassd(num_classes, context=None, mda=False)


@register_model(family="fassd", paper=_PAPER, reported=(_t2(36.8, 3.85e6, 50.2, 75.8),),
                notes=_ABLATION + " ASPP with image pooling; rates 12/24/36 are not confirmable.")
def fassd_aspp(*, num_classes: int = 19) -> nn.Module:
    return _fassd(num_classes, context="aspp", mda=False)


@register_model(family="fassd", paper=_PAPER, reported=(_t2(33.9, 2.36e6, 53.9, 77.7),),
                notes=_ABLATION, arg_choices=ALPHA_CHOICES)
def fassd_dapf(*, num_classes: int = 19, alpha: int = 2) -> nn.Module:
    return _fassd(num_classes, context="dapf", mda=False, alpha=alpha)


@register_model(family="fassd", paper=_PAPER, reported=(_t2(44.2, 2.38e6, 42.2, 77.4),),
                notes=_ABLATION)
def fassd_mda(*, num_classes: int = 19) -> nn.Module:
    return _fassd(num_classes, context=None, mda=True)


@register_model(family="fassd", paper=_PAPER, reported=(_t2(48.0, 4.33e6, 39.1, 76.8),),
                notes=_ABLATION)
def fassd_aspp_mda(*, num_classes: int = 19) -> nn.Module:
    return _fassd(num_classes, context="aspp", mda=True)


def alpha_reported(alpha: int) -> Reported | None:
    """Table IV row for a DAPF compression factor."""
    return _ALPHA_ROWS.get(alpha)
