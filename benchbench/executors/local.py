"""``local``: cells run on this machine, in interleaved rounds (the default executor).

Each round visits every cell once in a freshly shuffled order (seeded by ``timing.seed``; a
single round keeps the suite's order), so drift of the machine hits every cell alike; the
reference workload, if any, opens every round. The first round runs every stage of a cell,
later rounds rebuild and re-time it. A cell's record is handed on once its last round is done.

With ``timing.processes: N`` the rounds run in N fresh worker processes, one after the other,
``timing.repeats`` rounds each (pyperf's worker processes): what a process fixes once -- its
allocator's state, where its memory landed, the kernels it picked -- then varies between the
repeats too, and every repeat records its ``process``, so ``bench check`` can resample
processes first, then rounds (Kalibera & Jones 2013).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from .. import records
from .base import Executor, Where
from .stages import frozen_heap, run_round


class LocalExecutor(Executor):
    name = "local"

    def run(self, cells: list, on_record, on_start=None) -> None:
        from ..rounds import ReferenceWorkload

        suite = self.ctx.suite
        timing = suite.timing
        reference = ReferenceWorkload.for_suite(suite, cells)
        state = RoundsState(timing.repeats * timing.processes)
        where = {c.id: Where(self.name, c.device) for c in cells}
        emit = _Emitter(state, suite, self.ctx.run_id, reference, where, on_record)
        if timing.processes == 1:
            run_rounds(state, cells, suite, self.ctx.run_id, range(timing.repeats),
                       random.Random(timing.seed), reference, on_start, emit)
        else:
            for process in range(timing.processes):
                alive = [c for c in cells if state.alive(c.id)]
                if not alive:
                    break
                for cell in alive if process == 0 else ():
                    if on_start is not None:
                        on_start(cell)
                self._run_process(process, alive, state, reference)
                for cell in alive:
                    if not state.alive(cell.id) or process == timing.processes - 1:
                        emit(cell)
        if reference is not None:
            self.run_info["reference"] = reference.as_dict()

    def _run_process(self, process: int, cells: list, state: "RoundsState", reference) -> None:
        """Rounds ``process * repeats`` .. of ``cells`` in a fresh worker; its results merged
        into ``state`` (a worker that dies fails the cells it ran)."""
        from .process import death, run_worker

        repeats = self.ctx.suite.timing.repeats
        payload = dict(self.ctx.payload(cells[0]), cell_ids=[c.id for c in cells],
                       rounds={"first": process * repeats, "count": repeats,
                               "total": state.total, "process": process})
        reply, _, worker = run_worker(payload)
        if reply is None or "rounds" not in reply:
            why = (reply or {}).get("error") or death(worker.returncode)
            state.fail_all(cells, f"process {process + 1} of "
                                  f"{self.ctx.suite.timing.processes}: {why}")
            return
        state.merge(reply["rounds"])
        if reference is not None:
            reference.per_round_ms += reply["rounds"]["reference_ms"]


@dataclass
class RoundsState:
    """What the rounds of a set of cells gave so far: each cell's first-round record, its
    repeat summaries, and why a later round failed."""

    total: int                                    # rounds per cell, all processes together
    first: dict = field(default_factory=dict)     # cell id -> round 0's record
    repeats: dict = field(default_factory=dict)   # cell id -> [repeat summary]
    failures: dict = field(default_factory=dict)  # cell id -> why a later round failed

    def alive(self, cell_id: str) -> bool:
        """Whether the cell still runs rounds (not yet failed)."""
        first = self.first.get(cell_id)
        return cell_id not in self.failures and (first is None or first["status"] == "ok")

    def record(self, cell, round_no: int, result: dict, summary: dict | None) -> None:
        if round_no == 0:
            self.first[cell.id] = result
        if summary is not None:
            self.repeats.setdefault(cell.id, []).append(summary)
        elif round_no:
            self.failures[cell.id] = f"round {round_no + 1} of {self.total}: {result.get('error')}"

    def fail_all(self, cells: list, why: str) -> None:
        for cell in cells:
            self.failures.setdefault(cell.id, why)

    def final(self, cell_id: str) -> dict:
        record = self.first[cell_id]
        return records.fail(record, self.failures[cell_id]) if cell_id in self.failures \
            else record

    def as_reply(self, reference) -> dict:
        return {"first": self.first, "repeats": self.repeats, "failures": self.failures,
                "reference_ms": list(reference.per_round_ms) if reference is not None else []}

    def merge(self, reply: dict) -> None:
        self.first.update(reply["first"])
        for cell_id, reps in reply["repeats"].items():
            self.repeats.setdefault(cell_id, []).extend(reps)
        for cell_id, why in reply["failures"].items():
            self.failures.setdefault(cell_id, why)


class _Emitter:
    """Hands a cell's final record (with its repeats) on, once."""

    def __init__(self, state, suite, run_id, reference, where, on_record):
        self.state, self.suite, self.run_id, self.reference = state, suite, run_id, reference
        self.where, self.on_record = where, on_record

    def __call__(self, cell) -> None:
        from ..rounds import finalize

        if cell.id not in self.state.first:
            self.state.first[cell.id] = records.failed(
                cell, self.suite, self.run_id,
                self.state.failures.pop(cell.id, "the cell did not run"))
        final = finalize(self.state.final(cell.id), self.state.repeats.get(cell.id, []),
                         self.suite.timing, self.reference)
        processes = self.suite.timing.processes
        extra = {"processes": processes} if processes > 1 else {}
        final["executor"] = self.where[cell.id].as_dict(**extra)
        self.on_record(final)


