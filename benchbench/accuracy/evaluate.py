"""Evaluate a segmentation forward on a dataset split: preprocessing as the authors' code does it,
one confusion matrix on the device, and (optionally) the predictions exported in the official
result format.

Two protocols, recorded with every result:

* ``eval_at: full`` (default) -- logits bilinearly upsampled to the label's full resolution and
  compared there: the Cityscapes benchmark's own protocol.
* ``eval_at: input`` -- the official FASSD-Net ``validate.py``: the label is nearest-resized (PIL)
  to the input size and compared there.

Multi-scale / flip evaluation sums the softmax probabilities of every scale (and its mirror) at
the comparison size; results say so (``multi_scale``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..zoo._preprocess import Preprocess
from .datasets import Dataset, DatasetError, Sample
from .metrics import ConfusionMatrix

EVAL_AT = ("full", "input")

Predict = Callable[[torch.Tensor], torch.Tensor]   # (N, 3, H, W) float32 -> (N, C, h, w) logits


@dataclass(frozen=True)
class EvalConfig:
    dataset: str = "cityscapes"
    root: str | None = None
    split: str = "val"
    limit: int | None = None
    eval_at: str = "full"
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @property
    def multi_scale(self) -> bool:
        return tuple(self.scales) != (1.0,) or self.flip


@dataclass(frozen=True)
class AccuracyResult:
    miou: float | None               # percent, 0-100, as the papers print it
    iou_per_class: dict              # class name -> percent, None = no ground truth, no prediction
    pixel_acc: float | None          # percent
    n_images: int
    n_pixels: int                    # counted ground-truth pixels
    eval_at: str
    size: tuple[int, int]            # network input H, W
    multi_scale: bool
    protocol: dict
    confusion: list = field(default_factory=list)   # [ground truth][prediction] pixel counts
    nonfinite_images: int = 0        # images whose logits held NaN/inf (fp16 overflow)

    def as_dict(self) -> dict:
        return asdict(self)

    def record_fields(self) -> dict:
        """What a cell's record carries about accuracy."""
        return {"miou": self.miou, "iou_per_class": self.iou_per_class,
                "pixel_acc": self.pixel_acc, "n_images": self.n_images,
                "n_pixels_evaluated": self.n_pixels, "eval_at": self.eval_at,
                "multi_scale": self.multi_scale, "accuracy_protocol": self.protocol,
                "nonfinite_logit_images": self.nonfinite_images}


def preprocess_image(image, size: tuple[int, int], pre: Preprocess) -> torch.Tensor:
    """An RGB PIL image -> (3, H, W) float32, exactly as the model family's own loader."""
    from PIL import Image

    h, w = size
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(image, dtype=np.uint8)
    if pre.channel_order == "BGR":
        arr = arr[:, :, ::-1]
    arr = (arr.astype(np.float64) - np.asarray(pre.mean)) / np.asarray(pre.std)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize with PIL, as ptsemseg's loader does for ``eval_at: input``."""
    from PIL import Image

    h, w = size
    if label.shape == (h, w):
        return label
    return np.array(Image.fromarray(label).resize((w, h), resample=Image.Resampling.NEAREST))


def _scaled(size: tuple[int, int], scale: float, divisor: int) -> tuple[int, int]:
    return tuple(max(divisor, int(round(s * scale / divisor)) * divisor) for s in size)


