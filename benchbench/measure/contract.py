"""The output contract of a segmentation model, checked on every cell's first forward (eager,
fp32, the cell's fixed input) before anything is timed: one floating-point tensor of shape
N x num_classes x ceil-or-floor(H/s) x ceil-or-floor(W/s), s the card's ``logits_stride``,
every value finite. A model that returns NaN, the wrong number of classes, a tuple or class
indices would otherwise be timed and reported as a working network."""
from __future__ import annotations

import math

import torch

from ..errors import BenchError


class ContractViolation(BenchError):
    """The model's output is not what its model card declares."""


def check_logits(out, batch: int, num_classes: int, height: int, width: int,
                 stride: int = 1) -> None:
    expected = f"a tensor N x C x H x W = {batch} x {num_classes} x " \
               f"{_side(height, stride)} x {_side(width, stride)}"
    if not isinstance(out, torch.Tensor):
        raise ContractViolation(f"the model returned {_what(out)}, not {expected} of logits")
    if not out.is_floating_point():
        raise ContractViolation(f"the model returned a {out.dtype} tensor (class indices?), "
                                f"not floating-point logits")
    if out.dim() != 4 or out.shape[0] != batch or out.shape[1] != num_classes or \
            not _fits(out.shape[2], height, stride) or not _fits(out.shape[3], width, stride):
        raise ContractViolation(f"the model returned shape {tuple(out.shape)}, expected "
                                f"{expected} (num_classes {num_classes}, logits_stride "
                                f"{stride} on its model card)")
    bad = ~torch.isfinite(out)
    if bad.any():
        raise ContractViolation(f"{float(bad.float().mean()):.1%} of the logits of the first "
                                f"forward (eager fp32) are NaN or infinite")


def _side(size: int, stride: int) -> str:
    lo, hi = size // stride, math.ceil(size / stride)
    return str(lo) if lo == hi else f"{lo} or {hi}"


def _fits(got: int, size: int, stride: int) -> bool:
    return got in (size // stride, math.ceil(size / stride))


def _what(out) -> str:
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)}"
    return f"a {type(out).__name__}"
