"""``boards``: trtexec cells on Jetson boards over SSH (or on this machine's own trtexec).

The host analyses and exports each cell; the board builds the engine and times it with
trtexec (tegrastats beside it for power). One worker thread per board, one cell per board at a
time (never two benchmarks on one board), cells spread over the boards in the order they free
up; a board that drops out leaves its cells to the others (``remote.scheduler``)."""
from __future__ import annotations

import threading
import traceback

import torch

from .. import records
from ..measure.contract import check_logits
from ..measure.equivalence import eager_fp32_forward
from ..zoo import create_model, model_card
from .base import Executor, Where
from .stages import CellContext, _stage_analyse, model_kwargs

_HOST_WORK = threading.Lock()


class BoardsExecutor(Executor):
    """``boards``: the suite's ``remote:`` boards, or (``local_trtexec``) this machine."""

    name = "boards"

    def __init__(self, ctx, options=None, remotes=()):
        super().__init__(ctx, options)
        self.remotes = tuple(remotes)

    def accepts(self, cell) -> str | None:
        from ..measure.backends import create_backend

        backend = create_backend(cell.backend, cell.backend_options)
        if backend.capabilities.in_process:
            return (f"the suite runs on remote boards, which run trtexec cells only; "
                    f"{cell.backend_label} would run on this workstation instead")
        return backend.unavailable_reason(cell.device, cell.precision, remote=bool(self.remotes))

    def run(self, cells: list, on_record, on_start=None) -> None:
        from ..remote.executor import TrtexecExecutor
        from ..remote.scheduler import run_on_boards
        from ..remote.transport import BoardUnreachable, LocalTransport, SshTransport

        suite, run_id = self.ctx.suite, self.ctx.run_id
        try:
            transports = [SshTransport(spec) for spec in self.remotes] or [LocalTransport()]
        except BoardUnreachable as exc:
            for cell in cells:
                on_record(records.failed(cell, suite, run_id, str(exc)))
            return
        boards = [TrtexecExecutor(t) for t in transports]
        try:
            leftovers, lost = run_on_boards(
                cells, boards, lambda cell, board: run_board_cell(cell, suite, run_id, board),
                on_record=on_record,
                on_start=lambda cell, board: on_start(cell) if on_start else None)
        finally:
            for transport in transports:
                transport.close()
        if lost:       # which boards dropped out, and why (their cells went to the others)
            self.run_info["boards_lost"] = lost
        if leftovers:
            why = "; ".join(lost.values())
            for cell in leftovers:
                on_record(records.failed(cell, suite, run_id,
                                         f"no board could run this cell: {why}"))


def run_board_cell(cell, suite, run_id: str, board) -> dict:
    """One trtexec cell: analysed and exported here, built and timed where ``board`` runs
    trtexec. A board that cannot be reached raises BoardUnreachable (the scheduler gives the
    cell to another board); any other failure is this cell's ``failed`` record."""
    from ..remote.transport import BoardUnreachable

    record = records.started(cell, suite, run_id)
    where = Where("boards", cell.device)
    ctx = CellContext(cell, suite, torch.device("cpu"), None, model_kwargs(cell))
    try:
        with _HOST_WORK:        # host-side work one cell at a time; boards work in parallel
            record.update(_stage_analyse(ctx))
            weights = suite.accuracy.weights_for(cell.model) if suite.accuracy else None
            model = create_model(cell.model.name, weights=weights, **ctx.kwargs)
            example = torch.randn(cell.batch, 3, cell.height, cell.width,
                                  generator=torch.Generator().manual_seed(0))
            check_logits(eager_fp32_forward(model, example, ctx.device), cell.batch,
                         cell.num_classes, cell.height, cell.width,
                         model_card(cell.model.name).logits_stride)
        record.update(board.run_cell(cell, suite, model))
        record["status"], record["error"] = "ok", None
        record["equivalence"] = "unchecked"
        record["equivalence_reason"] = "trtexec reports timings only, not the output tensor"
    except (BoardUnreachable, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - the cell fails, the run goes on
        record.update(status="failed", error=records.one_line(exc),
                      traceback=traceback.format_exc(limit=-6))
    record["finished_at"] = records.now()
    record["executor"] = where.as_dict(host=board.transport.label, pid=None, gpu_uuid=None)
    return record
