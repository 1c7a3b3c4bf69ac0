"""``trtexec``: TensorRT's own benchmark program, run on a board over SSH (suite ``remote:``)
or on this machine where it is installed. Not an in-process backend: the runner hands these
cells to ``benchbench.remote`` (build the engine with trtexec, time it with trtexec, parse)."""
from __future__ import annotations

import os
import shutil

from .base import BackendBase, Capabilities, Option

LOCAL_FALLBACK = "/usr/src/tensorrt/bin/trtexec"


def local_trtexec() -> str | None:
    found = shutil.which("trtexec")
    if found:
        return found
    return LOCAL_FALLBACK if os.access(LOCAL_FALLBACK, os.X_OK) else None


class TrtexecBackend(BackendBase):
    name = "trtexec"
    # the runner sends these cells to an executor (boards, or this machine's trtexec)
    CAPABILITIES = Capabilities(in_process=False, dynamic_shapes=False, tensorrt_engine=True)
    OPTIONS = {
        "workspace_mib": Option(1024, kind=int, help="builder workspace (--workspace or "
                                                      "--memPoolSize=workspace:N by version)"),
        "use_cuda_graph": Option(False, (False, True)),
        "use_spin_wait": Option(True, (False, True)),
    }

    def unavailable_reason(self, device: str, precision: str, remote: bool = False) -> str | None:
        if precision not in ("fp32", "fp16"):
            return f"trtexec cells are fp32 or fp16, not {precision!r}"
        if remote:
            return None
        if local_trtexec() is None:
            return ("no trtexec on this machine (PATH, /usr/src/tensorrt/bin): point the suite "
                    "at a board with `remote:` in the suite or `bench run --remote user@host`")
        return None
