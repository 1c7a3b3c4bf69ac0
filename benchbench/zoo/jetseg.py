"""JetSeg: "JetSeg: Efficient Real-Time Semantic Segmentation Model for Low-Power GPU-Embedded
Systems", Montiel-Pérez et al. (``shared/seeds/jetseg.txt``). Official code: mmontielpz/jetseg;
its rules are restated in ARCHITECTURES.md §4 and reimplemented here from scratch.

The architecture depends on the input size: the feature-map ladder (halve with ceil until the
larger side is <= 16) is split into stages, each ladder entry gets ``r`` residual blocks and one
non-residual block whose widths follow the mode's rule. Build with
``create_model("jetseg_nano", input_size=(H, W))``; the runner does this per resolution.

Deviations from the official code (documented, parameter counts unchanged):
1. Dilation 0 (rejected by current PyTorch): on a unit-kernel axis it is set to 1 (exact); on a
   3-tap axis (combinations C1, C2, C4, C5) the legacy behaviour -- every tap reads the same
   pixel -- is reproduced by summing the three taps into one (``LegacyZeroDilationConv``).
2. Combination tables are never mutated (the official configurator pops keys from globals).
3. Modes M1/M2 fail upstream where the deepest decoder head receives a block's output instead of
   its input (it happens when that ladder entry is <= 16 and the block keeps stride 1). Here each
   head is sized from the feature it actually receives, which equals the official width wherever
   the official model runs, so counts are identical there and every size of the grid works.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Reported, register_model

# mode: input/output base features, stage multiplier, expand factor, max features, max expand,
#       decoder head width D, last features, residual blocks per stage [s0..s3], last fmap
MODES = {
    "workstation": (32, 32, 2, 2, 512, 1024, 512, 512, (0, 2, 4, 2), 16),   # M1
    "agx": (16, 16, 2, 2, 256, 256, 256, 256, (0, 2, 4, 2), 16),             # M2
    "nano": (8, 8, 2, 2, 64, 64, 64, 64, (0, 0, 1, 1), 16),                  # M3
}
INPUT_EXPAND = 2

A, S = "asym", "std"   # a kernel entry: (A, k) = k x 1 then 1 x k; (S, k) = k x k depth-wise
# Kernel combinations (official config/arch_cfg.py), C0 default; heads (stage1, stage2, stage3)
COMBINATIONS = {
    0: {"stage0": [(A, 7), (S, 1), (A, 5), (S, 1), (S, 3)], "stage1_res": [(A, 7), (S, 3)],
        "stage1": [(S, 3), (A, 5), (S, 1), (A, 7), (S, 1)], "stage2_res": [(A, 5), (S, 3)],
        "stage2": [(S, 3), (A, 5)], "stage3_res": [(S, 3)], "stage3": [(S, 1)],
        "heads": (-1, -1, -1)},
    1: {"stage0": [(A, 7)], "stage1_res": [(S, 7)], "stage1": [(S, 3), (A, 5), (A, 7)],
        "stage2_res": [(A, 5)], "stage2": [(A, 3), (S, 5)], "stage3_res": [(A, 3)],
        "stage3": [(S, 1)], "heads": (0, 1, 1)},
    2: {"stage0": [(S, 7)], "stage1_res": [(S, 7)], "stage1": [(A, 3), (S, 5), (S, 7)],
        "stage2_res": [(S, 5)], "stage2": [(A, 3), (S, 5)], "stage3_res": [(S, 3)],
        "stage3": [(S, 1)], "heads": (0, -1, -1)},
    3: {"stage0": [(A, 7)], "stage1_res": [(A, 7)], "stage1": [(S, 3), (A, 5), (A, 7)],
        "stage2_res": [(A, 5)], "stage2": [(S, 3), (A, 5)], "stage3_res": [(S, 3)],
        "stage3": [(S, 1)], "heads": (0, None, -1)},
    4: {"stage0": [(A, 7)], "stage1_res": [(S, 7)], "stage1": [(A, 3), (A, 5), (A, 7)],
        "stage2_res": [(S, 5)], "stage2": [(A, 3), (A, 5)], "stage3_res": [(S, 3)],
        "stage3": [(S, 1)], "heads": (0, -1, -1)},
    5: {"stage0": [(S, 7)], "stage1_res": [(S, 7)], "stage1": [(S, 3), (S, 5), (S, 7)],
        "stage2_res": [(S, 5)], "stage2": [(A, 3), (A, 5)], "stage3_res": [(S, 3)],
        "stage3": [(S, 1)], "heads": (0, 0, -1)},
}


def get_groups(a: int, b: int) -> int:
    """The common divisor of a and b closest to their mean (ties: the smaller)."""
    divisors = [g for g in range(1, a + 1) if a % g == 0 and b % g == 0]
    mean = sum(divisors) / len(divisors)
    return min(divisors, key=lambda g: abs(g - mean))


class REU(nn.Module):
    """Rectified Exponential Unit: x for x > 0, x * exp(x) otherwise. An ordinary module (the
    official one is an autograd Function, opaque to FLOP counters)."""

    flops_per_element = 1   # JetSeg's own counter charges one op per element

    def forward(self, x):
        return torch.where(x <= 0, x * torch.exp(x), x)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class LegacyZeroDilationConv(nn.Module):
    """A depth-wise 3-tap conv that PyTorch < 2 ran with dilation 0 on its long axis: all taps
    read the same pixel, i.e. a per-channel scale by the sum of the taps (deviation 1).
    Hook-based counters charge the declared 3 taps, as they did for the official conv."""

    declared_conv = True

    def __init__(self, ch: int, shape):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ch, 1, *shape))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        return F.conv2d(x, self.weight.sum(dim=(2, 3), keepdim=True), groups=x.shape[1])


def _depthwise_ops(ch: int, entries, residual: bool) -> nn.ModuleDict:
    """JetConv's depth-wise chain; ops with the same official key collapse into one."""
    ops = nn.ModuleDict()
    for kind, k in entries:
        dil = {1: 1, 3: 1, 5: 2, 7: 3}[k]
        lvl = 0 if residual else (1 if k <= 3 else 2 if k == 5 else 3)
        if kind == S:
            ops[f"lvl_{lvl}_ks{k}_standard"] = nn.Conv2d(ch, ch, k, padding=(k - 1) // 2,
                                                         groups=ch, bias=False)
            continue
        pad = dil * (k - 1) // 2
        for side, shape in (("l", (k, 1)), ("r", (1, k))):
            name = f"lvl_{lvl}_ks{k}_asymmetric_side_{side}"
            if k == 3:
                ops[name] = LegacyZeroDilationConv(ch, shape)
            else:
                padding = (pad, 0) if side == "l" else (0, pad)
                dilation = (dil, 1) if side == "l" else (1, dil)
                ops[name] = nn.Conv2d(ch, ch, shape, padding=padding, dilation=dilation,
                                      groups=ch, bias=False)
    return ops


