"""Suite files: load YAML, validate all of it up front, and hold it as frozen dataclasses.

Every problem becomes a ``SuiteError`` naming the file, the field path (``timing.warmup``,
``models[2]``) and what is allowed; nothing here prints or exits.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .accuracy import EVAL_AT, NUM_CLASSES, DatasetError, EvalConfig, open_dataset
from .errors import SuiteError, UnknownModel, UsageError
from .executors import OPTIONS as EXECUTOR_OPTIONS, ExecutorSpec, option_error
from .limits import (MAX_BATCH, MAX_SCALE, MAX_SECONDS, MAX_SIDE, MAX_SUITE_BYTES,
                     MAX_SUITE_NODES, SLUG, finite_number)
from .measure.backends import BACKENDS, PRECISIONS, BackendSpec, create_backend
from .measure.engine import PROTOCOLS, TimingConfig
from .devices import load_profiles
from .zoo import list_models, model_card

DEVICES = ("cpu", "cuda", "auto")
SAMPLERS = ("none", "auto", "nvml", "tegrastats", "rapl")


def _cityscapes(heights):
    return tuple((h, 2 * h) for h in heights)


# Named grids. cityscapes-13: FASSD Fig. 6 sweep (H 256..1024 step 64, 1:2). cityscapes-10: the ten
# sizes of Fig. 7 "from 256x512 to full resolution"; the paper does not list them, we read them as
# the 64-step sweep up to 768 plus full resolution (every size the paper names is included).
GRIDS = {
    "cityscapes-13": _cityscapes(range(256, 1025, 64)),
    "cityscapes-10": _cityscapes(list(range(256, 769, 64)) + [1024]),
    "cityscapes-full": ((1024, 2048),),
    "cityscapes-half": ((512, 1024),),
    "camvid": ((720, 960),),
}

# the largest value of each non-negative timing field (the rest are integers or flags)
TIMING_MAXIMA = {"target_ci_rel": 1.0, "warmup_s": MAX_SECONDS, "max_time_s": MAX_SECONDS,
                 "iterations": 10_000_000, "min_iterations": 10_000_000,
                 "max_iterations": 10_000_000, "keep_samples": 10_000_000, "repeats": 1000,
                 "processes": 1000,
                 "threads": 4096, "warmup": 10_000_000}

TOP_KEYS = ("name", "description", "target", "device", "models", "num_classes", "resolutions",
            "batch_sizes", "backends", "timing", "power", "accuracy", "plugins",
            "equivalence", "remote", "executor")
ACCURACY_KEYS = ("dataset", "root", "split", "limit", "eval_at", "scales", "flip", "weights")
REQUIRED = ("name", "models", "resolutions")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    args: tuple[tuple[str, object], ...] = ()

    @property
    def kwargs(self) -> dict:
        return dict(self.args)

    @property
    def label(self) -> str:
        if not self.args:
            return self.name
        return self.name + "(" + ",".join(f"{k}={v}" for k, v in self.args) + ")"


@dataclass(frozen=True)
class PowerConfig:
    sampler: str = "none"
    interval_ms: int = 100           # sampler period
    idle_s: float = 1.0              # idle baseline window before the cell's power pass
    duration_s: float = 2.0          # power pass: the model looped this long beside the sampler
    cooldown_s: float = 0.0          # before the idle baseline: wait (at most this long) until
                                     # the GPU's temperature and clocks settle after timing


@dataclass(frozen=True)
class EquivalenceConfig:
    """Output equivalence: every cell not on the reference backend/precision (eager fp32)
    runs one fixed input through the reference too and records how far its logits are."""

    enabled: bool = True
    min_argmax_agreement: float = 0.995   # below this share of agreeing pixels: mismatch


@dataclass(frozen=True)
class AccuracySpec:
    """``accuracy:`` of a suite: where the data is and how to score every cell. Paths are
    resolved against the suite file's folder."""

    config: EvalConfig
    weights: tuple[tuple[str, str], ...] = ()    # model label or name -> checkpoint path

    def weights_for(self, spec: "ModelSpec") -> str | None:
        table = dict(self.weights)
        return table.get(spec.label, table.get(spec.name))


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    raw: dict
    description: str
    target: str | None
    device: str
    models: tuple[ModelSpec, ...]
    num_classes: int
    resolutions: tuple[tuple[int, int], ...]
    resolutions_name: str | None
    batch_sizes: tuple[int, ...]
    backends: tuple[BackendSpec, ...]
    timing: TimingConfig
    power: PowerConfig
    accuracy: AccuracySpec | None = None
    plugins: tuple = ()              # PluginInfo of each plugin the suite names
    equivalence: EquivalenceConfig = EquivalenceConfig()
    remote: tuple = ()               # RemoteSpec of each board trtexec cells run on
    executor: ExecutorSpec = ExecutorSpec()   # where the cells run (executors/)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True).encode()).hexdigest()


