"""Input preprocessing per model family, as the authors' evaluation code does it.

A model card names one of these; ``bench eval`` and suites with ``accuracy`` apply it, and every
accuracy result records it. Values are on the 0-255 scale of the decoded 8-bit image, in the
channel order the network expects.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preprocess:
    name: str
    channel_order: str               # "RGB" or "BGR": the order the network sees
    mean: tuple[float, float, float]  # per channel, in channel_order, 0-255 scale
    std: tuple[float, float, float]
    resize: str                      # how the image is resized to the input size
    source: str

    def as_dict(self) -> dict:
        return asdict(self)


# ptsemseg's Cityscapes loader as shipped by FC-HarDNet and FASSD-Net (`transform`): PIL resize
# with Pillow's default filter (bicubic since Pillow 7.0), RGB -> BGR, then mean/std given in that
# BGR order, in float64.
PTSEMSEG_CITYSCAPES = Preprocess(
    name="ptsemseg_cityscapes", channel_order="BGR",
    mean=(0.406 * 255, 0.456 * 255, 0.485 * 255), std=(0.225 * 255, 0.224 * 255, 0.229 * 255),
    resize="PIL bicubic (Image.resize default since Pillow 7.0)",
    source="FCHarDNet / FASSD-Net ptsemseg/loader/cityscapes_loader.py::transform")

# Documented default for families whose code gives no evaluation transform here: torchvision's
# ImageNet normalisation on RGB.
IMAGENET_RGB = Preprocess(
    name="imagenet_rgb", channel_order="RGB",
    mean=(0.485 * 255, 0.456 * 255, 0.406 * 255), std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    resize="PIL bicubic", source="ImageNet mean/std on RGB (benchbench default, documented)")

PREPROCESSING = {p.name: p for p in (PTSEMSEG_CITYSCAPES, IMAGENET_RGB)}

# FASSD-Net, FC-HarDNet and the FASSD Table V variants come from the same ptsemseg code base.
FAMILY_DEFAULT = {"fassd": "ptsemseg_cityscapes", "hardnet": "ptsemseg_cityscapes",
                  "fassd-backbones": "ptsemseg_cityscapes"}


def default_preprocess(family: str) -> str:
    return FAMILY_DEFAULT.get(family, IMAGENET_RGB.name)
