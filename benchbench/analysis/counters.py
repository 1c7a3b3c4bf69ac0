"""Static cost of one forward pass, counted on the meta device (no memory, no arithmetic).

One pass gives every count, each under a named convention:

* ``macs`` -- fvcore's convention (``FlopCountAnalysis.total()``: one multiply-accumulate = 1,
  counts conv, BN, bilinear/nearest upsampling, adaptive average pooling, linear/matmul and
  norms with fvcore's own formulas). fvcore traces with ``torch.jit`` and cannot trace on the meta
  device, so its op handles are re-applied here to the aten ops seen by a ``TorchDispatchMode``;
  ``tests/test_analysis.py`` checks the two agree exactly for every model in the zoo. Ops that
  fvcore neither counts nor ignores are listed in ``unsupported_ops`` (never silently zero).
* ``macs_paper`` / ``gflops`` -- the papers' "GFLOPs": 2020-era ptflops module hooks (conv MACs
  plus bias, 1 per element for ReLU/PReLU, 2 for affine BatchNorm, input elements for pooling;
  functional ``F.interpolate`` not counted). This reproduces every FASSD-Net figure to the
  printed decimal (ARCHITECTURES.md §1, "GFLOPs convention"). gflops = macs_paper / 1e9.
* ``conv_macs`` and ``cio`` -- ``nn.Conv2d`` layers only; CIO is FASSD eq. (2):
  sum_l c_in*h_in*w_in + c_out*h_out*w_out; ``moc`` = conv_macs / cio, FASSD eq. (1).
* ``peak_activation_bytes`` -- the most bytes of tensors alive at once during the forward
  (the input plus every op output that is not a view; weights excluded), simulated by watching
  when each meta tensor is freed.
"""
from __future__ import annotations

import functools
import itertools
import math
import weakref
from collections import Counter

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

try:  # fvcore's own list of ops it deliberately ignores
    from fvcore.nn.jit_analysis import _IGNORED_OPS as _FVCORE_IGNORED
except ImportError:  # pragma: no cover - fvcore is a hard dependency; keep analysis importable
    _FVCORE_IGNORED = set()

# aten ops that only exist below the jit tracer (views, copies, decomposition glue); jit-level
# fvcore never sees them, so they are neither counted nor reported.
_DISPATCH_ONLY = {"view", "_unsafe_view", "t", "alias", "as_strided", "unsqueeze", "squeeze",
                  "expand", "slice", "select", "detach", "_to_copy", "clone", "empty_like",
                  "_reshape_alias", "split", "split_with_sizes", "unbind", "lift_fresh",
                  "transpose", "permute", "contiguous", "cat", "sym_size", "zeros_like"}
# ops whose output has the shape and dtype of their first argument (binary ones only when the
# other operand is a scalar or a same-shaped tensor)
_UNARY = {"batch_norm", "prelu", "_prelu_kernel", "relu", "relu6", "hardtanh", "sigmoid", "silu",
          "hardswish", "gelu", "elu", "leaky_relu", "exp", "tanh", "neg", "abs", "sqrt", "rsqrt",
          "log", "hardsigmoid", "softplus", "mish"}
_BINARY = {"add", "mul", "sub", "div"}
_COMPARE = {"le", "lt", "ge", "gt", "eq", "ne"}       # same rule as _BINARY, bool output
# dispatch names whose jit-level (fvcore) name differs
_JIT_NAME = {"_prelu_kernel": "prelu", "_adaptive_avg_pool2d": "adaptive_avg_pool2d",
             "convolution": "_convolution", "conv1d": "_convolution", "conv2d": "_convolution",
             "conv3d": "_convolution", "grid_sampler_2d": "grid_sampler",
             "_native_batch_norm_legit_no_training": "batch_norm",
             "native_batch_norm": "batch_norm", "cudnn_batch_norm": "batch_norm",
             "native_layer_norm": "layer_norm", "native_group_norm": "group_norm"}


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


