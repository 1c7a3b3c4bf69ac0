"""Deformable convolution against a direct computation, and DESANet against the paper."""
import math

import pytest
import torch

import benchbench as bb
from benchbench.zoo.deform import DeformConv2d, deform_conv2d


def bilinear(img, y, x):
    """img (C, H, W) sampled at real (y, x); taps outside the image count as zero."""
    c, h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    out = torch.zeros(c, dtype=img.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * img[:, yy, xx]
    return out


def reference(x, offset, weight, bias, stride, padding, dilation):
    n, c, h, w = x.shape
    cout, _, kh, kw = weight.shape
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = torch.zeros(n, cout, ho, wo, dtype=x.dtype)
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                acc = bias.clone()
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        y = oy * stride - padding + i * dilation + offset[b, 2 * k, oy, ox].item()
                        xx = ox * stride - padding + j * dilation + offset[b, 2 * k + 1, oy, ox].item()
                        acc += weight[:, :, i, j] @ bilinear(x[b], y, xx)
                out[b, :, oy, ox] = acc
    return out


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_deform_conv_matches_direct_computation(stride, padding, dilation):
    g = torch.Generator().manual_seed(stride * 10 + dilation)
    x = torch.randn(2, 3, 6, 7, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    ho = (6 + 2 * padding - dilation * 2 - 1) // stride + 1
    wo = (7 + 2 * padding - dilation * 2 - 1) // stride + 1
    offset = 1.5 * torch.randn(2, 18, ho, wo, generator=g, dtype=torch.float64)
    got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation)
    want = reference(x, offset, weight, bias, stride, padding, dilation)
    assert torch.allclose(got, want, atol=1e-10)


def test_fresh_deform_conv_is_a_plain_conv():
    torch.manual_seed(0)
    m = DeformConv2d(4, 5, bias=True)
    x = torch.randn(1, 4, 9, 11)
    assert torch.allclose(m(x), torch.nn.functional.conv2d(x, m.weight, m.bias, 1, 1), atol=1e-5)


@pytest.mark.parametrize("name,printed", [("desanet_rn", 15.3e6), ("desanet_hn", 6.2e6)])
def test_desanet_params_within_5_percent(name, printed):
    model = bb.create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count / printed - 1) <= 0.05
    names = [n for n, _ in model.named_modules()]
    assert not any("aux" in n for n in names)          # training-only auxiliary head excluded
    assert any(isinstance(m, DeformConv2d) for m in model.modules())


def test_desanet_hn_context_path_drops_the_last_hardblock():
    from benchbench.zoo.backbones import HarDNet68ds

    assert sum(p.numel() for p in HarDNet68ds().parameters()) == 3_155_602   # official trunk
    model = bb.create_model("desanet_hn")
    assert model.context_path.feature_channels == (128, 320, 640, 640)


def test_deformable_conv_cost_is_counted():
    from benchbench.analysis import analyze

    r = analyze("desanet_rn", (512, 1024))
    assert r.macs_by_op.get("grid_sampler", 0) > 0 and r.macs_by_op.get("matmul", 0) > 0
