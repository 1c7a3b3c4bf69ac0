"""``bench eval``: one model, one dataset split, one backend and precision, outside any suite."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UsageError
from ..measure.backends import BACKENDS, PRECISIONS, create_backend
from ..zoo import create_model, model_card
from ..zoo._preprocess import PREPROCESSING
from .datasets import NUM_CLASSES, open_dataset
from .evaluate import AccuracyResult, EvalConfig, evaluate


@dataclass(frozen=True)
class EvalRequest:
    model: str
    config: EvalConfig
    size: tuple[int, int] | None = None          # None: the first image's size
    weights: str | None = None
    model_args: tuple[tuple[str, object], ...] = ()
    backend: str = "eager"
    precision: str = "fp32"
    device: str = "auto"
    save_predictions: str | None = None


def resolve_size(request: EvalRequest, dataset) -> tuple[int, int]:
    card = model_card(request.model)
    if request.size is not None:
        size = request.size
    else:
        from PIL import Image
        with Image.open(dataset.samples[0].image) as img:
            size = (img.height, img.width)
    card.check_size(*size)
    return size


def run_eval(request: EvalRequest, on_image=None, on_start=None) -> tuple[AccuracyResult, dict]:
    """Evaluate; returns the result and what was run (device, backend, weights)."""
    card = model_card(request.model)
    cfg = request.config
    if request.backend not in BACKENDS:
        raise UsageError(f"--backend {request.backend!r}: not one of {', '.join(BACKENDS)}")
    if request.precision not in PRECISIONS:
        raise UsageError(f"--precision {request.precision!r}: not one of {', '.join(PRECISIONS)}")
    if cfg.limit is not None and cfg.limit <= 0:
        raise UsageError(f"--limit {cfg.limit}: must be a positive number of images")
    device = request.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    backend = create_backend(request.backend)
    reason = backend.unavailable_reason(device, request.precision)
    if reason:
        raise UsageError(f"--backend {request.backend} --precision {request.precision} on "
                         f"{device}: {reason}")
    if cfg.multi_scale and not backend.capabilities.dynamic_shapes:
        raise UsageError(f"--backend {request.backend} runs one static shape; multi-scale / flip "
                         f"evaluation needs eager or channels_last")
    dataset = open_dataset(cfg.dataset, cfg.root, cfg.split)
    size = resolve_size(request, dataset)
    kwargs = dict(request.model_args, num_classes=NUM_CLASSES[cfg.dataset])
    if card.builds_per_size:
        kwargs["input_size"] = size
    card.check_args(dict(request.model_args))
    model = create_model(request.model, weights=request.weights, **kwargs)
    try:
        backend.prepare(model, torch.zeros(1, 3, *size), torch.device(device), request.precision,
                        False)
        n = min(cfg.limit or len(dataset.samples), len(dataset.samples))
        if on_start:
            on_start(n)
        result = evaluate(backend.infer, dataset, size, PREPROCESSING[card.preprocess], cfg,
                          size_divisor=card.size_divisor, device=device,
                          save_dir=request.save_predictions, on_image=on_image)
    finally:
        backend.close()
    return result, {"model": request.model, "model_args": dict(request.model_args),
                    "weights": request.weights, "backend": request.backend,
                    "precision": request.precision, "device": device}
