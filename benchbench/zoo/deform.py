"""Deformable convolution (Dai et al., ICCV 2017) in plain PyTorch, via ``grid_sample``.

For every kernel tap k the input is sampled bilinearly at p + p_k + Δp_k (zero outside), the
k*k sampled copies are stacked as channels and contracted with the weight in one matmul.
The offsets Δp come from a 3x3 conv initialised to zero, so a fresh layer equals a plain conv.
Offsets are laid out as torchvision's ``deform_conv2d``: channel 2k is Δy, 2k+1 is Δx.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0,
                  dilation: int = 1) -> torch.Tensor:
    n, c, h, w = (int(v) for v in x.shape)            # ints, also under jit tracing
    cout, _, kh, kw = (int(v) for v in weight.shape)
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    ys = torch.arange(ho, device=x.device, dtype=x.dtype) * stride - padding
    xs = torch.arange(wo, device=x.device, dtype=x.dtype) * stride - padding
    base_y, base_x = torch.meshgrid(ys, xs, indexing="ij")
    off = offset.view(n, kh * kw, 2, ho, wo)
    samples = []
    for k in range(kh * kw):
        i, j = divmod(k, kw)
        py = base_y + i * dilation + off[:, k, 0]
        px = base_x + j * dilation + off[:, k, 1]
        grid = torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)
        samples.append(F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=True))
    cols = torch.stack(samples, dim=2).view(n, c * kh * kw, ho * wo)   # (n, c*k*k, L)
    out = torch.matmul(weight.view(cout, -1), cols).view(n, cout, ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class DeformConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1,
                 dilation: int = 1, bias: bool = False):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.offset = nn.Conv2d(cin, 2 * kernel * kernel, kernel, stride, padding,
                                dilation=dilation)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x):
        return deform_conv2d(x, self.offset(x), self.weight, self.bias, self.stride,
                             self.padding, self.dilation)
