"""FarSee-Net: "Real-Time Semantic Segmentation by Efficient Multi-scale Context Aggregation and
Feature Space Super-resolution", Zhang & Zhang, ICRA 2020 (arXiv 2003.03913).

No official code. Built from Sec. III and the Fig. 3 caption (``shared/seeds/farsee-net.txt``):

* front end: ResNet-18 (plain torch, ``backbones.ResNet18``); high-level feature = layer4
  (512 ch, /32, "the last convolution layer before the global average pooling"); low-level
  feature = layer3 (256 ch, /16). The paper names 'conv3_x' (= layer2, /8), but its two sub-pixel
  steps (x2 then x4 to a /4 label map) only line up with a /16 low-level feature, which is also
  what the third-party zh320 reading uses; we follow the arithmetic and say so here.
* F-ASPP: a 1x1 branch plus, per atrous rate, a 1x1 conv (channel reduction) followed by a
  depth-wise 3x3 atrous conv (Sec. III-B). CF-ASPP = two F-ASPPs in cascade, the second narrower:
  F-ASPP1 on layer4 (512 -> 4 x 256, rates 6/12/18), F-ASPP2 on the fused /16 feature
  (-> 3 x 128, rates 6/12).
* feature-space super-resolution (Sec. III-C): a pixel-wise conv to F*t^2 channels then a periodic
  shuffle (``nn.PixelShuffle``); t = 2 after F-ASPP1 (to /16) and t = 4 to N classes at /4, then
  bilinear to the input size (the training target is full resolution).
* every conv is followed by BN + ReLU (Fig. 3 caption), except the last (class logits).

Table I methods: 1 = ResNet-18 + ASPP + DeepLabV3+ decoder; 2 = one F-ASPP + DeepLabV3+ decoder;
3 = CF-ASPP, no SR, no decoder (bilinear instead); 4 = the full method. The DeepLabV3+ decoder
(1x1 -> 48 on the low-level feature, two 3x3 convs of 256) reads the same /16 low-level feature as
the proposed back end, so that the methods differ only in the back end (a stride-4 decoder would
cost ~3x the whole network at 1024x2048, against Table I's similar running times).
"""
from __future__ import annotations

import torch
from torch import nn

from ._layers import ConvBNReLU, upsample_to
from ._registry import Reported, register_model
from .backbones import ResNet18
from .fassd import ASPP


class FASPP(nn.Module):
    """Factorised ASPP: [1x1] + [1x1 -> depth-wise 3x3 atrous (rate r)] per rate, concatenated."""

    def __init__(self, cin: int, width: int, rates):
        super().__init__()
        self.pointwise = ConvBNReLU(cin, width, 1)
        self.branches = nn.ModuleList(nn.Sequential(
            ConvBNReLU(cin, width, 1),
            ConvBNReLU(width, width, 3, padding=r, dilation=r, groups=width)) for r in rates)
        self.out_channels = width * (len(rates) + 1)

    def forward(self, x):
        return torch.cat([self.pointwise(x)] + [b(x) for b in self.branches], 1)


class SubPixelUp(nn.Module):
    """Sub-pixel convolution: 1x1 conv to C*t^2 [+ BN + ReLU], then PixelShuffle(t)."""

    def __init__(self, cin: int, cout: int, t: int, final: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * t * t, 1, bias=final)
        self.post = nn.Identity() if final else nn.Sequential(nn.BatchNorm2d(cout * t * t),
                                                              nn.ReLU(inplace=True))
        self.shuffle = nn.PixelShuffle(t)

    def forward(self, x):
        return self.shuffle(self.post(self.conv(x)))


class DeepLabV3PlusDecoder(nn.Module):
    def __init__(self, cin: int, low_ch: int, num_classes: int):
        super().__init__()
        self.project = ConvBNReLU(cin, 256, 1)
        self.low = ConvBNReLU(low_ch, 48, 1)
        self.refine = nn.Sequential(ConvBNReLU(256 + 48, 256, 3, padding=1),
                                    ConvBNReLU(256, 256, 3, padding=1))
        self.classifier = nn.Conv2d(256, num_classes, 1)

    def forward(self, x, low):
        x = upsample_to(self.project(x), low.shape[2:], align_corners=False)
        return self.classifier(self.refine(torch.cat([x, self.low(low)], 1)))


