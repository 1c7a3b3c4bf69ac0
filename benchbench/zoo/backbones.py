"""ImageNet backbones in plain PyTorch (no torchvision here), as feature pyramids.

Each backbone returns its feature maps at output strides 4, 8, 16 and 32 and declares their
widths in ``feature_channels`` (timm's ``feature_info`` habit). Layer names follow torchvision,
so torchvision ImageNet weights map onto them by name.

* ResNet-18 -- He et al., CVPR 2016, Table 1 (18-layer column).
* MobileNetV2 -- Sandler et al., CVPR 2018, Table 2 (t, c, n, s rows).
* ShuffleNetV2 1.0x -- Ma et al., ECCV 2018, Table 5.
"""
from __future__ import annotations

import torch
from torch import nn

# ResNet-18 (Table 1): stage -> (channels, blocks, first stride)
RESNET18 = {"layer1": (64, 2, 1), "layer2": (128, 2, 2), "layer3": (256, 2, 2),
            "layer4": (512, 2, 2)}


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    feature_channels = (64, 128, 256, 512)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for name, (cout, blocks, stride) in RESNET18.items():
            self.add_module(name, nn.Sequential(*[BasicBlock(cin if i == 0 else cout, cout,
                                                             stride if i == 0 else 1)
                                                  for i in range(blocks)]))
            cin = cout

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for name in RESNET18:
            x = getattr(self, name)(x)
            feats.append(x)
        return feats


# MobileNetV2 (Table 2): expansion t, output channels c, repeats n, first stride s
MOBILENETV2 = [
    # t,   c,  n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


def _conv_bn_relu6(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class MobileNetV2(nn.Module):
    """Features at strides 4/8/16/32 are taken after the last block of each resolution
    (24, 32, 96, 320 channels); the 1280-channel classifier conv is not part of the trunk."""

    feature_channels = (24, 32, 96, 320)

    def __init__(self):
        super().__init__()
        layers, cin = [_conv_bn_relu6(3, 32, 3, 2)], 32
        for t, c, n, s in MOBILENETV2:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*layers)
        # indices of the last block at each output stride: 24@/4, 32@/8, 96@/16, 320@/32
        self.taps = [3, 6, 13, 17]

    def forward(self, x):
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return feats


# ShuffleNetV2 1.0x (Table 5): stage -> (output channels, repeats); conv1 24 ch
SHUFFLENETV2_1X = {"stage2": (116, 4), "stage3": (232, 8), "stage4": (464, 4)}


def channel_shuffle(x, groups: int):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, branch, 1, bias=False), nn.BatchNorm2d(branch),
                nn.ReLU(inplace=True))
        b2_in = cin if stride > 1 else branch
        self.branch2 = nn.Sequential(
            nn.Conv2d(b2_in, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch2(b)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """conv1 + maxpool give the stride-4 feature (24 ch); stages 2-4 give /8, /16, /32. The
    1024-channel conv5 belongs to the classifier and is not part of the trunk."""

    feature_channels = (24, 116, 232, 464)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 24
        for name, (cout, repeats) in SHUFFLENETV2_1X.items():
            self.add_module(name, nn.Sequential(*[ShuffleUnit(cin if i == 0 else cout, cout,
                                                              2 if i == 0 else 1)
                                                  for i in range(repeats)]))
            cin = cout

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        feats = [x]
        for name in SHUFFLENETV2_1X:
            x = getattr(self, name)(x)
            feats.append(x)
        return feats


BACKBONES = {"resnet18": ResNet18, "mobilenetv2": MobileNetV2, "shufflenetv2": ShuffleNetV2}

# HarDNet-68ds (Chao et al., ICCV 2019; official PingoLH/Pytorch-HarDNet, depth_wise=True).
#                 growth k  layers n  transition  depth-wise s2 downsample after
HARDNET68DS = ((14, 8, 128, True),
               (16, 16, 256, False),
               (20, 16, 320, True),
               (40, 16, 640, True),
               (160, 4, 1024, False))


def _conv_relu6(cin, cout, k=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


def _dw_bn(ch, stride=1):
    return nn.Sequential(nn.Conv2d(ch, ch, 3, stride, 1, groups=ch, bias=False),
                         nn.BatchNorm2d(ch))


def _comb_layer(cin, cout):
    """HarDNet 'CombConvLayer': 1x1 Conv-BN-ReLU6 then depth-wise 3x3 + BN (no activation)."""
    return nn.Sequential(_conv_relu6(cin, cout, 1), _dw_bn(cout))


class HarDNet68ds(nn.Module):
    """Trunk only (no ImageNet head): 3,155,602 params with all five stages. ``stages`` < 5
    drops the last HarDBlocks and their transitions (DESANet-HN uses 4). Features at strides
    4/8/16/32 are the transitions' outputs at each resolution, before the downsample."""

    def __init__(self, stages: int = 5):
        super().__init__()
        from ._layers import HarDBlock

        self.stem = nn.Sequential(_conv_relu6(3, 32, 3, 2), _conv_relu6(32, 64, 1), _dw_bn(64, 2))
        blocks, ch = [], 64
        for growth, n, trans, down in HARDNET68DS[:stages]:
            hdb = HarDBlock(ch, growth, n, 1.7, layer=_comb_layer)
            blocks.append(nn.Sequential(hdb, _conv_relu6(hdb.out_channels, trans, 1)))
            blocks.append(_dw_bn(trans, 2) if down else nn.Identity())
            ch = trans
        self.blocks = nn.Sequential(*blocks)
        self.feature_channels = (128, 320, 640, ch)

    def forward(self, x):
        """The last tensor at each stride: 128@/4, 320@/8, 640@/16, and 1024@/32 (or, with the
        last HarDBlock removed, the downsampled 640@/32)."""
        x = self.stem(x)
        feats = []
        for i in range(0, len(self.blocks), 2):
            y = self.blocks[i](x)
            x = self.blocks[i + 1](y)
            if not isinstance(self.blocks[i + 1], nn.Identity):
                feats.append(y)
        feats.append(x)
        return feats[-4:]
