"""``local``: cells run in this process, in interleaved rounds (the default executor).

Each round visits every cell once in a freshly shuffled order (seeded by ``timing.seed``; a
single round keeps the suite's order), so drift of the machine hits every cell alike; the
reference workload, if any, opens every round. The first round runs every stage of a cell,
later rounds rebuild and re-time it. A cell's record is handed on once its last round is done.
"""
from __future__ import annotations

import random

from .. import records
from .base import Executor, Where
from .stages import run_round


class LocalExecutor(Executor):
    name = "local"

    def run(self, cells: list, on_record, on_start=None) -> None:
        from ..rounds import ReferenceWorkload, finalize

        suite, run_id = self.ctx.suite, self.ctx.run_id
        n = suite.timing.repeats
        rng = random.Random(suite.timing.seed)
        reference = ReferenceWorkload.for_suite(suite, cells)
        done: dict[str, dict] = {}
        repeats: dict[str, list] = {c.id: [] for c in cells}
        where: dict[str, Where] = {}
        for round_no in range(n):
            order = _round_order(cells, n, rng)
            if reference is not None:
                reference.time_round(round_no, order, suite, run_id)
                order = [c for c in order if c.id != reference.cell_id]
                if reference.cell is not None and reference.cell in cells:
                    order.insert(0, reference.cell)   # a suite cell as reference: first too
            for position, cell in enumerate(order):
                if round_no and done[cell.id]["status"] != "ok":
                    continue
                if on_start is not None:
                    on_start(cell)
                where.setdefault(cell.id, Where(self.name, cell.device))
                result, summary = run_round(cell, suite, run_id, round_no, position)
                if round_no == 0:
                    done[cell.id] = result
                if summary is not None:
                    repeats[cell.id].append(summary)
                elif round_no:
                    done[cell.id] = records.fail(done[cell.id], f"round {round_no + 1} of {n}: "
                                                                f"{result.get('error')}")
                if reference is not None and reference.cell_id == cell.id:
                    reference.record_cell_round(round_no, result)
                if round_no == n - 1 or done[cell.id]["status"] != "ok":
                    final = finalize(done[cell.id], repeats[cell.id], suite.timing, reference)
                    final["executor"] = where[cell.id].as_dict()
                    on_record(final)
        if reference is not None:
            self.run_info["reference"] = reference.as_dict()


def _round_order(cells: list, n: int, rng: random.Random) -> list:
    order = list(cells)
    if n > 1:                 # one round keeps the suite's order
        rng.shuffle(order)
    return order
