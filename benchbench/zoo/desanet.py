"""DESANet: "Real-Time Semantic Segmentation with Dual Encoder and Self-Attention Mechanism for
Autonomous Driving", Hsu et al., Sensors 2021 (``shared/seeds/desanet.txt``). No public code.

Sec. 3, as built here (widths the paper does not give are in ``WIDTHS`` and were chosen so the
totals land within 5% of the paper's 15.3M (-RN) and 6.2M (-HN) parameters):

* spatial path: Conv-BN-ReLU 7x7 s2 (3->64), 3x3 s2 (64->64), 3x3 s2 (64->128), a deformable
  3x3 conv (128->128, + BN + ReLU), scSE;
* context path: ResNet-18, or HarDNet-68ds without its last HarDBlock; its /16 and /32 features
  each go through the refinement module (BiSeNet's ARM with strip pooling in place of global
  average pooling) and scSE; FASPPM sits on the /32 feature before its refinement;
* FASPPM (Fig. 4): a 1x1 branch and three factorised atrous branches (3x1 then 1x3, rates
  6/12/18), concatenated, 1x1 back to the input width, multiplied by a strip-pooling attention
  map, plus the input (residual);
* one skip: [context /8, spatial /8] concatenated, then three atrous 3x3 convs (rates 1, 3, 6);
* decoder: the /32 and /16 context features fused and upsampled to /8, concatenated with the skip,
  a 3x3 conv and the 1x1 classifier, then bilinear x8. The auxiliary head exists only for
  training (Sec. 3.4) and is not part of this inference model.

Strip pooling (Hou et al., CVPR 2020) reduces channels by 4 inside, as in its paper.
"""
from __future__ import annotations

import torch
from torch import nn

from ._layers import ConvBNReLU, upsample_to
from ._registry import Reported, register_model
from .backbones import HarDNet68ds, ResNet18
from .deform import DeformConv2d

# name: context width (refinement / decoder), FASPPM branch width, skip width
WIDTHS = {"desanet_rn": (160, 160, 128), "desanet_hn": (160, 96, 128)}


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze & excitation (Roy et al., 2018): x*cSE + x*sSE."""

    def __init__(self, ch: int, reduction: int = 2):
        super().__init__()
        self.cse = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, ch // reduction, 1),
                                 nn.ReLU(inplace=True), nn.Conv2d(ch // reduction, ch, 1),
                                 nn.Sigmoid())
        self.sse = nn.Sequential(nn.Conv2d(ch, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.cse(x) + x * self.sse(x)


class StripPooling(nn.Module):
    """Attention map from strip pooling: H- and W-strips, 3x1 / 1x3 convs, expand, fuse, 1x1,
    sigmoid (DESANet eq. 1)."""

    def __init__(self, ch: int, reduction: int = 4):
        super().__init__()
        mid = ch // reduction
        self.reduce = ConvBNReLU(ch, mid, 1)
        self.conv_h = nn.Sequential(nn.Conv2d(mid, mid, (3, 1), padding=(1, 0), bias=False),
                                    nn.BatchNorm2d(mid))
        self.conv_w = nn.Sequential(nn.Conv2d(mid, mid, (1, 3), padding=(0, 1), bias=False),
                                    nn.BatchNorm2d(mid))
        self.fuse = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(mid, ch, 1), nn.Sigmoid())

    def forward(self, x):
        y = self.reduce(x)
        h = self.conv_h(y.mean(dim=3, keepdim=True))        # (N, C, H, 1)
        w = self.conv_w(y.mean(dim=2, keepdim=True))        # (N, C, 1, W)
        return self.fuse(h.expand_as(y) + w.expand_as(y))


class RefinementModule(nn.Module):
    """BiSeNet's ARM with strip pooling instead of global average pooling (Sec. 3.2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout, 3, padding=1)
        self.attention = StripPooling(cout)

    def forward(self, x):
        x = self.conv(x)
        return x * self.attention(x)