class FarSeeNet(nn.Module):
    def __init__(self, num_classes: int = 19, method: int = 4):
        super().__init__()
        self.method = method
        self.frontend = ResNet18()
        if method in (1, 2):
            self.context = ASPP(512, 256) if method == 1 else FASPP(512, 256, (6, 12, 18))
            cin = 512 if method == 1 else self.context.out_channels
            self.decoder = DeepLabV3PlusDecoder(cin, 256, num_classes)
            return
        self.faspp1 = FASPP(512, 256, (6, 12, 18))
        if method == 4:
            self.sr1 = SubPixelUp(self.faspp1.out_channels, 512, 2)
            high = 512
        else:
            self.reduce = ConvBNReLU(self.faspp1.out_channels, 512, 1)
            high = 512
        self.low = ConvBNReLU(256, 48, 1)
        self.faspp2 = FASPP(high + 48, 128, (6, 12))
        if method == 4:
            self.sr2 = SubPixelUp(self.faspp2.out_channels, num_classes, 4, final=True)
        else:
            self.classifier = nn.Conv2d(self.faspp2.out_channels, num_classes, 1)

    def forward(self, x):
        hw = x.shape[2:]
        _, _, f16, f32 = self.frontend(x)
        if self.method in (1, 2):
            return upsample_to(self.decoder(self.context(f32), f16), hw, align_corners=False)
        y = self.faspp1(f32)
        if self.method == 4:
            y = self.sr1(y)
        else:
            y = upsample_to(self.reduce(y), f16.shape[2:], align_corners=False)
        y = self.faspp2(torch.cat([y, self.low(f16)], 1))
        y = self.sr2(y) if self.method == 4 else self.classifier(y)
        return upsample_to(y, hw, align_corners=False)


_PAPER = "FarSee-Net (Zhang & Zhang, ICRA 2020)"
_NOTE = "No official code: built from Sec. III / Fig. 3 caption, see benchbench/zoo/farsee.py."


def _t1(method, rows):
    return tuple(Reported(f"FarSee-Net Table I (method {method})", input_hw=hw,
                          fps=round(1000 / ms, 1), gpu="Titan X (Maxwell)", miou_val=miou)
                 for hw, ms, miou in rows)


@register_model(family="farsee", paper=_PAPER, size_divisor=32, notes=_NOTE + " Table I method 1: ASPP + "
                "DeepLabV3+ decoder.", reported=_t1(1, [((1024, 2048), 42.0, 72.01),
                                                       ((768, 1536), 25.4, 70.40),
                                                       ((512, 1024), 15.8, 68.33)]))
def farsee_aspp_decoder(*, num_classes: int = 19) -> nn.Module:
    return FarSeeNet(num_classes, method=1)


@register_model(family="farsee", paper=_PAPER, size_divisor=32, notes=_NOTE + " Table I method 2: one F-ASPP + "
                "DeepLabV3+ decoder.", reported=_t1(2, [((512, 1024), 13.3, 68.61)]))
def farsee_faspp_decoder(*, num_classes: int = 19) -> nn.Module:
    return FarSeeNet(num_classes, method=2)


@register_model(family="farsee", paper=_PAPER, size_divisor=32, notes=_NOTE + " Table I method 3: CF-ASPP without "
                "super-resolution, no decoder.", reported=_t1(3, [((512, 1024), 13.5, 70.05)]))
def farsee_cfaspp_nosr(*, num_classes: int = 19) -> nn.Module:
    return FarSeeNet(num_classes, method=3)


@register_model(family="farsee", paper=_PAPER, size_divisor=32, notes=_NOTE + " Table I method 4: the full method.",
                reported=_t1(4, [((1024, 2048), 46.1, 73.52), ((768, 1536), 26.8, 72.28),
                                 ((512, 1024), 14.6, 70.29), ((512, 768), 11.9, 69.84)]) + (
                    Reported("FarSee-Net Table II", input_hw=(512, 1024), fps=68.5,
                             gpu="Titan X (Maxwell)", miou_test=70.2),
                    Reported("FarSee-Net Table II", input_hw=(512, 768), fps=84.0,
                             gpu="Titan X (Maxwell)", miou_test=68.4)))
def farsee_net(*, num_classes: int = 19) -> nn.Module:
    return FarSeeNet(num_classes, method=4)