def _fvcore_conv(args, out):
    x, w = args[0], args[1]
    transposed = len(args) > 7 and bool(args[6])  # aten.convolution; aten.conv2d has no flag
    spatial = (x.shape if transposed else out.shape)[2:]
    return {"conv": x.shape[0] * _numel(w.shape) * _numel(spatial)}


def _fvcore_norm(args, out, affine_index: int, per_elem: int):
    affine = len(args) > affine_index and args[affine_index] is not None
    return _numel(args[0].shape) * (per_elem + 1 if affine else per_elem)


_FVCORE_HANDLES = {
    "_convolution": _fvcore_conv,
    "batch_norm": lambda a, o: _fvcore_norm(a, o, 1, 1),  # eval mode: 1/elem, +1 if affine
    "layer_norm": lambda a, o: _fvcore_norm(a, o, 2, 4),
    "group_norm": lambda a, o: _fvcore_norm(a, o, 2, 4),
    "upsample_bilinear2d": lambda a, o: 4 * o.numel(),
    "upsample_nearest2d": lambda a, o: o.numel(),
    "adaptive_avg_pool2d": lambda a, o: a[0].numel(),
    "grid_sampler": lambda a, o: 4 * o.numel(),
    "addmm": lambda a, o: a[1].shape[0] * a[1].shape[1] * a[2].shape[1],
    "mm": lambda a, o: a[0].numel() * a[1].shape[-1],
    "matmul": lambda a, o: a[0].numel() * a[1].shape[-1],     # fvcore's formula, batch included
                                                               # only through the first operand
    "bmm": lambda a, o: a[0].shape[0] * a[0].shape[1] * a[0].shape[2] * a[1].shape[2],
}


def _conv_shape(args):
    """Output shape of a batched, non-transposed 1-D or 2-D convolution with numeric padding
    (the meta kernel's formula); None for any other form, which then runs the meta kernel."""
    x, w = args[0], args[1]
    if len(args) > 7:                                     # aten.convolution
        stride, padding, dilation, transposed, groups = (args[3], args[4], args[5], args[6],
                                                         args[8])
        if transposed:
            return None
    else:                                                 # aten.conv1d / aten.conv2d
        given = list(args[3:7])
        stride, padding, dilation, groups = given + [1, 0, 1, 1][len(given):]
    spatial = x.dim() - 2
    if (spatial not in (1, 2) or w.dim() != x.dim() or isinstance(padding, str)
            or x.shape[1] != w.shape[1] * groups):
        return None
    out = [x.shape[0], w.shape[0]]
    for i in range(spatial):
        s, p, d = (_nth(v, i) for v in (stride, padding, dilation))
        size = (x.shape[2 + i] + 2 * p - d * (w.shape[2 + i] - 1) - 1) // s + 1
        if size <= 0:
            return None
        out.append(size)
    return out


def _nth(v, i: int) -> int:
    return v if isinstance(v, int) else v[0] if len(v) == 1 else v[i]


def _pair(v):
    return _nth(v, 0), _nth(v, 1)


def _cat_shape(args):
    tensors, dim = args[0], (args[1] if len(args) > 1 else 0)
    first = tensors[0]
    dim = dim % first.dim() if first.dim() else 0
    if any(t.dim() != first.dim() or t.dtype != first.dtype or
           t.shape[:dim] != first.shape[:dim] or t.shape[dim + 1:] != first.shape[dim + 1:]
           for t in tensors):
        return None
    return [*first.shape[:dim], sum(t.shape[dim] for t in tensors), *first.shape[dim + 1:]]


def _grid_sample_shape(args):
    x, grid = args[0], args[1]
    if x.dim() != 4 or grid.dim() != 4 or grid.shape[0] != x.shape[0]:
        return None
    return [x.shape[0], x.shape[1], grid.shape[1], grid.shape[2]]


def _adaptive_pool_shape(args):
    x, size = args[0], args[1]
    if x.dim() != 4 or any(s is None for s in size):
        return None
    return [x.shape[0], x.shape[1], *_pair(size)]


