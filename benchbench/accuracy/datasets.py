"""Real dataset layouts, read as their official tools read them.

* Cityscapes: ``ROOT/leftImg8bit/SPLIT/CITY/*_leftImg8bit.png`` with
  ``ROOT/gtFine/SPLIT/CITY/*_gtFine_labelIds.png``; ROOT defaults to ``$CITYSCAPES_DATASET`` as in
  cityscapesscripts. Label id -> train id, class names and the ignore rule come from
  ``cityscapesscripts.helpers.labels``.
* CamVid, SegNet layout: ``ROOT/SPLIT/*.png`` with ``ROOT/SPLITannot/*.png``; 11 classes, value 11
  (void) ignored.

Every problem with the data is a ``DatasetError`` naming the path (exit code 2 at the CLI).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import UsageError

IGNORE = 255          # train id of every pixel that never counts


class DatasetError(UsageError):
    """A dataset root, split, image or label is missing or invalid."""


@dataclass(frozen=True)
class Sample:
    image: Path
    label: Path
    name: str                        # the image's file name without extension
    group: str = ""                  # Cityscapes city


@dataclass(frozen=True)
class LabelSpace:
    """How a dataset's label file values map to the evaluated classes."""

    dataset: str
    class_names: tuple[str, ...]
    lut: np.ndarray                  # raw label value (0-255) -> train id, or IGNORE; -1 = invalid
    train_to_raw: np.ndarray         # train id -> raw value written to exported predictions
    valid_raw: str                   # for error messages

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def encode(self, raw: np.ndarray, path: Path) -> np.ndarray:
        mapped = self.lut[raw]
        if (mapped < 0).any():
            bad = sorted(int(v) for v in np.unique(raw[mapped < 0]))
            shown = ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
            raise DatasetError(f"{path}: label values {shown} are not {self.dataset} label ids "
                               f"({self.valid_raw})")
        return mapped.astype(np.uint8)


def cityscapes_label_space() -> LabelSpace:
    from cityscapesscripts.helpers.labels import labels

    lut = np.full(256, -1, dtype=np.int16)
    train = {}
    for label in labels:
        if label.id < 0:         # license plate: not a value of labelIds images
            continue
        ignored = label.ignoreInEval or label.trainId in (255, -1)
        lut[label.id] = IGNORE if ignored else label.trainId
        if not ignored:
            train.setdefault(label.trainId, label)
    names = tuple(train[t].name for t in sorted(train))
    to_raw = np.array([train[t].id for t in sorted(train)], dtype=np.uint8)
    max_id = max(label.id for label in labels)
    return LabelSpace("Cityscapes", names, lut, to_raw, f"0-{max_id}, cityscapesscripts")


CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence",
                  "car", "pedestrian", "bicyclist")      # SegNet CamVid order; 11 = void


def camvid_label_space() -> LabelSpace:
    lut = np.full(256, -1, dtype=np.int16)
    lut[: len(CAMVID_CLASSES)] = np.arange(len(CAMVID_CLASSES))
    lut[len(CAMVID_CLASSES)] = IGNORE
    return LabelSpace("CamVid", CAMVID_CLASSES, lut,
                      np.arange(len(CAMVID_CLASSES), dtype=np.uint8), "0-10, 11 = void")


class Dataset:
    """One split of a dataset on disk: its samples, label space and how to read a pair."""

    name: str
    label_space: LabelSpace

    def __init__(self, root: str | Path | None, split: str = "val"):
        self.root = self._resolve_root(root)
        self.split = split

    @classmethod
    def _resolve_root(cls, root) -> Path:
        if root is None or str(root) == "":
            raise DatasetError(f"no {cls.name} root given (--data ROOT or accuracy.root)")
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DatasetError(f"{path}: dataset root is not a directory")
        return path

    @cached_property
    def samples(self) -> list[Sample]:
        samples = self._find()
        for s in samples:
            if not s.label.is_file():
                raise DatasetError(f"{s.image}: no label file (expected {s.label})")
        return samples

    def _find(self) -> list[Sample]:
        raise NotImplementedError

    def read_image(self, sample: Sample):
        """The image as an RGB PIL image (decoding errors name the file)."""
        from PIL import Image

        try:
            with Image.open(sample.image) as img:
                return img.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise DatasetError(f"{sample.image}: cannot read image ({exc})") from None

    def read_label(self, sample: Sample) -> np.ndarray:
        """Train ids (uint8, IGNORE for pixels that never count) at the label's full size."""
        from PIL import Image

        try:
            with Image.open(sample.label) as img:
                if img.mode not in ("L", "P", "I", "I;16"):
                    raise DatasetError(f"{sample.label}: a label image must have one channel "
                                       f"(mode L), got mode {img.mode}")
                raw = np.asarray(img)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DatasetError(f"{sample.label}: cannot read label ({exc})") from None
        if raw.min() < 0 or raw.max() > 255:
            raise DatasetError(f"{sample.label}: label values outside 0-255 "
                               f"({self.label_space.valid_raw})")
        return self.label_space.encode(raw.astype(np.int64), sample.label)


class Cityscapes(Dataset):
    name = "cityscapes"

    @cached_property
    def label_space(self) -> LabelSpace:
        return cityscapes_label_space()

    @classmethod
    def _resolve_root(cls, root) -> Path:
        if root is None or str(root) == "":
            root = os.environ.get("CITYSCAPES_DATASET")
            if not root:
                raise DatasetError("no Cityscapes root: give --data ROOT (or accuracy.root) or "
                                   "set CITYSCAPES_DATASET, as cityscapesscripts does")
        return super()._resolve_root(root)

    def _find(self) -> list[Sample]:
        image_dir = self.root / "leftImg8bit" / self.split
        if not image_dir.is_dir():
            raise DatasetError(f"{image_dir}: no such directory (Cityscapes layout: "
                               f"ROOT/leftImg8bit/{self.split}/CITY/*_leftImg8bit.png)")
        images = sorted(image_dir.glob("*/*_leftImg8bit.png"))
        if not images:
            raise DatasetError(f"{image_dir}: no images of split {self.split!r} "
                               f"(expected CITY/*_leftImg8bit.png)")
        out = []
        for img in images:
            stem = img.name[: -len("leftImg8bit.png")]
            label = self.root / "gtFine" / self.split / img.parent.name / f"{stem}gtFine_labelIds.png"
            out.append(Sample(img, label, img.stem, img.parent.name))
        return out


class CamVid(Dataset):
    name = "camvid"
    label_space = camvid_label_space()

    def _find(self) -> list[Sample]:
        image_dir = self.root / self.split
        if not image_dir.is_dir():
            raise DatasetError(f"{image_dir}: no such directory (CamVid SegNet layout: "
                               f"ROOT/{self.split}/*.png and ROOT/{self.split}annot/*.png)")
        images = sorted(image_dir.glob("*.png"))
        if not images:
            raise DatasetError(f"{image_dir}: no images of split {self.split!r} (expected *.png)")
        annot = self.root / f"{self.split}annot"
        return [Sample(img, annot / img.name, img.stem) for img in images]


DATASETS = {"cityscapes": Cityscapes, "camvid": CamVid}
NUM_CLASSES = {"cityscapes": 19, "camvid": 11}


def open_dataset(name: str, root=None, split: str = "val") -> Dataset:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name](root, split)
