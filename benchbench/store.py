"""Append-only run directories: ``run.json`` (suite as loaded, environment, protocol) and
``records.jsonl`` (one JSON line per finished cell, appended with one ``write`` and fsynced).

A SIGKILL can at worst leave a torn last line; readers skip it and ``open_for_resume`` cuts it
off before appending, so the file only ever holds whole JSON lines.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import time
from pathlib import Path

from .errors import BenchError, UsageError
from .fileio import append_line, write_atomic

SCHEMA_VERSION = 1


def new_run_id(suite_name: str) -> str:
    """Name, time and 6 random hex digits: two containers started in the same second (often
    with the same PID) still get two run ids; ``RunStore.create`` never reuses a directory."""
    return f"{suite_name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str))


class RunLocked(BenchError):
    """Another process writes to this run directory."""

    exit_code = 2


class RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/.lock`` for as long as a process writes the run; the
    file says who holds it. The kernel drops the lock when its holder dies (even by kill -9),
    so a stale lock file never blocks a resume."""

    def __init__(self, run_dir: Path):
        import fcntl

        self.path = Path(run_dir) / ".lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 512, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise RunLocked(f"{run_dir}: another bench process is writing this run ({holder}); "
                            f"wait for it to finish or stop it first") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                  f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class RunStore:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.records_path = self.run_dir / "records.jsonl"
        self.lock: RunLock | None = None

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @classmethod
    def create(cls, out_dir: str | Path, run_id: str, run_info: dict) -> "RunStore":
        run_dir = Path(out_dir) / run_id
        if run_dir.resolve().parent != Path(out_dir).resolve():
            raise UsageError(f"run id {run_id!r}: would write outside {out_dir}")
        run_dir.mkdir(parents=True, exist_ok=False)
        store = cls(run_dir)
        store.lock = RunLock(run_dir)
        try:
            _write_json_atomic(run_dir / "run.json", {"schema_version": SCHEMA_VERSION,
                                                      "run_id": run_id, **run_info})
            store.records_path.touch()
        except BaseException:        # no run to resume: leave no half-made directory
            store.close()
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        return store

    @classmethod
    def open_for_resume(cls, run_dir: str | Path) -> "RunStore":
        store = cls(Path(run_dir))
        if not (store.run_dir / "run.json").is_file():
            raise UsageError(f"{run_dir}: not a run directory (no run.json)")
        store.lock = RunLock(store.run_dir)
        store._cut_torn_tail()
        return store

    def run_info(self) -> dict:
        return load_run_info(self.run_dir)

    def _cut_torn_tail(self) -> None:
        if not self.records_path.exists():
            self.records_path.touch()
            return
        data = self.records_path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with open(self.records_path, "r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())

    def append(self, record: dict) -> None:
        append_line(self.records_path,
                    (json.dumps(record, default=str, allow_nan=True) + "\n").encode())

    def records(self) -> list[dict]:
        return read_records(self.records_path)

    def supersede(self, cell_ids: set[str]) -> int:
        """Mark the current records of ``cell_ids`` as superseded (before they are re-run),
        rewriting records.jsonl atomically. Returns how many records were marked."""
        records, marked = self.records(), 0
        for rec in records:
            if rec.get("cell_id") in cell_ids and not rec.get("superseded"):
                rec["superseded"] = True
                marked += 1
        write_atomic(self.records_path,
                     b"".join((json.dumps(r, default=str) + "\n").encode() for r in records))
        return marked

    def update_info(self, **fields) -> None:
        info = self.run_info()
        info.update(fields)
        _write_json_atomic(self.run_dir / "run.json", info)


def load_run_info(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a run directory (no run.json)")
    try:
        info = json.loads(path.read_bytes().decode())
    except UnicodeDecodeError:
        raise UsageError(f"{path}: corrupt run.json (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: corrupt run.json ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(info, dict):
        raise UsageError(f"{path}: corrupt run.json (a JSON object is expected, got "
                         f"{type(info).__name__})")
    return info


def current_records(records: list[dict]) -> list[dict]:
    """The records that stand: superseded ones (re-run with --retry-failed) left out, and one
    record per cell id (the last written)."""
    latest = {}
    for rec in records:
        if not rec.get("superseded"):
            latest[rec.get("cell_id")] = rec
    return list(latest.values())


def read_records(path: str | Path) -> list[dict]:
    """Every whole JSON line; a torn (unterminated, unparsable) last line is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    lines = path.read_bytes().split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode())
        except (json.JSONDecodeError, UnicodeDecodeError):
            if i == len(lines) - 1:   # torn tail from a killed writer
                continue
            raise UsageError(f"{path}:{i + 1}: not a JSON record") from None
        if not isinstance(record, dict):
            raise UsageError(f"{path}:{i + 1}: not a JSON record (a JSON object is expected, "
                             f"got {type(record).__name__})")
        out.append(record)
    return out