def _pool_shape(args, dilated: bool):
    """avg_pool2d(x, kernel, stride, padding, ceil_mode, ...) / max_pool2d(x, kernel, stride,
    padding, dilation, ceil_mode): the meta kernel's output size (ceil mode included: a last
    window that would start in the right padding is dropped)."""
    x = args[0]
    if x.dim() != 4:
        return None
    kernel = _pair(args[1])
    stride = _pair(args[2]) if len(args) > 2 and args[2] else kernel
    padding = _pair(args[3]) if len(args) > 3 else (0, 0)
    dilation = _pair(args[4]) if dilated and len(args) > 4 else (1, 1)
    ceil = bool(args[5] if dilated else args[4]) if len(args) > (5 if dilated else 4) else False
    out = [x.shape[0], x.shape[1]]
    for i in range(2):
        span = x.shape[2 + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1
        if span < 0 or padding[i] * 2 > kernel[i]:
            return None
        size = -(-span // stride[i]) + 1 if ceil else span // stride[i] + 1
        if ceil and (size - 1) * stride[i] >= x.shape[2 + i] + padding[i]:
            size -= 1
        out.append(size)
    return out


def _where_shape(args):
    cond, a, b = args[0], args[1], args[2]
    if all(isinstance(t, torch.Tensor) for t in (a, b)) and \
            cond.shape == a.shape == b.shape and a.dtype == b.dtype:
        return list(a.shape)
    return None


def _broadcast_shape(args):
    """Two tensors of one floating dtype on one device, broadcast (NumPy's rule); None for
    anything else (type promotion, scalars first, ...), which runs the kernel."""
    a, b = args[0], args[1]
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or \
            a.dtype != b.dtype or not a.is_floating_point() or a.device != b.device:
        return None
    return _broadcast_dims(a.shape, b.shape)


def _same_shape_operands(args) -> bool:
    return not (isinstance(args[1], torch.Tensor) and args[1].shape != args[0].shape)


def _like(x, dtype=None):
    """A new contiguous tensor shaped as ``x``. (A real elementwise kernel may keep a permuted
    input's strides; a contiguous stand-in can be viewed wherever that one can, and
    ``empty_like``'s meta decomposition costs 50 times more.)"""
    return torch.empty(x.shape, dtype=dtype or x.dtype, device=x.device)


def _matmul_shape(args):
    a, b = args[0], args[1]
    if a.dim() < 2 or b.dim() < 2 or a.shape[-1] != b.shape[-2] or a.dtype != b.dtype:
        return None
    batch = _broadcast_dims(a.shape[:-2], b.shape[:-2])
    return None if batch is None else [*batch, a.shape[-2], b.shape[-1]]


def _reduce_shape(args):
    """mean / sum / amax / amin over dims (keepdim or not); None dims means all."""
    x = args[0]
    dims = args[1] if len(args) > 1 else None
    keep = bool(args[2]) if len(args) > 2 else False
    if not x.is_floating_point() or dims is None or x.dim() == 0:
        return None
    dims = {d % x.dim() for d in ([dims] if isinstance(dims, int) else dims)} or \
        set(range(x.dim()))
    return [1 if i in dims else n for i, n in enumerate(x.shape) if keep or i not in dims]


def _broadcast_dims(a, b):
    out = []
    for x, y in itertools.zip_longest(reversed(a), reversed(b), fillvalue=1):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return out[::-1]


def _pixel_shuffle_shape(args):
    x, r = args[0], args[1]
    if x.dim() != 4 or x.shape[1] % (r * r):
        return None
    return [x.shape[0], x.shape[1] // (r * r), x.shape[2] * r, x.shape[3] * r]


def _stack_shape(args):
    tensors, dim = args[0], (args[1] if len(args) > 1 else 0)
    first = tensors[0]
    if any(t.shape != first.shape or t.dtype != first.dtype for t in tensors):
        return None
    dim = dim % (first.dim() + 1)
    return [*first.shape[:dim], len(tensors), *first.shape[dim:]]


# ops whose output shape is computed here instead of by their meta kernels (slow Python
# decompositions; the counts need shapes only). None falls back to the kernel, which also
# raises for an invalid call.
_SHAPE_OF = {"conv1d": _conv_shape, "conv2d": _conv_shape, "convolution": _conv_shape,
             "cat": _cat_shape, "stack": _stack_shape, "matmul": _matmul_shape,
             "mean": _reduce_shape, "sum": _reduce_shape, "amax": _reduce_shape,
             "amin": _reduce_shape, "pixel_shuffle": _pixel_shuffle_shape,
             "grid_sampler": _grid_sample_shape, "grid_sampler_2d": _grid_sample_shape,
             "adaptive_avg_pool2d": _adaptive_pool_shape,
             "_adaptive_avg_pool2d": _adaptive_pool_shape, "where": _where_shape,
             "avg_pool2d": lambda a: _pool_shape(a, dilated=False),
             "max_pool2d": lambda a: _pool_shape(a, dilated=True)}


def _arange(args, kwargs):
    """``torch.arange`` on the meta device (its decomposition imports torch._dynamo)."""
    if not all(isinstance(a, (int, float)) for a in args) or not 1 <= len(args) <= 3 \
            or kwargs.get("device") is None:
        return None
    start, end, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if step == 0:
        return None
    dtype = kwargs.get("dtype") or (torch.int64 if all(isinstance(a, int) for a in args)
                                    else torch.get_default_dtype())
    return torch.empty((max(0, math.ceil((end - start) / step)),), dtype=dtype,
                       device=kwargs["device"])


def _upsample_size(name: str, args):
    """The output size of a 2-d upsample: given, or (the ``.vec`` overloads, e.g.
    ``nn.Upsample(scale_factor=2)``) ATen's ``int64_t(input_size * scale)`` per side, whose
    meta decomposition imports sympy on first use (about 2 s)."""
    x, size = args[0], args[1]
    if size is not None:
        return list(size)
    at = 3 if name == "upsample_bilinear2d" else 2
    scales = args[at] if len(args) > at else None
    if x.dim() != 4 or scales is None or len(scales) != 2:
        return None
    size = [int(n * float(scale)) for n, scale in zip(x.shape[2:], scales)]
    return size if min(size) > 0 else None          # the kernel raises for an empty output


def _shape_only(name: str, args, kwargs):
    """The op's output without running its meta kernel, where its shape follows from the
    arguments (elementwise ops: the input's; in place: the input itself); None otherwise."""
    if name.endswith("_") and name[:-1] in _UNARY | _BINARY:
        return args[0]
    if name in _UNARY and args[0].is_floating_point():
        return _like(args[0])
    if name in _BINARY and _same_shape_operands(args):
        return _like(args[0])
    if name in _BINARY:
        shape = _broadcast_shape(args)
        if shape is not None:
            return torch.empty(shape, dtype=args[0].dtype, device=args[0].device)
    if name in _COMPARE and _same_shape_operands(args):
        return _like(args[0], torch.bool)
    if name in ("upsample_bilinear2d", "upsample_nearest2d"):
        size = _upsample_size(name, args)
        return None if size is None else args[0].new_empty((*args[0].shape[:2], *size))
    if name == "arange":
        return _arange(args, kwargs or {})
    if name == "adaptive_max_pool2d" and not kwargs:          # values and their indices
        shape = _adaptive_pool_shape(args)
        return None if shape is None else (
            torch.empty(shape, dtype=args[0].dtype, device=args[0].device),
            torch.empty(shape, dtype=torch.int64, device=args[0].device))
    shape_of = _SHAPE_OF.get(name)
    shape = shape_of(args) if shape_of and not kwargs else None
    if shape is None:
        return None
    like = args[0][0] if name in ("cat", "stack") else args[1] if name == "where" else args[0]
    return torch.empty(shape, dtype=like.dtype, device=like.device)


@functools.lru_cache(maxsize=None)
def _op_info(func) -> tuple:
    """(dispatch name, fvcore's jit-level name, fvcore's handle or None, whether an op with no
    handle is one fvcore would report as unsupported), once per op overload."""
    name = func._schema.name.split("::")[-1]
    jit_name = _JIT_NAME.get(name, name)
    handle = _FVCORE_HANDLES.get(jit_name)
    unsupported = (handle is None and f"aten::{jit_name}" not in _FVCORE_IGNORED
                   and name not in _DISPATCH_ONLY
                   and not (name.endswith("_") and f"aten::{name[:-1]}" in _FVCORE_IGNORED))
    return name, jit_name, handle, unsupported


class _CountingMode(TorchDispatchMode):
    """A dispatch mode that torch does not wrap in ``torch._dynamo.disable``: that wrapper
    imports torch._dynamo on first use (over a second) and costs a frame switch per op, and
    these modes never run under torch.compile. (``_should_skip_dynamo`` is torch's switch for
    this; a torch without it wraps as before, which is only slower.)"""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


class _FvcoreAndMemoryMode(_CountingMode):
    """Counts fvcore-convention MACs per aten op and tracks live activation bytes."""

    def __init__(self, input_bytes: int):
        super().__init__()
        self.by_op: Counter = Counter()
        self.unsupported: Counter = Counter()
        self.ops: Counter = Counter()       # every aten op the forward ran, by name
        self.live = input_bytes
        self.peak = input_bytes
        self.alive: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name, jit_name, handle, unsupported = _op_info(func)
        self.ops[jit_name] += 1
        out = _shape_only(name, args, kwargs)
        if out is None:
            out = func(*args, **(kwargs or {}))
        first = out[0] if isinstance(out, (tuple, list)) else out
        if handle is not None:
            counted = handle(args, first)
            if isinstance(counted, dict):
                for key, value in counted.items():
                    self.by_op[key] += int(value)
            else:
                self.by_op[jit_name] += int(counted)
        elif unsupported:
            self.unsupported[f"aten::{jit_name}"] += 1
        self._track(args, first)
        return out

    def _track(self, args, out) -> None:
        if type(out) is not torch.Tensor or out._is_view():
            return
        if out is args[0] or any(out is a for a in args[1:]):  # in place: no new storage
            return
        nbytes = out.numel() * out.element_size()
        self.live += nbytes
        if self.live > self.peak:
            self.peak = self.live
        self.alive[weakref.ref(out, self._free)] = nbytes   # cheaper than weakref.finalize

    def _free(self, ref) -> None:
        self.live -= self.alive.pop(ref)


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class _ModuleHooks:
    """ptflops-2020 module hooks (the papers' convention), conv-only MACs and CIO, and JetSeg's
    own counter (its eq. 2 / config/hooks.py: conv Cin*Cout*kh*kw*Hin*Win/(s^2*g), 4 per BN
    element, 1 per REU element, interpolation not counted)."""

    def __init__(self, model: nn.Module):
        self.paper = 0
        self.conv_macs = 0
        self.cio = 0
        self.jetseg = 0
        self.added = _instrument_leaves(model)

    def _hook(self, module, inputs, output):
        x = inputs[0]
        if isinstance(module, nn.Conv2d) or getattr(module, "declared_conv", False):
            self._jetseg_conv(module, x)
        elif isinstance(module, nn.BatchNorm2d):
            self.jetseg += 4 * x.numel()
        if getattr(module, "flops_per_element", 0):     # custom activations (JetSeg's REU)
            self.paper += output.numel() * module.flops_per_element
            self.jetseg += output.numel() * module.flops_per_element
            return
        if getattr(module, "declared_conv", False):      # legacy conv emulation: declared taps
            w = module.weight
            self.paper += output.numel() * w.shape[2] * w.shape[3]
            return
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            positions = output.shape[0] * _numel(output.shape[2:])
            macs = positions * _numel(module.kernel_size) * module.in_channels * (
                module.out_channels // module.groups)
            self.paper += macs + (module.out_channels * positions if module.bias is not None else 0)
            if isinstance(module, nn.Conv2d):
                self.conv_macs += macs
                self.cio += x.numel() + output.numel()
        elif isinstance(module, _ACTIVATIONS):
            self.paper += output.numel()
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            self.paper += x.numel() * (2 if module.affine else 1)
        elif isinstance(module, _POOLS):
            self.paper += x.numel()
        elif isinstance(module, nn.Linear):
            self.paper += x.numel() * module.out_features
        elif isinstance(module, nn.Upsample):
            self.paper += output.numel()

    def _jetseg_conv(self, module, x) -> None:
        w = module.weight
        groups = getattr(module, "groups", w.shape[0])
        stride = getattr(module, "stride", (1, 1))
        cin = x.shape[1]
        self.jetseg += (cin * w.shape[0] * w.shape[2] * w.shape[3] * x.shape[0] * x.shape[2] *
                        x.shape[3]) // (stride[0] * stride[1] * groups)

    def remove(self) -> None:
        for module in self.added:
            del module.__dict__["forward"]
            del module.__dict__["_bb_counted_forward"]


# The counter the instrumented forwards report to (one analysis at a time).
_ACTIVE: list = [None]


def _instrument_leaves(model: nn.Module) -> list:
    """Give every leaf module an instance ``forward`` that reports to the active counter --
    instead of forward hooks, which push every module call of the model (containers too) onto
    nn.Module's slow path and cost more than the counting. Returns the modules instrumented now
    (a model instrumented before keeps its wrappers: the registry's cached meta models)."""
    added = []
    for module in model.modules():
        if module._modules or "_bb_counted_forward" in module.__dict__:
            continue
        original = module.forward

        def forward(*args, _module=module, _original=original, **kwargs):
            out = _original(*args, **kwargs)
            counter = _ACTIVE[0]
            if counter is not None:
                counter._hook(_module, args, out)
            return out

        module.__dict__["forward"] = forward
        module.__dict__["_bb_counted_forward"] = True
        added.append(module)
    return added


class _SkipInitMode(_CountingMode):
    """While a model is built on the meta device, in-place ops on meta tensors (the weight
    initialisers: uniform_, normal_, fill_, ...) return their input at once: meta tensors hold
    no values, and the initialisers' meta decompositions cost more than the build itself."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if (func._schema.name.endswith("_") and args and isinstance(args[0], torch.Tensor)
                and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


def build_on_meta(builder, *args, **kwargs) -> nn.Module:
    """``builder(*args, **kwargs)`` with every tensor on the meta device, without weight
    initialisation."""
    with torch.device("meta"), _SkipInitMode():
        return builder(*args, **kwargs)


def count_on_meta(model: nn.Module, input_shape: tuple[int, ...], device: str = "meta",
                  keep_instrumented: bool = False) -> dict:
    """Run ``model`` (already on the meta device, eval mode) once on a meta input of
    ``input_shape`` and return every count described in the module docstring. With
    ``device="cpu"`` the same counts on real tensors, for models whose forward reads a tensor's
    value (data-dependent control flow), which meta tensors do not have."""
    x = torch.zeros(input_shape, device=device)
    hooks = _ModuleHooks(model)
    mode = _FvcoreAndMemoryMode(x.numel() * x.element_size())
    _ACTIVE[0] = hooks
    try:
        with torch.inference_mode(), mode:
            out = model(x)
            first = out[0] if isinstance(out, (list, tuple)) else out
            out_shape = tuple(first.shape)
            del out
    finally:
        _ACTIVE[0] = None
        if not keep_instrumented:
            hooks.remove()
    return {
        "output_shape": out_shape,
        "macs": sum(mode.by_op.values()),
        "macs_by_op": dict(mode.by_op),
        "unsupported_ops": dict(mode.unsupported),
        "aten_ops": dict(sorted(mode.ops.items())),
        "macs_paper": hooks.paper,
        "macs_jetseg_formula": hooks.jetseg,
        "conv_macs": hooks.conv_macs,
        "cio": hooks.cio,
        "peak_activation_bytes": mode.peak,
    }


def fvcore_reference(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict]:
    """fvcore itself on a real CPU forward (slow at large sizes; used to check ``count_on_meta``).
    Returns (total, unsupported op counts)."""
    from fvcore.nn import FlopCountAnalysis

    with torch.no_grad():
        analysis = FlopCountAnalysis(model.eval(), torch.zeros(input_shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        return int(analysis.total()), dict(analysis.unsupported_ops())
