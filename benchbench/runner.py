"""suite -> cells -> executors -> records. The runner schedules: which cells are left (resume,
retries), which executor runs each (the first that accepts it), and it is the one writer of
``records.jsonl``. It never knows where a cell ran; every record says so itself (``executor``).
A failing cell becomes a ``failed`` record and the run goes on; an interrupted run keeps every
finished cell and can resume."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import env, executors, records
from .cells import Cell, expand, resolve_device
from .errors import BenchError, ExecutorError, UsageError
from .executors import RunContext, create_executor
from .executors.stages import run_cell  # noqa: F401 - the public one-cell entry point
from .fileio import WriteFailed
from .signals import Terminated, interrupts_unwind, raise_if_lost
from .store import RunStore, current_records, new_run_id
from .suite import Suite, suite_from_dict


class Interrupted(BenchError):
    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class RunStopped(BenchError):
    """The run could not go on (its disk is full); what it finished is kept."""


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    total: int
    ran: int
    ok: int
    failed: int
    skipped: int
    already_done: int


class Progress:
    """What the runner tells about its progress; the CLI decides how to show it."""

    def start(self, total: int, done: int) -> None: ...

    def cell_started(self, cell: Cell) -> None: ...

    def cell_done(self, record: dict) -> None: ...

    def close(self) -> None: ...


def _summary(store: RunStore, cells: list[Cell], ran: int, done_before: int) -> RunSummary:
    ids = {c.id for c in cells}
    current = [r for r in current_records(store.records()) if r.get("cell_id") in ids]
    count = {k: sum(r.get("status") == k for r in current) for k in ("ok", "failed", "skipped")}
    return RunSummary(store.run_dir, len(cells), ran, count["ok"], count["failed"],
                      count["skipped"], done_before)


def _open_resumed(resume, allow_env_change: bool):
    store = RunStore.open_for_resume(resume)
    try:
        return _check_resumable(store, allow_env_change)
    except BaseException:
        store.close()
        raise


def _check_resumable(store: RunStore, allow_env_change: bool):
    info = store.run_info()
    for key in ("suite", "device", "run_id"):
        if key not in info:
            raise UsageError(f"{store.run_dir / 'run.json'}: not a benchbench run (no {key!r})")
    from .plugins import load_plugin
    for plugin in info.get("plugins", []):      # the run's own models, before its suite
        load_plugin(plugin["source"], prefix=plugin.get("prefix", ""))
    suite = suite_from_dict(info["suite"], info.get("suite_path", "<resumed>"))
    now = env.collect()
    diffs = env.differences(info.get("environment"), now)
    if diffs and not allow_env_change:
        raise UsageError(f"{store.run_dir}: this machine differs from the run's ({'; '.join(diffs)}); "
                         f"resuming would mix environments (--allow-env-change to do it anyway, "
                         f"recorded in run.json)")
    return store, info, suite, now, diffs


def run_suite(suite: Suite | str | Path | None = None, out_dir: str | Path = "results",
              resume: str | Path | None = None, progress: Progress | bool | None = None,
              run_id: str | None = None, retry_failed: bool = False,
              allow_env_change: bool = False, plugins=()) -> RunSummary:
    """Run every cell of ``suite`` (a Suite or a YAML path), or the missing cells of the run
    directory ``resume`` (with ``retry_failed``, also its failed and skipped cells, whose old
    records are kept, marked superseded)."""
    if isinstance(suite, (str, Path)):
        from .suite import load_suite
        suite = load_suite(suite)
    with interrupts_unwind():
        store, suite, run_id, resumed = _open_store(suite, out_dir, resume, run_id,
                                                    allow_env_change, plugins)
        try:
            return _run_store(store, suite, run_id, resumed, progress, retry_failed)
        finally:
            store.close()


def _open_store(suite, out_dir, resume, run_id, allow_env_change, plugins):
    """A new run directory for ``suite``, or the locked run directory ``resume``."""
    if resume is not None:
        store, info, suite, now, diffs = _open_resumed(resume, allow_env_change)
        if executors.missing(suite.executor.name):
            store.close()
            raise UsageError(executors.missing(suite.executor.name))
        resumed = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "info": info,
                   "record": {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "environment_differences": diffs,
                              **({"environment": now} if diffs else {})}}
        return store, suite, info["run_id"], resumed
    if executors.missing(suite.executor.name):      # before the run directory is made
        raise UsageError(executors.missing(suite.executor.name))
    run_id = run_id or new_run_id(suite.name)
    store = RunStore.create(out_dir, run_id, {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "suite_path": suite.path,
        "suite_sha256": suite.sha256, "suite": suite.raw,
        "device": resolve_device(suite.device),
        "plugins": [p.as_dict() for p in (*plugins, *suite.plugins)],
        "timing": suite.timing.as_dict(), "environment": env.collect(),
        "suite_commit": _suite_commit(suite)})
    return store, suite, run_id, None


def _suite_commit(suite: Suite) -> str | None:
    """The commit of the repository the suite file is in (the user's models and plugins):
    what ``bench history`` puts on its axis."""
    path = Path(suite.path)
    return env.git_commit(path.parent) if path.is_file() else None


def _run_store(store: RunStore, suite: Suite, run_id: str, resumed, progress,
               retry_failed: bool) -> RunSummary:
    """The cells of ``store`` still to run, run; the summary of the whole run."""
    info = resumed["info"] if resumed else store.run_info()
    device = info["device"]
    cells = expand(suite, device)
    current = current_records(store.records())
    if retry_failed:
        again = {r["cell_id"] for r in current if r.get("status") in ("failed", "skipped")}
        if again:
            store.supersede(again)
        current = [r for r in current if r["cell_id"] not in again]
    done = {r["cell_id"] for r in current}
    todo = [c for c in cells if c.id not in done]
    if resumed is not None and todo:
        store.update_info(resumes=store.run_info().get("resumes", []) + [
            dict(resumed["record"], retry_failed=retry_failed)])
    reporter = Progress() if progress in (None, False, True) else progress
    try:
        ran = run_cells(todo, suite, run_id, store, reporter, total=len(cells))
        if todo or not store.run_info().get("completed_at"):
            store.update_info(completed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    except KeyboardInterrupt as exc:
        reporter.close()
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        raise Interrupted(f"{how} after {_finished(store, cells)} of {len(cells)} cells; "
                          f"finished cells are kept. Resume with: bench run --resume "
                          f"{store.run_dir}", getattr(exc, "exit_code", 130)) from None
    except ExecutorError as exc:
        reporter.close()
        raise RunStopped(f"{exc}; the run stopped after {_finished(store, cells)} of "
                         f"{len(cells)} cells, which are kept. Resume with: bench run "
                         f"--resume {store.run_dir}") from None
    except WriteFailed as exc:
        reporter.close()
        raise RunStopped(f"{exc}; the run stopped after {_finished(store, cells)} of "
                         f"{len(cells)} cells, which are kept. Free space there and resume "
                         f"with: bench run --resume {store.run_dir}") from None
    reporter.close()
    return _summary(store, cells, ran, len(cells) - len(todo))


def _finished(store: RunStore, cells: list[Cell]) -> int:
    ids = {c.id for c in cells}
    return sum(r.get("cell_id") in ids for r in current_records(store.records()))



def run_cells(todo: list[Cell], suite: Suite, run_id: str, store: RunStore, reporter,
              total: int) -> int:
    """Hand each of ``todo`` to the first executor that accepts it (the suite's executor, then
    this machine's trtexec for the cells only trtexec runs), cells no executor accepts become
    ``skipped`` with the reason; every record is appended here, as it comes. Returns how many
    cells were run."""
    reporter.start(total, total - len(todo))
    info = store.run_info()
    ctx = RunContext(suite, run_id, store.run_dir, tuple(info.get("plugins", [])),
                     info["device"])
    chain = _executors(suite, ctx)
    writer = _RecordWriter(store, reporter)
    try:
        plan, refused = {id(e): [] for e in chain}, []
        for cell in todo:
            reasons = [e.accepts(cell) for e in chain]
            chosen = next((e for e, r in zip(chain, reasons) if r is None), None)
            if chosen is None:
                refused.append(records.skipped(cell, suite, run_id, reasons[0], executor=None))
            else:
                plan[id(chosen)].append(cell)
        for executor in chain:
            if plan[id(executor)]:
                executor.run(plan[id(executor)], writer,
                             on_start=lambda cell: _started(cell, reporter))
            if executor.run_info:
                store.update_info(**executor.run_info)
        for record in refused:
            writer(record)
        raise_if_lost()
    finally:
        for executor in chain:
            executor.close()
    return len(todo)


def _started(cell: Cell, reporter) -> None:
    """Before a cell (or a round of it) starts: a Ctrl-C or SIGTERM that was swallowed since
    the last one (see ``signals``) stops the run here."""
    raise_if_lost()
    reporter.cell_started(cell)


def _executors(suite: Suite, ctx: RunContext) -> list:
    spec = suite.executor
    primary = create_executor(spec, ctx, **({"remotes": suite.remote}
                                            if spec.name == "boards" else {}))
    chain = [primary]
    if spec.name != "boards" and _local_trtexec():     # trtexec cells: this machine's trtexec
        from .executors import ExecutorSpec
        chain.append(create_executor(ExecutorSpec("boards"), ctx, remotes=()))
    return chain


def _local_trtexec() -> bool:
    from .measure.backends.trtexec import local_trtexec
    return local_trtexec() is not None


class _RecordWriter:
    """The one writer of a run's records: appends each, after the check that no two cells were
    timed at the same time on one GPU (the later one fails: its numbers are not its own)."""

    def __init__(self, store: RunStore, reporter):
        self.store, self.reporter = store, reporter
        self.timed: list[tuple[str, float, float, str]] = []   # (gpu_uuid, t0, t1, cell_id)

    def __call__(self, record: dict) -> None:
        record = self._check_gpu_overlap(record)
        self.store.append(record)
        self.reporter.cell_done(record)

    def _check_gpu_overlap(self, record: dict) -> dict:
        where = record.get("executor") or {}
        uuid = where.get("gpu_uuid")
        if not uuid or record.get("status") != "ok":
            return record
        t0, t1 = where.get("started_unix"), where.get("finished_unix")
        if t0 is None or t1 is None:
            return record
        other = next((c for u, a, b, c in self.timed if u == uuid and a < t1 and t0 < b), None)
        self.timed.append((uuid, t0, t1, record["cell_id"]))
        if other is None:
            return record
        return records.fail(record, (
            f"timed while {other} was timed on the same GPU ({uuid}): two benchmarks on one "
            f"GPU slow each other down, so neither time is the model's own; give each timing "
            f"cell a GPU to itself (slurm: exclusive, ray: num_gpus=1)"))
