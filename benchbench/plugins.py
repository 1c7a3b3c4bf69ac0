"""Users' own models: a plugin is a Python file (a path, relative to the suite that names it) or
an importable module that calls ``benchbench.register_model``. Plugins are imported before a
suite is validated, so their models are valid names; every problem is one ``PluginError`` line
naming the plugin (exit code 2)."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UsageError
from .zoo._registry import DuplicateModel, _unregister, name_prefix, registered_names


class PluginError(UsageError):
    pass


@dataclass(frozen=True)
class PluginInfo:
    spec: str                        # as given
    source: str                      # resolved file, or the module's file
    sha256: str | None
    models: tuple[str, ...]          # names it registered
    prefix: str = ""                 # put before every name it registers

    def as_dict(self) -> dict:
        return asdict(self)


_LOADED: dict[str, PluginInfo] = {}


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _where(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" at {Path(exc.filename).name}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<frozen")]
    return f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def load_plugin(spec: str, base_dir: str | Path | None = None, prefix: str = "") -> PluginInfo:
    """Import one plugin (once per process and prefix) and check that each model it registers
    builds. With ``prefix`` its models are registered as ``prefix + name``."""
    if _is_file_spec(spec):
        path = Path(spec).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        path = path.resolve()
        key = str(path)
    else:
        path, key = None, spec
    key += f"|{prefix}" if prefix else ""
    if key in _LOADED:
        return _LOADED[key]
    before = set(registered_names())
    try:
        if path is None and prefix and spec in sys.modules:
            raise PluginError(f"plugin {spec}: already imported; a prefix applies to a module "
                              f"imported for the first time (give its file instead)")
        with name_prefix(prefix):
            module = _import(spec, path, key)
    except PluginError:
        raise
    except DuplicateModel as exc:
        raise PluginError(f"plugin {spec}: {exc}; pick another name") from None
    except ModuleNotFoundError as exc:
        raise PluginError(f"plugin {spec}: cannot import ({exc})") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code: one line
        raise PluginError(f"plugin {spec}: import failed{_where(exc)}: "
                          f"{type(exc).__name__}: {exc}") from None
    new = tuple(sorted(set(registered_names()) - before))
    try:
        for name in new:
            _check_builds(spec, name)
    except PluginError:
        for name in new:
            _unregister(name)
        raise
    source = str(path) if path is not None else getattr(module, "__file__", spec)
    sha = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source and \
        Path(source).is_file() else None
    info = PluginInfo(spec, source, sha, new, prefix)
    _LOADED[key] = info
    return info


def _import(spec: str, path: Path | None, key: str):
    if path is None:
        return importlib.import_module(spec)
    if not path.is_file():
        raise PluginError(f"plugin {spec}: no such file ({path})")
    module_name = "benchbench_plugin_" + hashlib.sha1(key.encode()).hexdigest()[:12]
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    loader_spec.loader.exec_module(module)
    return module


def _check_builds(spec: str, name: str) -> None:
    import torch

    from .zoo import model_card

    card = model_card(name)
    try:
        with torch.device("meta"):
            card.builder()
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        raise PluginError(f"plugin {spec}: model {name!r} does not build{_where(exc)}: "
                          f"{type(exc).__name__}: {exc}") from None


def load_plugins(specs, base_dir=None) -> list[PluginInfo]:
    return [load_plugin(s, base_dir) for s in specs]
