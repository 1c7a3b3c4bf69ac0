"""FASSD-Net Table V: DAPF + MDA on other backbones, and their plain U-shaped baselines.

Sec. IV-C of the FASSD-Net journal: MobileNetV2, ShuffleNetV2 and ResNet-18 "redesigned for
semantic segmentation in a U-shape style with four encoder and three decoder blocks, plus our DAPF
and MDA modules" (FASSD-*), and baselines "with a simple fusion block and without pyramidal
pooling blocks" (U-*). There is no official code and the paper gives no widths, so:

* encoder = the backbone's four feature maps at strides 4/8/16/32 (``backbones.py``);
* U-* decoder stage = up-fuse [deep, skip] -> 3x3 (or 1x1) ConvBNReLU to the stage width
  [-> a second 3x3 ConvBNReLU]: the "simple fusion block";
* FASSD-* = DAPF (alpha) on the bottleneck, and decoder stages as FASSD-Net's: up-fuse -> 1x1
  ConvBNReLU to half the concat -> MDA (dilation 8/4/2) -> ConvBNReLU to the stage width;
* MobileNetV2 gets a 3x3 ConvBNReLU bottleneck at stride 32 (its trunk alone is too light in
  parameters to reach the printed totals);
* decoder widths, fusion kernel and bottleneck width are FITTED so that params and GFLOPs (papers'
  convention, 1024x2048, 19 classes) land within 5% of Table V; the fitted values are the table
  below and the results are asserted in tests/test_zoo.py.
"""
from __future__ import annotations

from torch import nn

from ._layers import ConvBNReLU, up_fuse, upsample_to
from ._registry import Reported, register_model
from .backbones import BACKBONES
from .fassd import DAPF, MDA, MDA_DILATIONS

# name:            backbone,      bottleneck, widths (/16, /8, /4), kernel, 2nd conv, DAPF alpha
TABLE_V = {
    "u_mobilenetv2": ("mobilenetv2", 640, (128, 32, 16), 3, False, None),
    "fassd_mobile": ("mobilenetv2", 384, (64, 16, 16), 3, False, 2),
    "u_shufflenetv2": ("shufflenetv2", None, (256, 32, 24), 3, True, None),
    "fassd_shuffle": ("shufflenetv2", None, (48, 16, 16), 1, False, 2),
    "u_resnet18": ("resnet18", None, (256, 160, 64), 3, True, None),
    "fassd_resnet": ("resnet18", None, (192, 192, 160), 1, False, 2),
}

# Table V as printed: GFLOPs, params, FPS (GTX 1080 Ti), mIoU (Cityscapes val)
PRINTED = {
    "u_mobilenetv2": (25.5, 4.64e6, 16.4, 72.4), "fassd_mobile": (24.7, 5.33e6, 15.6, 76.5),
    "u_shufflenetv2": (29.3, 3.17e6, 43.5, 70.9), "fassd_shuffle": (23.0, 4.24e6, 35.8, 73.7),
    "u_resnet18": (142.3, 14.42e6, 32.6, 74.6), "fassd_resnet": (131.4, 15.71e6, 28.3, 77.0),
}


class DecoderStage(nn.Module):
    def __init__(self, deep: int, skip: int, width: int, kernel: int, second_conv: bool,
                 mda_dilation: int | None):
        super().__init__()
        cin = deep + skip
        if mda_dilation is not None:
            half = cin // 2
            self.up_conv = ConvBNReLU(cin, half, 1)
            self.mda = MDA(half, mda_dilation)
            cin = half
        self.fuse = ConvBNReLU(cin, width, kernel, padding=kernel // 2)
        self.refine = ConvBNReLU(width, width, 3, padding=1) if second_conv else nn.Identity()

    def forward(self, deep, skip):
        x = up_fuse(deep, skip)
        if hasattr(self, "mda"):
            x = self.mda(self.up_conv(x))
        return self.refine(self.fuse(x))


class UShapedNet(nn.Module):
    """Backbone encoder -> [bottleneck] -> [DAPF] -> three decoder stages -> 1x1 head -> upsample."""

    def __init__(self, backbone: str, bottleneck: int | None, widths, kernel: int,
                 second_conv: bool, alpha: int | None, num_classes: int = 19):
        super().__init__()
        self.encoder = BACKBONES[backbone]()
        skips = list(self.encoder.feature_channels)
        ch = skips[-1]
        self.bottleneck = nn.Identity()
        if bottleneck is not None:
            self.bottleneck = ConvBNReLU(ch, bottleneck, 3, padding=1)
            ch = bottleneck
        self.context = DAPF(ch, alpha) if alpha is not None else nn.Identity()
        self.decoder = nn.ModuleDict()
        for i, (width, skip, d) in enumerate(zip(widths, reversed(skips[:-1]), MDA_DILATIONS)):
            self.decoder[f"b{i + 1}"] = DecoderStage(ch, skip, width, kernel, second_conv,
                                                     d if alpha is not None else None)
            ch = width
        self.head = nn.Conv2d(ch, num_classes, 1)

    def forward(self, x):
        feats = self.encoder(x)
        y = self.context(self.bottleneck(feats[-1]))
        for stage, skip in zip(self.decoder.values(), reversed(feats[:-1])):
            y = stage(y, skip)
        return upsample_to(self.head(y), x.shape[2:])


def _build(name: str, num_classes: int) -> UShapedNet:
    return UShapedNet(*TABLE_V[name], num_classes=num_classes)


def _card(name: str) -> dict:
    gflops, params, fps, miou = PRINTED[name]
    return dict(family="fassd-backbones", paper="FASSD-Net (Rosas-Arias et al., IEEE T-ITS 2022)",
                reported=(Reported("FASSD-Net Table V", params=params, gflops=gflops, fps=fps,
                                   gpu="GTX 1080 Ti", miou_val=miou),),
                notes="Reconstruction (no official code): widths fitted to Table V, see "
                      "benchbench/zoo/fassd_backbones.py.")


@register_model(**_card("u_mobilenetv2"))
def u_mobilenetv2(*, num_classes: int = 19) -> nn.Module:
    return _build("u_mobilenetv2", num_classes)


@register_model(**_card("fassd_mobile"))
def fassd_mobile(*, num_classes: int = 19) -> nn.Module:
    return _build("fassd_mobile", num_classes)


@register_model(**_card("u_shufflenetv2"))
def u_shufflenetv2(*, num_classes: int = 19) -> nn.Module:
    return _build("u_shufflenetv2", num_classes)


@register_model(**_card("fassd_shuffle"))
def fassd_shuffle(*, num_classes: int = 19) -> nn.Module:
    return _build("fassd_shuffle", num_classes)


@register_model(**_card("u_resnet18"))
def u_resnet18(*, num_classes: int = 19) -> nn.Module:
    return _build("u_resnet18", num_classes)


@register_model(**_card("fassd_resnet"))
def fassd_resnet(*, num_classes: int = 19) -> nn.Module:
    return _build("fassd_resnet", num_classes)