class JetConv(nn.Module):
    """Depth-wise chain (no BN/activation between) then a grouped point-wise conv; adds its
    input when the block is residual."""

    def __init__(self, cin: int, cout: int, entries, residual: bool, stride: int = 1):
        super().__init__()
        self.residual = residual
        self.ops = _depthwise_ops(cin, entries, residual)
        groups = get_groups(cin, cin) if cin == cout else get_groups(cin, cout)
        self.pw = nn.Conv2d(cin, cout, 1, stride=stride, groups=groups, bias=False)

    def forward(self, x):
        y = x
        for op in self.ops.values():
            y = op(y)
        y = self.pw(y)
        return y + x if self.residual else y


class CBAM(nn.Module):
    def __init__(self, ch: int, reduction: int = 8):
        super().__init__()
        self.fc1 = nn.Conv2d(ch, ch // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(ch // reduction, ch, 1, bias=False)
        self.spatial = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x):
        mlp = lambda t: self.fc2(F.relu(self.fc1(t)))  # noqa: E731
        x = x * torch.sigmoid(mlp(F.adaptive_avg_pool2d(x, 1)) + mlp(F.adaptive_max_pool2d(x, 1)))
        s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(s))


class SAM(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, 1, 1, bias=False)

    def forward(self, x):
        a = torch.sigmoid(self.conv(x))
        return x * a * (F.adaptive_avg_pool2d(a, 1) + F.adaptive_max_pool2d(a, 1))


