"""Model registry: ``register_model`` / ``create_model`` / ``list_models`` / ``model_card``.

timm's shape (one decorator, a dict keyed on the builder's name, fnmatch + natural sort) with
torchvision's strictness (a duplicate name raises; metadata is a frozen record).
"""
from __future__ import annotations

import contextlib
import difflib
import fnmatch
import inspect
import re
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..errors import UnknownModel, UsageError
from ._preprocess import PREPROCESSING, default_preprocess


@dataclass(frozen=True)
class Reported:
    """One row of a paper's table about this model: the paper's numbers, never ours.

    gflops follows the paper's convention, which for every seed paper is multiply-accumulates
    (fvcore/ptflops counts, one FMA = one "FLOP").
    """

    source: str                      # "FASSD-Net T-ITS 2022, Table X"
    input_hw: tuple[int, int] = (1024, 2048)
    params: float | None = None      # as printed, e.g. 2.85e6
    gflops: float | None = None
    fps: float | None = None
    gpu: str | None = None
    tensorrt: bool = False
    miou_val: float | None = None
    miou_test: float | None = None
    dataset: str = "cityscapes"


@dataclass(frozen=True)
class ModelCard:
    name: str
    family: str
    paper: str
    builder: Callable[..., nn.Module]
    size_divisor: int = 16           # H and W must be multiples of this
    output_stride: int = 32          # deepest feature map; coarser sizes are rounded, as upstream
    builds_per_size: bool = False    # architecture depends on the input size (JetSeg)
    official_params: int | None = None   # exact count of the authors' code, 19 classes
    reported: tuple[Reported, ...] = ()
    notes: str = ""
    defaults: dict = field(default_factory=dict)
    preprocess: str = "imagenet_rgb"  # a key of zoo._preprocess.PREPROCESSING
    arg_choices: dict = field(default_factory=dict)   # argument -> the values it may take
    logits_stride: int = 1           # logits are N x classes x H/s x W/s (1: input resolution)

    @property
    def user_args(self) -> dict:
        """Arguments a user may set (num_classes is suite-wide; input_size is set per cell)."""
        return {k: v for k, v in self.defaults.items() if k not in _SET_BY_HARNESS}

    def check_args(self, args: dict) -> dict:
        """Validate user arguments against their declared type and allowed values; returns them
        unchanged or raises ``UsageError`` naming the argument and what is allowed."""
        allowed = self.user_args
        for key, value in args.items():
            if key not in allowed:
                raise UsageError(f"{self.name} takes no argument {key!r}; it takes: "
                                 f"{', '.join(sorted(allowed)) or 'none'}")
            default = allowed[key]
            kind = type(default)
            if default is not None and (type(value) is not kind and not (
                    kind is float and type(value) is int)):
                raise UsageError(f"{self.name}: {key}={value!r} must be {kind.__name__} "
                                 f"(like the default {default!r})"
                                 + self._choices_hint(key))
            if key in self.arg_choices and value not in self.arg_choices[key]:
                raise UsageError(f"{self.name}: {key}={value!r} is not allowed"
                                 + self._choices_hint(key))
        return args

    def _choices_hint(self, key: str) -> str:
        choices = self.arg_choices.get(key)
        return f"; allowed: {', '.join(map(str, choices))}" if choices else ""

    def check_size(self, height: int, width: int) -> None:
        """The input-size rules of this model, the same for suites, analyze and eval."""
        div = self.size_divisor
        if height % div or width % div:
            raise UsageError(f"{height}x{width} is not a multiple of {div}, which {self.name} "
                             f"requires")
        if min(height, width) < self.output_stride:
            raise UsageError(f"{height}x{width} is smaller than {self.name}'s output stride "
                             f"{self.output_stride}")

    def as_dict(self) -> dict:
        return {
            "name": self.name, "family": self.family, "paper": self.paper,
            "size_divisor": self.size_divisor, "output_stride": self.output_stride,
            "builds_per_size": self.builds_per_size,
            "official_params": self.official_params, "notes": self.notes,
            "defaults": dict(self.defaults), "preprocess": self.preprocess,
            "arg_choices": {k: list(v) for k, v in self.arg_choices.items()},
            "logits_stride": self.logits_stride,
            "reported": [r.__dict__ for r in self.reported],
        }


