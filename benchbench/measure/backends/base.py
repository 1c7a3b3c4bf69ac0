"""The backend seam: a backend turns (model, example input) into a callable forward.

The timing engine owns the loop and the clock; a backend only prepares the model, runs one
forward on the prepared input, and synchronises its device. A backend declares the options a
suite may give it (``OPTIONS``: name -> Option); ``create_backend(name, options)`` checks them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from torch import nn

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Option:
    default: object
    choices: tuple | None = None     # allowed values, or None for any value of ``kind``
    kind: type | tuple = object
    help: str = ""

    def check(self, value) -> str | None:
        """Why ``value`` is not allowed, or None."""
        if self.choices is not None:
            if value not in self.choices:
                return f"must be one of {', '.join(map(str, self.choices))}, got {value!r}"
            return None
        if value is None and self.default is None:
            return None
        if isinstance(value, bool) and self.kind in (int, float):
            return f"must be a number, got {value!r}"
        if not isinstance(value, self.kind):
            names = self.kind.__name__ if isinstance(self.kind, type) else \
                " or ".join(k.__name__ for k in self.kind)
            return f"must be {names}, got {value!r}"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            return f"must be positive, got {value!r}"
        return None


# TF32: cuDNN convolutions use it by default in PyTorch (and TensorRT builds allow it), so
# "fp32" on Ampere and newer is TF32 unless told otherwise. Every CUDA backend records it.
TF32_OPTION = Option(None, (None, True, False),
                     help="allow TF32 for fp32 convolutions/matmuls on CUDA (default: leave "
                          "the library's default, recorded)")


@dataclass(frozen=True)
class Capabilities:
    """What a backend is, declared once per backend class (``CAPABILITIES``) and read by the
    timing engine, the runner, the executors, the report and normalisation -- never probed."""

    in_process: bool = True          # runs in a Python process (trtexec: the boards executor)
    host_synchronous: bool = False   # a forward returns when the device is done: host clock
    own_stream: bool = False         # runs on its own CUDA stream (``backend.stream``, prepared)
    cuda_graphs: bool = False        # replays captured CUDA graphs (compile: known once built)
    dynamic_shapes: bool = True      # takes any input shape once prepared
    timing_hooks: bool = False       # ``timed_start()`` / ``timed_end()`` around the timed loop
    tensorrt_engine: bool = False    # runs a TensorRT engine (FASSD's TensorRT FPS factor)

    def as_dict(self) -> dict:
        return asdict(self)


def capabilities(backend) -> Capabilities:
    """The backend's declared capabilities (a test double without any: the defaults)."""
    caps = getattr(backend, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


@dataclass(frozen=True)
class BackendSpec:
    name: str
    precision: str = "fp32"
    options: tuple = ()              # sorted (key, value) pairs; empty = the backend's defaults

    @property
    def backend_label(self) -> str:
        return backend_label(self.name, self.options)

    @property
    def label(self) -> str:
        return f"{self.backend_label}-{self.precision}"


def backend_label(name: str, options) -> str:
    """``compile[mode=max-autotune]``: the name, with the non-default options a suite gave."""
    items = options.items() if isinstance(options, dict) else options
    if not items:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in sorted(items))}]"


class Backend(Protocol):
    name: str

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        """Why this backend cannot run here (library missing, no CUDA, precision), or None."""

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None: ...

    def run(self) -> object:
        """One forward on the prepared input."""

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        """Logits for host frames (N, 3, H, W) float32, through the prepared model in its
        precision; the accuracy stage scores exactly what is timed. Backends with a static
        input shape (``dynamic_shapes = False``) take only the prepared shape."""

    def sync(self) -> None: ...

    def close(self) -> None: ...

    def info(self) -> dict:
        """What the record should say about how this backend ran (versions, formats)."""


class BackendBase:
    """Options handling shared by the backends: ``cls(**options)`` with defaults filled in."""

    name = "?"
    OPTIONS: dict[str, Option] = {"tf32": TF32_OPTION}
    CAPABILITIES = Capabilities()

    @property
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES

    def __init__(self, **options):
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise ValueError(f"backend {self.name!r} has no option {sorted(unknown)[0]!r} "
                             f"(options: {', '.join(sorted(self.OPTIONS)) or 'none'})")
        for key, option in self.OPTIONS.items():
            value = options.get(key, option.default)
            problem = option.check(value)
            if problem:
                raise ValueError(f"backend {self.name!r} option {key!r} {problem}")
            setattr(self, key.replace("-", "_"), value)
        self.options = dict(options)
        self._tf32_restore = None

    def set_tf32(self, device: torch.device) -> dict | None:
        """Apply the ``tf32`` option for this cell (restored by ``close``); what is in force."""
        if device.type != "cuda":
            return None
        if self.tf32 is not None and self._tf32_restore is None:
            self._tf32_restore = tf32_state()
            apply_tf32(self.tf32)
        return tf32_state()

    def restore_tf32(self) -> None:
        if self._tf32_restore is not None:
            apply_tf32_state(self._tf32_restore)
            self._tf32_restore = None


def tf32_state() -> dict:
    """Whether PyTorch lets fp32 convolutions (cuDNN) and matmuls use TF32 right now."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):        # torch >= 2.9 API
        matmul = torch.backends.cuda.matmul.fp32_precision
        glob = getattr(torch.backends, "fp32_precision", "none")
        matmul = glob if matmul == "none" else matmul
        return {"cudnn_conv_tf32": conv.fp32_precision == "tf32",
                "cuda_matmul_tf32": matmul == "tf32" or (
                    matmul == "none" and torch.get_float32_matmul_precision() != "highest")}
    return {"cudnn_conv_tf32": bool(torch.backends.cudnn.allow_tf32),
            "cuda_matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32)}


def apply_tf32(allow: bool) -> None:
    apply_tf32_state({"cudnn_conv_tf32": allow, "cuda_matmul_tf32": allow})


def apply_tf32_state(state: dict) -> None:
    """Set TF32 for convolutions (and RNNs: cuDNN's one legacy flag covers both) and matmuls.

    Through the legacy setters, on every torch: since 2.9 they write the ``fp32_precision``
    state too, so both APIs agree. Writing only ``fp32_precision`` (the new API) leaves the
    legacy flags behind, and then the legacy getters -- ``torch.backends.cuda.matmul.
    allow_tf32``, ``torch.get_float32_matmul_precision()``, which inductor reads -- raise
    ("mix of the legacy and new APIs"): a compile cell with ``tf32`` set would fail."""
    torch.backends.cudnn.allow_tf32 = bool(state["cudnn_conv_tf32"])
    torch.backends.cuda.matmul.allow_tf32 = bool(state["cuda_matmul_tf32"])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def missing_library(module: str, extra: str, what: str) -> str | None:
    """The skip reason, with the install command, when ``module`` cannot be imported."""
    import importlib
    try:
        importlib.import_module(module)
    except ImportError as exc:
        found = "is not installed" if isinstance(exc, ModuleNotFoundError) and \
            exc.name == module else f"cannot be imported ({exc})"
        return (f"{what} {found} (python module {module!r}); install it with: "
                f"pip install 'benchbench[{extra}]'")
    return None
