"""Layers shared by more than one family. Attribute names follow the official checkpoints
(``conv``/``norm``) so that their state dicts load with a short rename table."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvLayer(nn.Sequential):
    """Conv (no bias, padding k//2) -> BatchNorm -> ReLU. HarDNet's ``ConvLayer``."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False))
        self.add_module("norm", nn.BatchNorm2d(cout))
        self.add_module("relu", nn.ReLU(inplace=True))


def hardblock_link(layer: int, base_ch: int, growth: int, grmul: float) -> tuple[int, int, list[int]]:
    """(out_channels, in_channels, links) of HarDBlock layer ``layer`` (layer 0 = block input).

    Layer j reads j - 2^i for every 2^i dividing j (j-1 first); its width is growth * grmul^v2(j),
    rounded as 2 * floor(floor(x + 1) / 2), exactly as the official ``get_link``.
    """
    if layer == 0:
        return base_ch, 0, []
    out_ch, links, i = float(growth), [], 0
    while 2 ** i <= layer:
        if layer % 2 ** i == 0:
            links.append(layer - 2 ** i)
            if i > 0:
                out_ch *= grmul
        i += 1
    out_ch = int(int(out_ch + 1) / 2) * 2
    in_ch = sum(hardblock_link(k, base_ch, growth, grmul)[0] for k in links)
    return out_ch, in_ch, links


class HarDBlock(nn.Module):
    """Harmonic dense block (HarDNet, ICCV 2019) with keepBase=False: the output concatenates
    the odd layers and the last one, never the input. No residual."""

    def __init__(self, in_ch: int, growth: int, n_layers: int, grmul: float = 1.7, layer=None):
        super().__init__()
        self.links: list[list[int]] = []
        layers, widths = [], [in_ch]
        for j in range(1, n_layers + 1):
            out_ch, cin, links = hardblock_link(j, in_ch, growth, grmul)
            self.links.append(links)
            layers.append(layer(cin, out_ch) if layer else ConvLayer(cin, out_ch))
            widths.append(out_ch)
        self.layers = nn.ModuleList(layers)
        self.out_channels = sum(w for j, w in enumerate(widths) if j == n_layers or j % 2 == 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer, links in zip(self.layers, self.links):
            inputs = [feats[k] for k in links]
            feats.append(layer(torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0]))
        last = len(feats) - 1
        return torch.cat([f for j, f in enumerate(feats) if j == last or j % 2 == 1], 1)


def up_fuse(deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """TransitionUp: bilinear resize (align_corners=True) to the skip, then cat [deep, skip]."""
    up = F.interpolate(deep, size=skip.shape[2:], mode="bilinear", align_corners=True)
    return torch.cat([up, skip], 1)


def upsample_to(logits: torch.Tensor, hw, align_corners: bool = True) -> torch.Tensor:
    return F.interpolate(logits, size=tuple(hw), mode="bilinear", align_corners=align_corners)


class BNPReLU(nn.Module):
    """BatchNorm (eps 1e-3) + per-channel PReLU, as in the official MDA."""

    def __init__(self, ch: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(ch, eps=1e-3)
        self.acti = nn.PReLU(ch)

    def forward(self, x):
        return self.acti(self.bn(x))


class ConvBNPReLU(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, padding, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, 1, padding, dilation=dilation, bias=False)
        self.bn_prelu = BNPReLU(cout)

    def forward(self, x):
        return self.bn_prelu(self.conv(x))


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) -> BN -> ReLU with explicit padding/dilation (ASPP, DAPF branches)."""

    def __init__(self, cin: int, cout: int, kernel=1, padding=0, dilation=1, stride=1, groups=1):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation,
                                          groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))
        self.add_module("relu", nn.ReLU(inplace=True))
