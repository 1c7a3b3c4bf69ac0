"""FC-HarDNet-70: "HarDNet: A Low Memory Traffic Network", Chao et al., ICCV 2019 (arXiv 1909.00948).

Official code: PingoLH/FCHarDNet (``ptsemseg/models/hardnet.py``); layer-by-layer description in
``shared/reference/ARCHITECTURES.md`` §3.2. The U-shaped network defined here (``HarDUNet``) is also
the skeleton of FASSD-Net (``fassd.py``), which swaps the fifth stage for DAPF and adds MDA.

The final bilinear upsample to the input size is part of the model (it is part of every timed
forward in the papers) and therefore of the MACs and latency.
"""
from __future__ import annotations

from torch import nn

from ._layers import ConvLayer, HarDBlock, up_fuse, upsample_to
from ._registry import Reported, register_model

# Stem (output stride 4). L1 makes conv1 stride 3; L2 makes conv2 stride 2.
#        cin cout k stride
STEM = ((3, 16, 3, 2),
        (16, 24, 3, 1),
        (24, 32, 3, 2),
        (32, 48, 3, 1))

# Encoder stages of FC-HarDNet-70 (ARCHITECTURES §3.2; FASSD Table I uses the first four).
#               growth k  layers n  transition  avg-pool after
ENCODER_70 = {"b1": (10, 4, 64, True),
              "b2": (16, 4, 96, True),
              "b3": (18, 8, 160, True),
              "b4": (24, 8, 224, True),
              "b5": (32, 8, 320, False)}


class EncoderStage(nn.Module):
    def __init__(self, cin: int, growth: int, n_layers: int, transition: int, pool: bool):
        super().__init__()
        self.hdb = HarDBlock(cin, growth, n_layers)
        self.transition = ConvLayer(self.hdb.out_channels, transition, kernel=1)
        self.pool = nn.AvgPool2d(2, 2) if pool else nn.Identity()
        self.skip_channels = self.hdb.out_channels

    def forward(self, x):
        skip = self.hdb(x)
        return skip, self.pool(self.transition(skip))


class DecoderStage(nn.Module):
    """Up-fuse with the skip, 1x1 ConvLayer to half the concat, optional MDA, then a HarDBlock
    (or, in the L2 variants, a single 3x3 ConvLayer to 64 channels)."""

    def __init__(self, deep_ch: int, skip_ch: int, growth: int, n_layers: int,
                 mda: nn.Module | None = None, conv64: bool = False):
        super().__init__()
        mid = (deep_ch + skip_ch) // 2
        self.up_conv = ConvLayer(deep_ch + skip_ch, mid, kernel=1)
        if mda is not None:
            self.mda = mda(mid)
        self.block = ConvLayer(mid, 64, kernel=3) if conv64 else HarDBlock(mid, growth, n_layers)
        self.out_channels = 64 if conv64 else self.block.out_channels

    def forward(self, deep, skip):
        x = self.up_conv(up_fuse(deep, skip))
        if hasattr(self, "mda"):
            x = self.mda(x)
        return self.block(x)