class FASPPM(nn.Module):
    def __init__(self, ch: int, width: int, rates=(6, 12, 18)):
        super().__init__()
        self.pointwise = ConvBNReLU(ch, width, 1)
        self.branches = nn.ModuleList(nn.Sequential(
            ConvBNReLU(ch, width, (3, 1), padding=(r, 0), dilation=(r, 1)),
            ConvBNReLU(width, width, (1, 3), padding=(0, r), dilation=(1, r))) for r in rates)
        self.project = ConvBNReLU(width * (len(rates) + 1), ch, 1)
        self.strip = StripPooling(ch)

    def forward(self, x):
        y = self.project(torch.cat([self.pointwise(x)] + [b(x) for b in self.branches], 1))
        return y * self.strip(x) + x


class SpatialPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvBNReLU(3, 64, 7, padding=3, stride=2)
        self.conv2 = ConvBNReLU(64, 64, 3, padding=1, stride=2)
        self.conv3 = ConvBNReLU(64, 128, 3, padding=1, stride=2)
        self.deform = DeformConv2d(128, 128)
        self.bn = nn.BatchNorm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.scse = SCSE(128)

    def forward(self, x):
        x = self.conv3(self.conv2(self.conv1(x)))
        return self.scse(self.relu(self.bn(self.deform(x))))


class DESANet(nn.Module):
    def __init__(self, backbone: str, num_classes: int = 19):
        super().__init__()
        ctx_w, aspp_w, skip_w = WIDTHS[f"desanet_{backbone}"]
        self.context_path = ResNet18() if backbone == "rn" else HarDNet68ds(stages=4)
        _, c8, c16, c32 = self.context_path.feature_channels
        self.spatial_path = SpatialPath()
        self.fasppm = FASPPM(c32, aspp_w)
        self.refine32 = RefinementModule(c32, ctx_w)
        self.refine16 = RefinementModule(c16, ctx_w)
        self.scse32, self.scse16 = SCSE(ctx_w), SCSE(ctx_w)
        self.skip = nn.Sequential(ConvBNReLU(c8 + 128, skip_w, 3, padding=1, dilation=1),
                                  ConvBNReLU(skip_w, skip_w, 3, padding=3, dilation=3),
                                  ConvBNReLU(skip_w, skip_w, 3, padding=6, dilation=6))
        self.decoder = ConvBNReLU(ctx_w + skip_w, ctx_w, 3, padding=1)
        self.classifier = nn.Conv2d(ctx_w, num_classes, 1)

    def forward(self, x):
        hw = x.shape[2:]
        _, f8, f16, f32 = self.context_path(x)
        spatial = self.spatial_path(x)
        c32 = self.scse32(self.refine32(self.fasppm(f32)))
        c16 = self.scse16(self.refine16(f16)) + upsample_to(c32, f16.shape[2:])
        skip = self.skip(torch.cat([f8, spatial], 1))
        y = self.decoder(torch.cat([upsample_to(c16, skip.shape[2:]), skip], 1))
        return upsample_to(self.classifier(y), hw)


_PAPER = "DESANet (Hsu et al., Sensors 2021)"


@register_model(family="desanet", paper=_PAPER, reported=(
    Reported("DESANet Table 1", params=15.3e6, fps=58.3, gpu="GTX 1080 Ti", tensorrt=True,
             miou_test=77.7),), notes="No public code; widths fitted, see zoo/desanet.py.")
def desanet_rn(*, num_classes: int = 19) -> nn.Module:
    return DESANet("rn", num_classes)


@register_model(family="desanet", paper=_PAPER, reported=(
    Reported("DESANet Table 1", params=6.2e6, fps=39.4, gpu="GTX 1080 Ti", tensorrt=True,
             miou_test=78.6),), notes="No public code; widths fitted, see zoo/desanet.py.")
def desanet_hn(*, num_classes: int = 19) -> nn.Module:
    return DESANet("hn", num_classes)
