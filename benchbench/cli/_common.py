"""What the commands share: exit codes, JSON output, parsing of sizes and model arguments, and
checks of output paths before any work is done."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError
from ..limits import MAX_SIDE

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CELLS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141               # 128 + SIGPIPE, what `yes | head` leaves
EXIT_TERMINATED = 143                # 128 + SIGTERM: stopped like Ctrl-C, finished cells kept


def emit(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--size {text!r}: expected HxW with positive integers, e.g. 1024x2048")
    if max(int(p) for p in parts) > MAX_SIDE:
        raise UsageError(f"--size {text!r}: each side must be at most {MAX_SIDE} px")
    return int(parts[0]), int(parts[1])


def parse_model_args(pairs) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--arg {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _probe(directory: Path, flag: str, shown: Path) -> None:
    """Create ``directory`` if needed and write a file in it: permission bits say nothing for
    root, and /proc or a read-only mount only answer to a real write."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {shown}: cannot write there ({exc.strerror or exc})") from None


def writable_file(path: str | Path, flag: str) -> Path:
    """Check, before any work, that ``path`` can be written as a file."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: {path.parent} is not a directory")
    _probe(path.parent if str(path.parent) else Path("."), flag, path)
    return path


def writable_dir(path: str | Path, flag: str) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a directory")
    _probe(path, flag, path)
    return path


def add_plugin_flag(parser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE|MODULE",
                        help="import a file or module that registers models (repeatable)")


def load_cli_plugins(args) -> list:
    from ..plugins import load_plugins
    return load_plugins(getattr(args, "plugin", []) or [])