class _DuplicateKey(Exception):
    def __init__(self, key, first: int, second: int):
        self.key, self.first, self.second = str(key), first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing a key given twice in one mapping (it keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep)


class _TooLarge(Exception):
    pass


def _load_yaml(text: str):
    """PyYAML composes aliases as shared nodes and expands them only when it constructs the
    Python objects: count the expanded size on the node graph first, then construct."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, {}, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_nodes(node, sizes: dict, open_nodes: set) -> int:
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise _TooLarge("a recursive alias")
    open_nodes.add(key)
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_nodes(child, sizes, open_nodes)
        if total > MAX_SUITE_NODES:
            raise _TooLarge(f"at line {node.start_mark.line + 1}")
    open_nodes.discard(key)
    sizes[key] = total
    return total


def load_suite(path: str | Path) -> Suite:
    path = str(path)
    p = Path(path)
    if not p.exists():
        raise SuiteError(path, "", "no such file")
    if p.is_dir():
        raise SuiteError(path, "", "is a directory, not a suite file")
    if p.stat().st_size > MAX_SUITE_BYTES:
        raise SuiteError(path, "", f"{p.stat().st_size:,} bytes: a suite file is at most "
                         f"{MAX_SUITE_BYTES:,} bytes")
    try:
        raw = _load_yaml(p.read_text())
    except _TooLarge as exc:
        raise SuiteError(path, "", f"expands to more than {MAX_SUITE_NODES:,} YAML nodes "
                         f"({exc}): refused (an alias bomb?)") from None
    except _DuplicateKey as exc:
        raise SuiteError(path, exc.key, f"appears twice in one mapping (lines {exc.first} and "
                         f"{exc.second}); YAML would silently keep the last") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(path, "", f"invalid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise SuiteError(path, "", "not a text file") from None
    return suite_from_dict(raw, path)


def suite_from_dict(raw, path: str = "<suite>") -> Suite:
    v = _Validator(path)
    if not isinstance(raw, dict):
        raise SuiteError(path, "", f"a suite is a mapping of keys, got {_kind(raw)}")
    v.keys(raw, TOP_KEYS, "")
    plugins = v.plugins(raw.get("plugins", []))      # before models: they register names
    for key in REQUIRED:
        if key not in raw:
            raise SuiteError(path, key, "is required")
    device = v.choice(raw.get("device", "auto"), DEVICES, "device")
    models = v.models(raw["models"])
    grid_name, sizes = v.resolutions(raw["resolutions"], models)
    backends = v.backends(raw.get("backends", [{"name": "eager", "precision": "fp32"}]), device)
    num_classes = v.positive_int(raw.get("num_classes", 19), "num_classes")
    accuracy = v.accuracy(raw["accuracy"], models, num_classes) if raw.get("accuracy") else None
    timing = v.timing(raw.get("timing", {}))
    batch_sizes = tuple(v.positive_int(b, f"batch_sizes[{i}]", MAX_BATCH) for i, b in
                        enumerate(v.nonempty_list(raw.get("batch_sizes", [1]), "batch_sizes")))
    if timing.reference not in (None, "builtin"):
        keys = [f"{m.label}@{h}x{w}/b{b}/{be.label}" for m in models
                for (h, w) in sizes for b in batch_sizes for be in backends]
        wanted = timing.reference.rsplit("/", 1)[0] if timing.reference.count("/") == 3 \
            else timing.reference
        if wanted not in keys:
            v.fail("timing.reference", f"{timing.reference!r} is neither 'builtin' nor a cell of "
                   f"this suite (e.g. {keys[0]!r})")
    return Suite(
        name=v.slug(raw["name"], "name"),
        path=path,
        raw=raw,
        description=v.string(raw.get("description", ""), "description", allow_empty=True),
        target=v.choice(raw["target"], tuple(p["key"] for p in load_profiles()), "target")
        if "target" in raw else None,
        device=device,
        models=models,
        num_classes=num_classes,
        resolutions=sizes,
        resolutions_name=grid_name,
        batch_sizes=batch_sizes,
        backends=backends,
        timing=timing,
        power=v.power(raw.get("power", {})),
        accuracy=accuracy,
        plugins=plugins,
        equivalence=v.equivalence(raw.get("equivalence", {})),
        remote=v.remote(raw.get("remote"), backends, v.autograd_fits(backends, timing)),
        executor=v.executor(raw.get("executor"), "remote" in raw, timing),
    )


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "nothing"}.get(type(value),
                                                                             type(value).__name__)


def _suggest(word: str, allowed) -> str | None:
    close = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


class _Validator:
    def __init__(self, path: str):
        self.path = path

    def fail(self, field: str, message: str, hint: str | None = None):
        raise SuiteError(self.path, field, message, hint)

    def keys(self, mapping: dict, allowed, prefix: str) -> None:
        for key in mapping:
            if key not in allowed:
                where = f"{prefix}.{key}" if prefix else str(key)
                self.fail(where, f"unknown key; allowed: {', '.join(allowed)}",
                          _suggest(key, allowed))

    def mapping(self, value, field: str) -> dict:
        if not isinstance(value, dict):
            self.fail(field, f"must be a mapping, got {_kind(value)}")
        return value

    def string(self, value, field: str, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not value.strip() and not allow_empty):
            self.fail(field, f"must be a non-empty string, got {_kind(value)}")
        return value

    def slug(self, value, field: str) -> str:
        """A name used in paths (run ids, baseline files): no separators, no '..'."""
        value = self.string(value, field)
        if not SLUG.fullmatch(value):
            self.fail(field, f"{value!r}: must be 1-64 letters, digits, '.', '_' or '-', "
                      f"starting with a letter or digit (it names files and folders)")
        return value

    def choice(self, value, allowed, field: str) -> str:
        if value not in allowed:
            self.fail(field, f"{value!r} is not one of: {', '.join(allowed)}",
                      _suggest(value, allowed))
        return value

    def positive_int(self, value, field: str, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(field, f"must be a positive integer, got {value!r}")
        if maximum is not None and value > maximum:
            self.fail(field, f"must be at most {maximum:,}, got {value:,}")
        return value

    def non_negative(self, value, field: str, integer: bool = False,
                     maximum: float | None = None):
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not finite_number(value) \
                or value < 0:
            what = "integer" if integer else "finite number"
            self.fail(field, f"must be a non-negative {what}, got {value!r}")
        if maximum is not None and value > maximum:
            self.fail(field, f"must be at most {maximum:g}, got {value!r}")
        return value

    def nonempty_list(self, value, field: str) -> list:
        if not isinstance(value, list):
            self.fail(field, f"must be a list, got {_kind(value)}")
        if not value:
            self.fail(field, "must not be empty")
        return value

    def models(self, value) -> tuple[ModelSpec, ...]:
        specs = []
        for i, entry in enumerate(self.nonempty_list(value, "models")):
            field = f"models[{i}]"
            if isinstance(entry, dict):
                self.keys(entry, ("name", "args"), field)
                if "name" not in entry:
                    self.fail(field, "a model entry needs a 'name'")
                name, args = entry["name"], self.mapping(entry.get("args", {}), field + ".args")
            else:
                name, args = entry, {}
            if not isinstance(name, str):
                self.fail(field, f"a model name must be a string, got {_kind(name)}")
            try:
                card = model_card(name)
            except UnknownModel:
                self.fail(field, f"unknown model {name!r}", _suggest(name, list_models()))
            for key, value in args.items():
                try:
                    card.check_args({key: value})
                except UsageError as exc:
                    self.fail(f"{field}.args.{key}", str(exc) + (
                        " (num_classes is set suite-wide, input_size per resolution)"
                        if key not in card.user_args else ""))
            specs.append(ModelSpec(name, tuple(sorted(args.items()))))
        return tuple(specs)

    def resolutions(self, value, models) -> tuple[str | None, tuple[tuple[int, int], ...]]:
        if isinstance(value, str):
            if value not in GRIDS:
                self.fail("resolutions", f"unknown grid {value!r}; named grids: "
                          f"{', '.join(GRIDS)}, or a list of [H, W]", _suggest(value, GRIDS))
            name, sizes = value, GRIDS[value]
        else:
            name = None
            sizes = tuple(self.size(s, f"resolutions[{i}]") for i, s in
                          enumerate(self.nonempty_list(value, "resolutions")))
        for i, (h, w) in enumerate(sizes):
            field = "resolutions" if name else f"resolutions[{i}]"
            for spec in models:
                try:
                    model_card(spec.name).check_size(h, w)
                except UsageError as exc:
                    self.fail(field, str(exc))
        if len(set(sizes)) != len(sizes):
            self.fail("resolutions", "lists the same size twice")
        return name, tuple(sizes)

    def size(self, value, field: str) -> tuple[int, int]:
        if isinstance(value, str) and "x" in value:
            parts = value.lower().split("x")
            if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
                value = [int(parts[0]), int(parts[1])]
        if not isinstance(value, list) or len(value) != 2:
            self.fail(field, f"a size is [H, W] or 'HxW', got {value!r}")
        h, w = value
        return (self.positive_int(h, field + "[0]", MAX_SIDE),
                self.positive_int(w, field + "[1]", MAX_SIDE))

    def backends(self, value, device: str) -> tuple[BackendSpec, ...]:
        specs = []
        for i, entry in enumerate(self.nonempty_list(value, "backends")):
            field = f"backends[{i}]"
            if isinstance(entry, str):
                entry = {"name": entry}
            self.mapping(entry, field)
            self.keys(entry, ("name", "precision", "options"), field)
            if "name" not in entry:
                self.fail(field, "a backend entry needs a 'name'")
            name = self.choice(entry["name"], tuple(BACKENDS), field + ".name")
            precision = self.choice(entry.get("precision", "fp32"), tuple(PRECISIONS),
                                    field + ".precision")
            options = self.mapping(entry.get("options") or {}, field + ".options")
            try:
                backend = create_backend(name, options)
            except ValueError as exc:
                self.fail(field + ".options", str(exc))
            if device == "cpu" and name != "trtexec":       # trtexec runs on its own GPU
                reason = backend.unavailable_reason("cpu", precision)
                if reason and "not installed" not in reason:
                    self.fail(field, f"{name} {precision} cannot run with device: cpu: {reason}")
            given = {k: v for k, v in options.items()           # defaults do not make a new cell
                     if v != backend.OPTIONS[k].default}
            spec = BackendSpec(name, precision, tuple(sorted(given.items(), key=str)))
            if spec in specs:
                self.fail(field, f"{spec.label} is listed twice")
            specs.append(spec)
        return tuple(specs)

    def autograd_fits(self, backends, timing):
        """``timing.autograd: true`` with a compile mode that captures CUDA graphs: cudagraph
        trees take their fast path only without autograd (with it, every call re-records and
        memory grows), so the cell would time neither mode as it runs in production."""
        if timing.autograd:
            from .measure.backends.compiled import CUDAGRAPH_MODES
            for i, spec in enumerate(backends):
                mode = dict(spec.options).get("mode")
                if spec.name == "compile" and mode in CUDAGRAPH_MODES:
                    self.fail("timing.autograd", f"true with backends[{i}] compile mode {mode}: "
                              f"that mode captures CUDA graphs (cudagraph trees), whose fast "
                              f"path needs autograd off (with it every call re-records and "
                              f"memory grows); use mode max-autotune-no-cudagraphs or default, "
                              f"or timing.autograd: false")
        return timing

    def timing(self, value) -> TimingConfig:
        value = self.mapping(value, "timing")
        allowed = tuple(f.name for f in fields(TimingConfig))
        self.keys(value, allowed, "timing")
        defaults = TimingConfig()
        out = {}
        for key, given in value.items():
            field = f"timing.{key}"
            default = getattr(defaults, key)
            if key == "protocol":
                out[key] = self.choice(given, PROTOCOLS, field)
            elif key == "threads":
                out[key] = None if given is None else \
                    self.positive_int(given, field, TIMING_MAXIMA[key])
            elif isinstance(default, bool):
                if not isinstance(given, bool):
                    self.fail(field, f"must be true or false, got {given!r}")
                out[key] = given
            elif key == "reference":
                if given is not None and not isinstance(given, str):
                    self.fail(field, f"must be 'builtin' or a cell id of this suite, got "
                              f"{given!r}")
                out[key] = given
            elif key == "seed":
                if isinstance(given, bool) or not isinstance(given, int):
                    self.fail(field, f"must be an integer, got {given!r}")
                out[key] = given
            elif key in ("iterations", "min_iterations", "max_iterations", "keep_samples",
                         "repeats", "processes"):
                out[key] = self.positive_int(given, field, TIMING_MAXIMA[key])
            elif key == "warmup":
                out[key] = self.non_negative(given, field, integer=True,
                                             maximum=TIMING_MAXIMA[key])
            else:
                out[key] = self.non_negative(given, field, maximum=TIMING_MAXIMA.get(key))
                if key in ("max_time_s", "target_ci_rel") and given == 0:
                    self.fail(field, "must be greater than 0")
        cfg = TimingConfig(**out)
        if cfg.reference_interleave and (not cfg.reference or cfg.protocol != "robust"):
            self.fail("timing.reference_interleave", "needs timing.reference (builtin or a "
                      "cell id) and protocol: robust (the pairs are timed per iteration)")
        if cfg.min_iterations > cfg.max_iterations:
            self.fail("timing.min_iterations", "must not exceed timing.max_iterations")
        return cfg

    def power(self, value) -> PowerConfig:
        value = self.mapping(value, "power")
        self.keys(value, ("sampler", "interval_ms", "idle_s", "duration_s", "cooldown_s"),
                  "power")
        for key in ("idle_s", "duration_s"):
            if key in value and (self.non_negative(value[key], f"power.{key}",
                                                   maximum=MAX_SECONDS) == 0):
                self.fail(f"power.{key}", "must be greater than 0")
        return PowerConfig(
            sampler=self.choice(value.get("sampler", "none"), SAMPLERS, "power.sampler"),
            interval_ms=self.positive_int(value.get("interval_ms", 100), "power.interval_ms",
                                          60_000),
            idle_s=value.get("idle_s", 1.0), duration_s=value.get("duration_s", 2.0),
            cooldown_s=self.non_negative(value.get("cooldown_s", 0.0), "power.cooldown_s",
                                         maximum=MAX_SECONDS))

    def remote(self, value, backends, timing) -> tuple:
        """``remote:`` one board or a list of boards (ssh://user@host:port, user@host, an
        ~/.ssh/config alias, or a mapping of RemoteSpec fields)."""
        if value is None:
            return ()
        from .remote.transport import parse_remote
        entries = value if isinstance(value, list) else [value]
        if not entries:
            self.fail("remote", "is an empty list")
        specs = []
        for i, entry in enumerate(entries):
            field = "remote" if not isinstance(value, list) else f"remote[{i}]"
            try:
                specs.append(parse_remote(entry))
            except (ValueError, TypeError) as exc:
                self.fail(field, str(exc))
        if len({s.label for s in specs}) != len(specs):
            self.fail("remote", "lists the same board twice")
        if not any(b.name == "trtexec" for b in backends):
            self.fail("remote", "boards run trtexec cells: add {name: trtexec, precision: fp16} "
                      "to backends")
        for key in ("repeats", "processes"):
            if getattr(timing, key) > 1:
                self.fail(f"timing.{key}", f"{key} > 1 are not supported with remote boards "
                          f"(run the suite again and compare the runs)")
        return tuple(specs)

    def executor(self, value, remote: bool, timing) -> ExecutorSpec:
        """``executor:`` a name, or ``{name: NAME, options: {...}}`` (an executor's options may
        also sit beside ``name``: ``{name: ray, address: auto}``)."""
        if value is None:
            return ExecutorSpec("boards" if remote else "local")
        if isinstance(value, str):
            name, options, beside = value, {}, {}
        else:
            value = self.mapping(value, "executor")
            if "name" not in value:
                self.fail("executor.name", f"is required; allowed: {', '.join(EXECUTOR_OPTIONS)}")
            name = value["name"]
            options = dict(self.mapping(value.get("options") or {}, "executor.options"))
            beside = {k: v for k, v in value.items() if k not in ("name", "options")}
            for key in beside:
                if key in options:
                    self.fail(f"executor.{key}", "is given twice (beside name and in options)")
            options.update(beside)
        name = self.choice(name, tuple(EXECUTOR_OPTIONS), "executor.name"
                           if not isinstance(value, str) else "executor")
        problem = option_error(name, options)
        if problem:
            key = problem[0]
            self.fail(f"executor.{key}" if key in beside else f"executor.options.{key}",
                      problem[1])
        if remote and name != "boards":
            self.fail("executor", f"remote: boards run as the boards executor, not {name!r} "
                      f"(drop executor:, or drop remote:)")
        if name != "local" and timing.processes > 1:
            self.fail("timing.processes", f"the repeats run in fresh processes under the "
                      f"local executor only (the {name} executor runs each cell's repeats in "
                      f"one worker); use executor: local, or drop timing.processes")
        if name not in ("local", "boards") and timing.reference not in (None, "builtin"):
            self.fail("timing.reference", f"a suite cell as reference is timed in the same "
                      f"rounds as every other cell, which only the local executor does; the "
                      f"{name} executor runs each cell by itself (use reference: builtin, or "
                      f"reference_interleave: true)")
        return ExecutorSpec(name, options)

    def equivalence(self, value) -> EquivalenceConfig:
        if isinstance(value, bool):
            return EquivalenceConfig(enabled=value)
        value = self.mapping(value, "equivalence")
        self.keys(value, ("enabled", "min_argmax_agreement"), "equivalence")
        enabled = value.get("enabled", True)
        if not isinstance(enabled, bool):
            self.fail("equivalence.enabled", f"must be true or false, got {enabled!r}")
        share = value.get("min_argmax_agreement", 0.995)
        if not finite_number(share) or not 0 < share <= 1:
            self.fail("equivalence.min_argmax_agreement",
                      f"must be a share in (0, 1], e.g. 0.995, got {share!r}")
        return EquivalenceConfig(enabled, float(share))

    def _path(self, value, field: str) -> str:
        value = self.string(value, field)
        path = Path(value).expanduser()
        if not path.is_absolute() and self.path not in ("<suite>", "<resumed>"):
            path = Path(self.path).parent / path
        return str(path)

    def accuracy(self, value, models, num_classes: int) -> AccuracySpec:
        value = self.mapping(value, "accuracy")
        self.keys(value, ACCURACY_KEYS, "accuracy")
        dataset = self.choice(value.get("dataset", "cityscapes"), tuple(NUM_CLASSES),
                              "accuracy.dataset")
        if num_classes != NUM_CLASSES[dataset]:
            self.fail("num_classes", f"is {num_classes}, but accuracy.dataset {dataset} has "
                      f"{NUM_CLASSES[dataset]} classes")
        root = self._path(value["root"], "accuracy.root") if value.get("root") else None
        split = self.string(value.get("split", "val"), "accuracy.split")
        limit = value.get("limit")
        if limit is not None:
            self.positive_int(limit, "accuracy.limit")
        scales = value.get("scales", [1.0])
        for i, scale in enumerate(self.nonempty_list(scales, "accuracy.scales")):
            if not finite_number(scale) or not 0 < scale <= MAX_SCALE:
                self.fail(f"accuracy.scales[{i}]", f"must be a positive finite number up to "
                          f"{MAX_SCALE:g}, got {scale!r}")
        flip = value.get("flip", False)
        if not isinstance(flip, bool):
            self.fail("accuracy.flip", f"must be true or false, got {flip!r}")
        cfg = EvalConfig(dataset=dataset, root=root, split=split, limit=limit,
                         eval_at=self.choice(value.get("eval_at", "full"), EVAL_AT,
                                             "accuracy.eval_at"),
                         scales=tuple(float(s) for s in scales), flip=flip)
        try:
            open_dataset(dataset, root, split).samples
        except DatasetError as exc:
            self.fail("accuracy.root", str(exc))
        return AccuracySpec(cfg, self.weights(value.get("weights") or {}, models))

    def weights(self, value, models) -> tuple[tuple[str, str], ...]:
        value = self.mapping(value, "accuracy.weights")
        known = {m.label for m in models} | {m.name for m in models}
        out = []
        for key, path in value.items():
            field = f"accuracy.weights.{key}"
            if key not in known:
                self.fail(field, f"{key!r} is not a model of this suite; models: "
                          f"{', '.join(sorted(known))}", _suggest(key, known))
            path = self._path(path, field)
            if not Path(path).is_file():
                self.fail(field, f"{path}: no such checkpoint file")
            out.append((key, path))
        return tuple(out)

    def plugins(self, value) -> tuple:
        from .plugins import PluginError, load_plugin

        if not isinstance(value, list):
            self.fail("plugins", f"must be a list of files or modules, got {_kind(value)}")
        base = Path(self.path).parent if self.path not in ("<suite>", "<resumed>") else None
        out = []
        for i, item in enumerate(value):
            spec, prefix = self.plugin_item(item, f"plugins[{i}]")
            try:
                out.append(load_plugin(spec, base, prefix))
            except PluginError as exc:
                self.fail(f"plugins[{i}]", str(exc))
        return tuple(out)

    def plugin_item(self, item, field: str) -> tuple[str, str]:
        """A file or module, or ``{path: FILE, prefix: main_}`` (its models registered as
        ``main_<name>``: the main branch's version of a model beside the pull request's)."""
        if not isinstance(item, dict):
            return self.string(item, field), ""
        self.keys(item, ("path", "prefix"), field)
        if "path" not in item:
            self.fail(f"{field}.path", "missing (the plugin file or module)")
        prefix = self.string(item.get("prefix", ""), f"{field}.prefix", allow_empty=True)
        if prefix and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
            self.fail(f"{field}.prefix", f"must be a Python identifier, got {prefix!r}")
        return self.string(item["path"], f"{field}.path"), prefix