class DuplicateModel(ValueError):
    """A model name is registered twice (a duplicate silently replacing a model would hide it)."""


_MODELS: dict[str, ModelCard] = {}
_SET_BY_HARNESS = ("num_classes", "input_size")


def register_model(*, family: str, paper: str, size_divisor: int = 16, output_stride: int = 32,
                   builds_per_size: bool = False, official_params: int | None = None,
                   reported: tuple[Reported, ...] = (), notes: str = "",
                   preprocess: str | None = None, arg_choices: dict | None = None,
                   logits_stride: int = 1):
    """Register the decorated builder under its function name (with the prefix of the plugin
    being imported, if any). A duplicate name raises.

    ``preprocess`` names the input transform of the authors' evaluation code
    (``zoo._preprocess``); by default the family's. ``logits_stride``: the model returns
    logits at 1/s of the input size (1, the zoo's models: at the input size); every cell's
    first forward is checked against it (``measure.contract``)."""
    preprocess = preprocess or default_preprocess(family)
    if preprocess not in PREPROCESSING:
        raise ValueError(f"unknown preprocess {preprocess!r}; known: {', '.join(PREPROCESSING)}")

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = _NAME_PREFIX[-1] + fn.__name__
        if name in _MODELS:
            raise DuplicateModel(f"model {name!r} is already registered "
                                 f"(by {_MODELS[name].builder.__module__})")
        defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        _MODELS[name] = ModelCard(name, family, paper, fn, size_divisor, output_stride, builds_per_size,
                                  official_params, tuple(reported), notes, defaults, preprocess,
                                  dict(arg_choices or {}), logits_stride)
        return fn

    return wrap


_NAME_PREFIX = [""]


@contextlib.contextmanager
def name_prefix(prefix: str):
    """Models registered inside get ``prefix`` before their names: two versions of the same
    model file (a pull request's and the main branch's) side by side in one suite."""
    _NAME_PREFIX.append(prefix)
    try:
        yield
    finally:
        _NAME_PREFIX.pop()


def _unregister(name: str) -> None:
    """Forget a model (a plugin that failed its checks must not leave half its models)."""
    _MODELS.pop(name, None)


def registered_names() -> list[str]:
    _import_families()
    return list(_MODELS)


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching an fnmatch pattern, naturally sorted."""
    _import_families()
    return sorted(fnmatch.filter(_MODELS, pattern), key=_natural_key)


def close_matches(name: str) -> list[str]:
    _import_families()
    return difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.6)


def model_card(name: str) -> ModelCard:
    _import_families()
    try:
        return _MODELS[name]
    except KeyError:
        close = close_matches(name)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise UnknownModel(f"unknown model {name!r}{hint}; `bench models` lists them") from None


def create_model(name: str, *, weights: str | None = None, **overrides) -> nn.Module:
    """Build a registered model. ``None`` overrides mean "model default" (as in timm)."""
    card = model_card(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(kwargs) - set(card.defaults))
    if unknown:
        raise UsageError(f"model {name!r} takes no argument(s) {', '.join(unknown)}; "
                         f"it takes: {', '.join(sorted(card.defaults)) or 'none'}")
    model = card.builder(**kwargs)
    if weights is not None:
        from ._checkpoint import load_official_weights
        load_official_weights(model, weights)
    return model


def _import_families() -> None:
    # Family files register themselves on import; importing here keeps `create_model` the one door.
    from . import desanet, farsee, fassd, fassd_backbones, hardnet, jetseg  # noqa: F401
