"""Small generated datasets in the official layouts, and a model whose predictions are known.

Images are blocks of flat colour, one colour per class; the ``color_oracle`` model is a single
1x1 convolution whose weights (written to a checkpoint by ``oracle_checkpoint``) score each pixel
by its distance to every class colour, so its predictions are exact wherever the colour is.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from benchbench.zoo import register_model
from benchbench.zoo._preprocess import IMAGENET_RGB

# 19 well-separated RGB colours, one per Cityscapes train id (CamVid uses the first 11)
PALETTE = np.array([[(i * 97) % 256, (i * 53 + 40) % 256, (i * 181 + 90) % 256]
                    for i in range(19)], dtype=np.uint8)
CS_TRAIN_TO_ID = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
BLOCK = 32


def block_layout(h, w, seed, n_classes, ignore_value):
    """Train ids per 32x32 block (some blocks ignored)."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, n_classes, size=(h // BLOCK, w // BLOCK))
    grid[0, 0] = -1                                     # one ignored block per image
    train = np.kron(grid, np.ones((BLOCK, BLOCK), dtype=np.int64))
    return train


def _image(train):
    img = PALETTE[np.clip(train, 0, None) % len(PALETTE)]
    img[train < 0] = (0, 0, 0)
    return Image.fromarray(img.astype(np.uint8))


def make_cityscapes(root, split="val", cities=("aachen", "bremen"), per_city=2, size=(128, 256)):
    h, w = size
    n = 0
    for city in cities:
        (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
        (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
        for k in range(per_city):
            stem = f"{city}_{k:06d}_{19 + k:06d}"
            train = block_layout(h, w, seed=n, n_classes=19, ignore_value=0)
            ids = np.where(train >= 0, np.array(CS_TRAIN_TO_ID)[np.clip(train, 0, None)], 0)
            _image(train).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            Image.fromarray(ids.astype(np.uint8)).save(
                root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
            n += 1
    return root


def make_camvid(root, split="val", n=3, size=(96, 128)):
    h, w = size
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
    for k in range(n):
        train = block_layout(h, w, seed=100 + k, n_classes=11, ignore_value=11)
        annot = np.where(train >= 0, train, 11)
        _image(train).save(root / split / f"0001TP_{k:06d}.png")
        Image.fromarray(annot.astype(np.uint8)).save(root / f"{split}annot" / f"0001TP_{k:06d}.png")
    return root


class ColorOracle(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.head = nn.Conv2d(3, num_classes, 1)

    def forward(self, x):
        return self.head(x)


@register_model(family="test", paper="benchbench test model", size_divisor=16, output_stride=1)
def color_oracle(*, num_classes: int = 19) -> nn.Module:
    return ColorOracle(num_classes)


def oracle_checkpoint(path, num_classes=19):
    """logit_k = 2 x.p_k - |p_k|^2 = |x|^2 - |x - p_k|^2: argmax = the nearest class colour."""
    mean = np.array(IMAGENET_RGB.mean)
    std = np.array(IMAGENET_RGB.std)
    protos = torch.tensor((PALETTE[:num_classes] - mean) / std, dtype=torch.float32)
    state = {"head.weight": (2 * protos)[:, :, None, None],
             "head.bias": -(protos ** 2).sum(1)}
    torch.save({"model_state": state}, path)
    return path


class Flaky(nn.Module):
    """A real model whose forward fails while $BENCH_TEST_FAIL is set (as an unsupported op
    would), so failed cells and --retry-failed are exercised without touching the harness."""

    def __init__(self, num_classes):
        super().__init__()
        self.head = nn.Conv2d(3, num_classes, 1)

    def forward(self, x):
        import os
        if os.environ.get("BENCH_TEST_FAIL"):
            raise RuntimeError("flaky_net: unsupported operator (BENCH_TEST_FAIL is set)")
        return self.head(x)


@register_model(family="test", paper="benchbench test model", size_divisor=16, output_stride=1)
def flaky_net(*, num_classes: int = 19) -> nn.Module:
    return Flaky(num_classes)


class TinySeg(nn.Module):
    """Conv - BN - ReLU at stride 2, a 1x1 classifier, bilinear back to the input size: the
    shape of a segmentation net, small enough to compile and export in seconds."""

    def __init__(self, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8),
                                  nn.ReLU(inplace=True), nn.Conv2d(8, num_classes, 1))

    def forward(self, x):
        return nn.functional.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear",
                                         align_corners=False)


@register_model(family="test", paper="benchbench test model", size_divisor=16, output_stride=1)
def tiny_seg(*, num_classes: int = 19) -> nn.Module:
    torch.manual_seed(0)
    return TinySeg(num_classes)


class DataDependent(TinySeg):
    """Control flow on a tensor's value: torch.export (the dynamo ONNX exporter) refuses it,
    the TorchScript exporter traces the branch taken."""

    def forward(self, x):
        y = super().forward(x)
        if y.sum() > 0:
            return y
        return -y


@register_model(family="test", paper="benchbench test model", size_divisor=16, output_stride=1)
def data_dependent_seg(*, num_classes: int = 19) -> nn.Module:
    torch.manual_seed(0)
    return DataDependent(num_classes)


class Restless(TinySeg):
    """Reads a Python counter that changes every call: Dynamo guards on it and compiles again
    inside the timed loop, which the compile backend must notice."""

    def __init__(self, num_classes):
        super().__init__(num_classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x) * (1 + (self.calls % 5 == 0))


@register_model(family="test", paper="benchbench test model", size_divisor=16, output_stride=1)
def restless_seg(*, num_classes: int = 19) -> nn.Module:
    torch.manual_seed(0)
    return Restless(num_classes)