@frozen_heap()
def run_rounds(state: RoundsState, cells: list, suite, run_id: str, round_numbers: range,
               rng: random.Random, reference, on_start=None, emit=None,
               process: int = 0) -> None:
    """The rounds ``round_numbers`` of ``cells`` in this process, each in a shuffled order,
    opened by the reference; ``emit(cell)`` once a cell's last round (or its failure) is in."""
    last = state.total - 1
    for round_no in round_numbers:
        order = _round_order(cells, state.total, rng)
        if reference is not None:
            reference.time_round(round_no, order, suite, run_id)
            order = [c for c in order if c.id != reference.cell_id]
            if reference.cell is not None and reference.cell in cells:
                order.insert(0, reference.cell)   # a suite cell as reference: first too
        for position, cell in enumerate(order):
            if not state.alive(cell.id):
                continue
            if on_start is not None:
                on_start(cell)
            result, summary = run_round(cell, suite, run_id, round_no, position)
            if summary is not None:
                summary["process"] = process
            state.record(cell, round_no, result, summary)
            if reference is not None and reference.cell_id == cell.id:
                reference.record_cell_round(round_no, result)
            if emit is not None and (round_no == last or not state.alive(cell.id)):
                emit(cell)


def run_rounds_payload(payload: dict) -> dict:
    """A worker's share of ``timing.processes``: the rounds ``payload['rounds']`` names, of
    the cells it lists, in this fresh process."""
    from ..rounds import ReferenceWorkload
    from .stages import payload_suite

    suite, cells = payload_suite(payload)
    cells = [c for c in cells if c.id in set(payload["cell_ids"])]
    spec = payload["rounds"]
    reference = ReferenceWorkload.for_suite(suite, cells)
    state = RoundsState(spec["total"])
    rng = random.Random(suite.timing.seed * 7919 + spec["process"])
    run_rounds(state, cells, suite, payload["run_id"],
               range(spec["first"], spec["first"] + spec["count"]), rng, reference,
               process=spec["process"])
    return state.as_reply(reference)


def _round_order(cells: list, n: int, rng: random.Random) -> list:
    order = list(cells)
    if n > 1:                 # one round keeps the suite's order
        rng.shuffle(order)
    return order
