"""Spread trtexec cells over boards: one worker thread per board, one cell at a time per board
(never two benchmarks on one board at once), records appended as cells finish. A board that
cannot be reached drops out and leaves its cell, and its remaining ones, to the others; when
no board is left the remaining cells are recorded failed with the reason, and a later
``bench run --resume`` picks them up."""
from __future__ import annotations

import queue
import threading

from .transport import BoardUnreachable

CLEANUP_WAIT_S = 60


def run_on_boards(cells: list, executors: list, run_one, on_record,
                  on_start=None) -> tuple[list, dict]:
    """``run_one(cell, executor) -> record`` (raises BoardUnreachable when the board is gone);
    ``on_record(record)`` is called under a lock, in completion order. An interrupt of the
    calling thread (Ctrl-C, SIGTERM) calls every executor's ``cancel()`` and waits for the
    workers' clean-up before it propagates; cells stopped midway are not recorded. An
    ``on_record`` that raises (a full disk) stops every board the same way and is re-raised.
    Returns the cells no board could run and, per lost board, why."""
    todo: queue.Queue = queue.Queue()
    for cell in cells:
        todo.put(cell)
    lock = threading.Lock()
    lost: dict = {}
    state = {"remaining": len(cells)}
    stop = threading.Event()

    def worker(executor):
        while not stop.is_set():
            with lock:
                if state["remaining"] == 0:
                    return
            try:      # wait too while another board still has a cell it may give back
                cell = todo.get(timeout=0.2)
            except queue.Empty:
                continue
            if on_start is not None:
                with lock:
                    on_start(cell, executor)
            try:
                record = run_one(cell, executor)
            except BoardUnreachable as exc:
                with lock:
                    lost[executor.transport.label] = str(exc)
                todo.put(cell)            # for a board that is still there
                return
            with lock:
                if stop.is_set():         # stopped mid-cell: a resume runs it again
                    return
                state["remaining"] -= 1
                try:
                    on_record(record)
                    continue
                except BaseException as exc:  # noqa: BLE001 - a full disk: the caller's to say
                    state["error"] = exc
                    stop.set()
            for other in executors:       # the run stops: so does every board's cell
                if other is not executor:
                    other.cancel()
            return

    threads = [threading.Thread(target=worker, args=(e,), daemon=True) for e in executors]
    for t in threads:
        t.start()
    try:
        for t in threads:           # all done, or every board gone
            t.join()
    except BaseException:           # Ctrl-C / SIGTERM: stop the boards' work, then unwind
        stop.set()
        for executor in executors:
            executor.cancel()
        for t in threads:           # their clean-up (work dirs, the host's ONNX copies)
            t.join(timeout=CLEANUP_WAIT_S)
        raise
    if "error" in state:            # recording a result failed (disk full): the run stops
        raise state["error"]
    leftovers = []
    while not todo.empty():
        leftovers.append(todo.get_nowait())
    return leftovers, lost
