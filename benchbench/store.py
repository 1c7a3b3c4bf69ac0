"""Append-only run directories: ``run.json`` (suite as loaded, environment, protocol) and
``records.jsonl`` (one JSON line per finished cell, appended with one ``write`` and fsynced).

A SIGKILL can at worst leave a torn last line; readers skip it and ``open_for_resume`` cuts it
off before appending, so the file only ever holds whole JSON lines.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .errors import UsageError

SCHEMA_VERSION = 1


def new_run_id(suite_name: str) -> str:
    return f"{suite_name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid() % 10000:04d}"


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


class RunStore:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.records_path = self.run_dir / "records.jsonl"

    @classmethod
    def create(cls, out_dir: str | Path, run_id: str, run_info: dict) -> "RunStore":
        run_dir = Path(out_dir) / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        store = cls(run_dir)
        _write_json_atomic(run_dir / "run.json", {"schema_version": SCHEMA_VERSION,
                                                  "run_id": run_id, **run_info})
        store.records_path.touch()
        return store

    @classmethod
    def open_for_resume(cls, run_dir: str | Path) -> "RunStore":
        store = cls(Path(run_dir))
        if not (store.run_dir / "run.json").is_file():
            raise UsageError(f"{run_dir}: not a run directory (no run.json)")
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
        line = (json.dumps(record, default=str, allow_nan=True) + "\n").encode()
        fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

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
        tmp = self.records_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join((json.dumps(r, default=str) + "\n").encode() for r in records))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.records_path)
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
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: corrupt run.json ({exc.msg} at line {exc.lineno})") from None


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
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:   # torn tail from a killed writer
                continue
            raise UsageError(f"{path}:{i + 1}: not a JSON record") from None
    return out