def _scores(predict: Predict, batch: torch.Tensor, cfg: EvalConfig, size, divisor,
            targets: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Per image: logits (single scale) or summed softmax (multi-scale / flip) at its target
    size, (1, C, H, W) float32."""
    out: list[torch.Tensor | None] = [None] * len(targets)
    views = [(s, False) for s in cfg.scales] + ([(s, True) for s in cfg.scales] if cfg.flip else [])
    for scale, mirrored in views:
        x = batch
        if scale != 1.0:
            x = F.interpolate(x, size=_scaled(size, scale, divisor), mode="bilinear",
                              align_corners=False)
        if mirrored:
            x = x.flip(-1)
        logits = predict(x)
        if mirrored:
            logits = logits.flip(-1)
        for i, target in enumerate(targets):
            one = logits[i:i + 1].float()
            if tuple(one.shape[-2:]) != target:
                one = F.interpolate(one, size=target, mode="bilinear", align_corners=False)
            if cfg.multi_scale:
                one = one.softmax(1)
            out[i] = one if out[i] is None else out[i] + one
    return out


def _argmax(score: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Class per pixel (first maximum, as argmax) and whether any logit was NaN/inf. ``max``
    over channels is several times faster than ``argmax`` on NCHW, and its values show a NaN or
    an inf without another pass over the logits."""
    values, indices = score[0].max(0)
    return indices, not bool(torch.isfinite(values).all())


def evaluate(predict: Predict, dataset: Dataset, size: tuple[int, int], preprocess: Preprocess,
             cfg: EvalConfig, *, batch: int = 1, size_divisor: int = 1,
             device: torch.device | str = "cpu", save_dir: str | Path | None = None,
             on_image: Callable[[int], None] | None = None) -> AccuracyResult:
    """Run ``predict`` over the split (first ``cfg.limit`` images) and score it."""
    space = dataset.label_space
    samples = dataset.samples[: cfg.limit] if cfg.limit else dataset.samples
    confusion = ConfusionMatrix(space.num_classes, device)
    nonfinite = 0
    for start in range(0, len(samples), batch):
        group = samples[start:start + batch]
        labels = [dataset.read_label(s) for s in group]
        images = [dataset.read_image(s) for s in group]
        for sample, image, label in zip(group, images, labels):
            if image.size != (label.shape[1], label.shape[0]):     # cityscapesscripts refuses
                raise DatasetError(f"{sample.label} is {label.shape[1]}x{label.shape[0]} (WxH) "
                                   f"but its image {sample.image} is {image.size[0]}x"
                                   f"{image.size[1]}: a label must have its image's size")
        frames = [preprocess_image(image, size, preprocess) for image in images]
        frames += [frames[-1]] * (batch - len(frames))   # static-batch backends: pad, drop later
        full = [tuple(lbl.shape) for lbl in labels]
        targets = full if cfg.eval_at == "full" else [tuple(size)] * len(group)
        scores = _scores(predict, torch.stack(frames), cfg, size, size_divisor, targets)
        for sample, label, score, full_hw in zip(group, labels, scores, full):
            pred, bad = _argmax(score)
            nonfinite += bad
            target = label if cfg.eval_at == "full" else resize_label(label, size)
            confusion.update(torch.from_numpy(target), pred)
            if save_dir is not None:
                full_pred = pred if cfg.eval_at == "full" else _argmax(F.interpolate(
                    score, size=full_hw, mode="bilinear", align_corners=False))[0]
                save_prediction(save_dir, sample, full_pred, space.train_to_raw)
            if on_image:
                on_image(1)
    return _result(confusion, space.class_names, len(samples), size, cfg, dataset, preprocess,
                   batch, nonfinite)


def _pct(v: float | None) -> float | None:
    return None if v is None else 100.0 * v


def _result(confusion, names, n_images, size, cfg, dataset, preprocess, batch, nonfinite):
    s = confusion.scores()
    protocol = {
        "dataset": dataset.name, "split": dataset.split, "root": str(dataset.root),
        "images_in_split": len(dataset.samples), "limit": cfg.limit, "eval_at": cfg.eval_at,
        "compare_at": ("label's full resolution; logits bilinearly upsampled (align_corners=False)"
                       if cfg.eval_at == "full" else
                       "network input size; labels nearest-resized with PIL (official validate.py)"),
        "input_size": list(size), "preprocess": preprocess.as_dict(),
        "scales": list(cfg.scales), "flip": cfg.flip, "multi_scale": cfg.multi_scale,
        "combine": "sum of softmax over scales/flips" if cfg.multi_scale else "argmax of logits",
        "batch": batch,
        "metric": "IoU = TP/(TP+FP+FN) over one confusion matrix of the split; ignored ground "
                  "truth never counts; classes with no ground truth and no prediction are left "
                  "out of the mean (cityscapesscripts rule)",
    }
    return AccuracyResult(
        miou=_pct(s.miou), iou_per_class={n: _pct(v) for n, v in zip(names, s.iou)},
        pixel_acc=_pct(s.pixel_acc), n_images=n_images, n_pixels=s.n_pixels, eval_at=cfg.eval_at,
        size=tuple(size), multi_scale=cfg.multi_scale, protocol=protocol,
        confusion=confusion.matrix.tolist(), nonfinite_images=nonfinite)


def save_prediction(save_dir, sample: Sample, pred: torch.Tensor, train_to_raw: np.ndarray) -> Path:
    """One PNG per image, at the ground truth's size, holding raw label values: Cityscapes label
    ids (what the test server and cityscapesscripts read), CamVid class indices. Cityscapes files
    are ``DIR/CITY/{city}_{seq}_{frame}_leftImg8bit.png``, found by cityscapesscripts' pattern
    ``{city}_{seq}_{frame}*.png``."""
    from PIL import Image

    out_dir = Path(save_dir) / sample.group if sample.group else Path(save_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{sample.name}.png"
    Image.fromarray(train_to_raw[pred.cpu().numpy()].astype(np.uint8)).save(path)
    return path
