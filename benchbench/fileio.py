"""Writing files so that a fault never leaves half of one: a record line is appended whole or
not at all (partial writes looped over, the file cut back to its old size on any error), and
every other output (run.json, reports, exports, baselines, JUnit / Markdown) is written to a
temporary file beside it and renamed over the old one only when complete. A failure is a
``WriteFailed`` naming the file, the filesystem it is on and the free space there."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from .errors import BenchError


class WriteFailed(BenchError):
    """A file could not be written (disk full, read-only filesystem, permissions)."""

    def __init__(self, path: str | Path, exc: OSError):
        self.path, self.errno = Path(path), exc.errno
        self.disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        super().__init__(f"cannot write {path}: {exc.strerror or exc}{_where(path)}")


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _where(path: str | Path) -> str:
    try:
        mount = _mount_point(Path(path).parent)
        free = shutil.disk_usage(mount).free
    except OSError:
        return ""
    return f" (filesystem {mount}, {_size(free)} free)"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:      # a zero-byte write would loop forever
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def append_line(path: str | Path, line: bytes) -> None:
    """Append ``line`` (ending in a newline) and fsync; on any error the file is cut back to
    the size it had, so it only ever holds whole lines."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                pass
            raise WriteFailed(path, exc) from None
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Replace ``path`` by ``data`` in one rename: readers see the old file or the new one,
    never an empty or truncated one."""
    path = Path(path)
    data = data.encode() if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteFailed(path, exc) from None
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise WriteFailed(path, exc) from None
    return path
