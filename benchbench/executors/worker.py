"""``python -m benchbench.executors.worker REPLY.json``: run the cell whose payload
(``RunContext.payload``) comes on standard input and write ``{"record": ...}`` (or
``{"error": ..., "traceback": ...}`` when the cell could not even start) to REPLY.json.
A payload with ``rounds`` (``timing.processes``) runs those rounds of its ``cell_ids`` and
writes ``{"rounds": ...}``."""
from __future__ import annotations

import json
import signal
import sys
import traceback


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the driver's: it stops us
    from .. import records
    from ..fileio import write_atomic
    from .local import run_rounds_payload
    from .stages import run_payload

    payload = json.loads(sys.stdin.buffer.read())
    try:
        reply = ({"rounds": run_rounds_payload(payload)} if "rounds" in payload else
                 {"record": run_payload(payload, "process")})
    except BaseException as exc:  # noqa: BLE001 - a plugin that does not import, a bad cell
        reply = {"error": records.one_line(exc), "traceback": traceback.format_exc(limit=-6)}
    write_atomic(argv[0], json.dumps(reply, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