class HarDUNet(nn.Module):
    """Stem -> HarDBlock encoder -> [context module] -> U-shaped decoder -> 1x1 head -> upsample.

    ``stages`` picks encoder rows; the decoder mirrors all but the deepest one. ``mda`` is a
    callable ``(channels, dilation) -> module`` placed after each decoder up-conv, with the
    dilations ``mda_dilations`` from deep to shallow. ``context`` maps the bottleneck width to a
    module applied at the bottleneck (DAPF, ASPP) or is None.
    """

    def __init__(self, num_classes: int = 19, stages=tuple(ENCODER_70), stem_strides=(2, 1, 2, 1),
                 last_pool: bool | None = None, context=None, mda=None, mda_dilations=(8, 4, 2),
                 conv64_decoder: bool = False):
        super().__init__()
        self.stem = nn.Sequential(*[ConvLayer(cin, cout, k, s) for (cin, cout, k, _), s
                                    in zip(STEM, stem_strides)])
        self.encoder = nn.ModuleDict()
        ch, skips = STEM[-1][1], []
        for i, name in enumerate(stages):
            growth, n, trans, pool = ENCODER_70[name]
            if i == len(stages) - 1 and last_pool is not None:
                pool = last_pool
            stage = EncoderStage(ch, growth, n, trans, pool)
            self.encoder[name] = stage
            skips.append((stage.skip_channels, growth, n))
            ch = trans
        self.context = context(ch) if context is not None else nn.Identity()
        self.decoder = nn.ModuleDict()
        dilations = list(mda_dilations) if mda is not None else []
        for i, (skip_ch, growth, n) in enumerate(reversed(skips[:-1])):
            block_mda = None
            if mda is not None:
                d = dilations[i]
                block_mda = lambda c, d=d: mda(c, d)  # noqa: E731
            stage = DecoderStage(ch, skip_ch, growth, n, block_mda, conv64_decoder)
            self.decoder[f"b{i + 1}"] = stage
            ch = stage.out_channels
        self.head = nn.Conv2d(ch, num_classes, 1, bias=True)

    def forward(self, x):
        hw = x.shape[2:]
        x = self.stem(x)
        skips = []
        for stage in self.encoder.values():
            skip, x = stage(x)
            skips.append(skip)
        x = self.context(x)
        for stage, skip in zip(self.decoder.values(), reversed(skips[:-1])):
            x = stage(x, skip)
        return upsample_to(self.head(x), hw)


_PAPER = "HarDNet: A Low Memory Traffic Network (Chao et al., ICCV 2019)"
_FASSD = "FASSD-Net (Rosas-Arias et al., IEEE T-ITS 2022)"
_L1_L2_NOTE = ("The FASSD paper's L1/L2 recipes applied to FC-HarDNet-70 (no official code; "
               "reconstructed as ARCHITECTURES.md §3.4, matching the paper's params and GFLOPs).")


@register_model(family="hardnet", paper=_PAPER, output_stride=64, official_params=4_119_257,
                reported=(Reported("FASSD-Net Table X", params=4.1e6, gflops=35.4, fps=53.0,
                                   gpu="GTX 1080 Ti", miou_val=77.4, miou_test=76.0),
                          Reported("FASSD-Net Table II", params=4.10e6, gflops=35.4, fps=52.3,
                                   gpu="GTX 1080 Ti", miou_val=76.4)),
                notes="35.4 GFLOPs is the FCHarDNet README value ('GMACs / GFLOPs'); the "
                      "ptflops-2020 convention that reproduces every FASSD figure gives 35.5.")
def fc_hardnet_70(*, num_classes: int = 19) -> nn.Module:
    return HarDUNet(num_classes)


@register_model(family="hardnet", paper=_FASSD, output_stride=96,
                reported=(Reported("FASSD-Net Table X", params=4.1e6, gflops=15.7, fps=93.4,
                                   gpu="GTX 1080 Ti", miou_val=74.8),),
                notes=_L1_L2_NOTE + " Stride-3 first conv: feature sizes round as in the official L1.")
def fc_hardnet_70_l1(*, num_classes: int = 19) -> nn.Module:
    return HarDUNet(num_classes, stem_strides=(3, 1, 2, 1))


@register_model(family="hardnet", paper=_FASSD, output_stride=128,
                reported=(Reported("FASSD-Net Table X", params=2.86e6, gflops=6.6, fps=152.8,
                                   gpu="GTX 1080 Ti", miou_val=72.1),),
                notes=_L1_L2_NOTE)
def fc_hardnet_70_l2(*, num_classes: int = 19) -> nn.Module:
    return HarDUNet(num_classes, stem_strides=(2, 2, 2, 1), conv64_decoder=True)
