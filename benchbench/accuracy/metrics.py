"""One confusion matrix over the whole split, accumulated on the device; IoU per class =
TP / (TP + FP + FN); pixels whose ground truth is ignored never count; a class with no ground
truth and no prediction is left out of the mean. This is cityscapesscripts'
``evalPixelLevelSemanticLabeling`` rule (and ptsemseg's ``runningScore``), summed in the same
class order so the mean is the same float."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .datasets import IGNORE


@dataclass(frozen=True)
class Scores:
    iou: tuple[float | None, ...]    # fraction per class; None = no ground truth, no prediction
    miou: float | None               # fraction
    pixel_acc: float | None          # fraction of counted pixels predicted right
    n_pixels: int                    # counted (not ignored) ground-truth pixels


class ConfusionMatrix:
    def __init__(self, num_classes: int, device: torch.device | str = "cpu"):
        self.num_classes = num_classes
        self.counts = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)

    def update(self, target: torch.Tensor, pred: torch.Tensor) -> None:
        """``target``: train ids with IGNORE; ``pred``: class indices of the same shape."""
        if target.shape != pred.shape:
            raise ValueError(f"target {tuple(target.shape)} and prediction {tuple(pred.shape)} differ")
        n = self.num_classes
        # No boolean mask: ignored pixels (target IGNORE) land in bins past n*n and are dropped.
        index = target.to(self.counts.device, torch.int32) * n + pred.to(self.counts.device,
                                                                          torch.int32)
        counts = torch.bincount(index.flatten(), minlength=(IGNORE + 1) * n)
        self.counts += counts[: n * n]

    @property
    def matrix(self) -> np.ndarray:
        """[ground truth, prediction] pixel counts."""
        return self.counts.cpu().numpy().reshape(self.num_classes, self.num_classes)

    def scores(self) -> Scores:
        return scores_from_matrix(self.matrix)


def scores_from_matrix(matrix: np.ndarray) -> Scores:
    matrix = np.asarray(matrix, dtype=np.int64)
    iou = []
    for c in range(matrix.shape[0]):
        tp = int(matrix[c, c])
        fn = int(matrix[c, :].sum()) - tp
        fp = int(matrix[:, c].sum()) - tp
        denom = tp + fp + fn
        iou.append(float(tp) / denom if denom else None)
    valid = [v for v in iou if v is not None]
    total = 0.0
    for v in valid:              # same order and accumulation as cityscapesscripts
        total += v
    n_pixels = int(matrix.sum())
    return Scores(tuple(iou), total / len(valid) if valid else None,
                  float(np.trace(matrix)) / n_pixels if n_pixels else None, n_pixels)