class ECA(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        t = int(abs(math.log2(ch) / 2 + 0.5))
        t = t if t % 2 else t + 1
        self.conv = nn.Conv1d(1, 1, t, padding=(t - 1) // 2, bias=False)

    def forward(self, x):
        y = F.adaptive_avg_pool2d(x, 1).squeeze(-1).transpose(-1, -2)      # (N, 1, C)
        y = torch.sigmoid(self.conv(y)).transpose(-1, -2).unsqueeze(-1)   # (N, C, 1, 1)
        return x * y


ATTENTION = {"cbam": CBAM, "sam": SAM, "eca": ECA}


class JetBlock(nn.Module):
    def __init__(self, cfg: dict, entries, attention: str | None):
        super().__init__()
        self.residual = cfg["residual"]
        cin, exp, cout, stride = cfg["in"], cfg["exp"], cfg["out"], cfg["stride"]
        if cfg["index"] == 0:   # stem: JetConv with a stride-2 point-wise conv, BN, REU
            self.ops = nn.ModuleList([JetConv(cin, cout, entries, self.residual, stride=2),
                                      nn.BatchNorm2d(cout), REU()])
            return
        g = get_groups(cin, exp)
        self.ops = nn.ModuleList([
            nn.Conv2d(cin, exp, 1, stride=stride, groups=g, bias=False),
            nn.BatchNorm2d(exp), REU(), ChannelShuffle(g),
            JetConv(exp, exp, entries, self.residual),
            ATTENTION[attention](exp) if attention else nn.Identity(), REU(),
            nn.Conv2d(exp, cout, 1, groups=get_groups(exp, cout), bias=False)])

    def forward(self, x):
        for op in self.ops:   # official quirk: a residual block adds a skip around every op
            x = op(x) + x if self.residual else op(x)
        return x


def fmap_ladder(h: int, w: int, last: int = 16) -> list[tuple[int, int]]:
    fmap, ladder = [w, h], []
    top = max(fmap)
    while top > last:
        top, low = max(fmap), min(fmap)
        ladder.append((top, low))
        fmap = [math.ceil(v / 2) for v in fmap]
    return ladder


def _thirds(seq):
    t = len(seq) // 3
    if t == 0:
        raise ValueError(f"input too small for JetSeg: the feature-map ladder {seq} cannot be "
                         "split into three parts")
    return seq[:t], seq[t:2 * t], seq[2 * t:]


def encoder_config(h: int, w: int, mode: str) -> tuple[list[dict], tuple]:
    """The official configurator's block list: one dict per block (ladder entry, stage,
    residual, in/exp/out channels, stride)."""
    ibf, obf, sf, ef, max_f, max_e, _, _, residuals, last = MODES[mode]
    ladder = [e[0] for e in fmap_ladder(h, w, last)]
    p1, p2, p3 = _thirds(ladder)
    stages = {0: p1[:1], 1: p1[1:], 2: p2, 3: p3}
    blocks, cin = [], 3
    for stage, entries in stages.items():
        for entry in entries:
            for _ in range(residuals[stage]):
                blocks.append({"entry": entry, "stage": stage, "residual": True, "in": cin,
                               "exp": cin, "out": cin, "stride": 1})
            if stage == 0:
                out, exp = ibf, ibf * INPUT_EXPAND
            elif stage == 1:
                out, exp = cin + obf, cin * ef
            elif stage == 2:
                out, exp = cin + obf * sf, cin * ef
            else:
                out, exp = cin * sf, cin * ef
            out, exp = min(out, max_f), min(exp, max_e)
            blocks.append({"entry": entry, "stage": stage, "residual": False, "in": cin,
                           "exp": exp, "out": out, "stride": 2 if entry > last else 1})
            cin = out
    for i, b in enumerate(blocks):
        b["index"] = i
    return blocks, (p1, p2, p3)


def _entries(comb: dict, stage: int, residual: bool):
    if stage == 0:
        return comb["stage0"]
    return comb[f"stage{stage}_res" if residual else f"stage{stage}"]


class JetSeg(nn.Module):
    def __init__(self, mode: str = "nano", input_size=(512, 1024), num_classes: int = 19,
                 combination: int = 0):
        super().__init__()
        h, w = input_size
        comb = COMBINATIONS[combination]
        self.blocks_cfg, (cbam_w, sam_w, eca_w) = encoder_config(h, w, mode)
        d, last_f = MODES[mode][6], MODES[mode][7]
        self.encoder = nn.ModuleList()
        for b in self.blocks_cfg:
            attention = "cbam" if b["entry"] in cbam_w else "sam" if b["entry"] in sam_w else "eca"
            self.encoder.append(JetBlock(b, _entries(comb, b["stage"], b["residual"]),
                                         attention))
        i1, i2, i3 = comb["heads"]
        first = (cbam_w[1:] if len(cbam_w) > 1 else cbam_w)[i1]
        middle = sam_w[len(sam_w) // 2 if i2 is None else i2]
        self.head_entries = [eca_w[i3], middle, first]          # deep -> shallow
        self.feature_channels = self._tapped_channels()
        self.heads = nn.ModuleList(_cba(c, d) for c in self.feature_channels)
        self.conv = _cba(d, d)
        self.last_conv = _cba(2 * d, last_f)
        self.classifier = nn.Conv2d(last_f, num_classes, 1)

    def _tapped_channels(self) -> list[int]:
        """Channels of the last encoder output at each head's size (deviation 3)."""
        channels = {}
        for b in self.blocks_cfg:
            out_size = b["entry"] if b["residual"] or b["stride"] == 1 else math.ceil(b["entry"] / 2)
            if out_size in self.head_entries:
                channels[out_size] = b["out"]
        missing = [e for e in self.head_entries if e not in channels]
        if missing:
            raise ValueError(f"JetSeg cannot be built for this input size: no encoder output is "
                             f"{missing[0]} px on its long side for a decoder head (the official "
                             f"code fails here too); use a larger input")
        return [channels[e] for e in self.head_entries]

    def forward(self, x):
        hw = x.shape[2:]
        taps = {}
        for block in self.encoder:
            x = block(x)
            side = int(max(x.shape[-2:]))          # an int also under jit tracing
            if side in self.head_entries:
                taps[side] = x
        feats = [taps[e] for e in self.head_entries]
        heads = [head(f) for head, f in zip(self.heads, feats)]
        # official quirk: only the two shallowest heads are fused; the deepest is computed and
        # unused (its cost is real and counted)
        y = heads[2] + F.interpolate(heads[1], size=heads[2].shape[2:], mode="bilinear",
                                     align_corners=False)
        y = self.conv(y)
        y = self.last_conv(torch.cat([y, heads[2]], 1))
        return F.interpolate(self.classifier(y), size=hw, mode="bilinear", align_corners=False)


def _cba(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), REU())


_PAPER = "JetSeg (Montiel-Pérez et al., 2023)"
_NOTE = ("Architecture depends on input_size (built per resolution). Deviations from the "
         "official code: see benchbench/zoo/jetseg.py.")
_NO_FIGURES = (" The paper prints no figures for this mode: its 3e4 params / 1.125 GFLOPs match "
               "M3 (jetseg_nano).")


_COMBINATIONS = {"combination": tuple(range(6))}      # Table 1: C0-C5


@register_model(family="jetseg", paper=_PAPER, builds_per_size=True, size_divisor=8,
                output_stride=16, arg_choices=_COMBINATIONS, notes=_NOTE, reported=(
    Reported("JetSeg Table 1 (workstation GPU, not named; the conclusion says 148 FPS on a Titan "
             "RTX)", input_hw=(512, 512), params=3e4, gflops=1.125, fps=158, dataset="camvid"),
    Reported("JetSeg Sec. 4 (Jetson AGX Xavier; 39.1 FPS in the conclusion)", input_hw=(512, 512),
             params=3e4, gflops=1.125, fps=39.9, gpu="Jetson AGX Xavier", dataset="camvid")))
def jetseg_nano(*, num_classes: int = 19, input_size=(512, 1024), combination: int = 0):
    """Mode M3 ("Nano"), the official default."""
    return JetSeg("nano", tuple(input_size), num_classes, combination)


@register_model(family="jetseg", paper=_PAPER, builds_per_size=True, size_divisor=8,
                output_stride=16, arg_choices=_COMBINATIONS, notes=_NOTE + _NO_FIGURES)
def jetseg_agx(*, num_classes: int = 19, input_size=(512, 1024), combination: int = 0):
    """Mode M2 ("AGX Xavier")."""
    return JetSeg("agx", tuple(input_size), num_classes, combination)


@register_model(family="jetseg", paper=_PAPER, builds_per_size=True, size_divisor=8,
                output_stride=16, arg_choices=_COMBINATIONS, notes=_NOTE + _NO_FIGURES)
def jetseg_workstation(*, num_classes: int = 19, input_size=(512, 1024), combination: int = 0):
    """Mode M1 ("workstation")."""
    return JetSeg("workstation", tuple(input_size), num_classes, combination)
