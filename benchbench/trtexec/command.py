"""trtexec command lines for the TensorRT version on the machine that runs them.

Which flag exists where is read from trtexec's sources at each release
(shared/data/trtexec/FLAGS.md): ``--workspace`` (MiB) until 8.4, then ``--memPoolSize=
workspace:N`` (``--workspace`` removed in 10.0); ``--buildOnly`` until 8.6, then
``--skipInference``; ``--explicitBatch`` needed for ONNX before 8.2 (no effect from 8.2, removed
in 10.0); ``--fp16`` up to 10.x and gone in 11.x (fp16 must come from the ONNX graph itself:
strongly typed networks only); ``--noDataTransfers`` from 7.2, and in 11.x data transfers are off
by default (``--includeDataTransfers`` turns them on); CUDA graphs and spin-wait are on by
default in 11.x (``--noCudaGraph`` / ``--noSpinWait``), opt-in before (``--useCudaGraph`` /
``--useSpinWait``); ``--percentile`` takes one value until 8.4, a list from 8.5.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

OLDEST = (7, 0)                 # --warmUp, --duration and --exportTimes exist from 6.0/7.0
NEWEST = (12, 0)                # exclusive


def parse_version(text: str) -> tuple[int, ...] | None:
    """``8.2.1`` / ``10.14.1.48`` / a banner ``[TensorRT v8201]`` -> (8, 2, 1)."""
    banner = re.search(r"\[TensorRT v(\d+)\]", text)
    if banner:
        from .parse import version_from_banner
        text = version_from_banner(banner.group(1))
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


@dataclass(frozen=True)
class TrtexecSettings:
    precision: str = "fp16"          # fp32 | fp16
    workspace_mib: int = 1024
    warmup_ms: int = 200
    iterations: int = 10             # at least this many timed inferences ...
    duration_s: float = 3.0          # ... and at least this long
    include_transfer: bool = False   # H2D / D2H inside each timed inference
    use_cuda_graph: bool = False     # benchbench's default: like the eager timing, no graphs
    use_spin_wait: bool = True       # more stable timings (trtexec's advice)

    def as_dict(self) -> dict:
        from dataclasses import asdict
        return asdict(self)


class UnsupportedVersion(ValueError):
    pass


def fp16_from_graph(version: tuple) -> bool:
    """TensorRT 11 has no --fp16: an fp16 engine needs an fp16 ONNX graph."""
    return version >= (11, 0)


def check_version(version: tuple | None) -> tuple:
    if version is None:
        raise UnsupportedVersion("cannot tell the TensorRT version of this trtexec (no "
                                 "'[TensorRT vNNNN]' in its banner)")
    if not OLDEST <= version[:2] < NEWEST:
        raise UnsupportedVersion(f"trtexec of TensorRT {'.'.join(map(str, version))} is not "
                                 f"supported (7.0 to 11.x: --warmUp, --duration and "
                                 f"--exportTimes are needed)")
    return version


def build_command(trtexec: str, version: tuple, onnx: str, engine: str,
                  settings: TrtexecSettings) -> list[str]:
    """Build the engine only (``engine`` is written; inference skipped)."""
    v = check_version(version)[:2]
    cmd = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}"]
    if v < (8, 2):
        cmd.append("--explicitBatch")
    cmd.append(f"--memPoolSize=workspace:{settings.workspace_mib}" if v >= (8, 4)
               else f"--workspace={settings.workspace_mib}")
    if settings.precision == "fp16" and not fp16_from_graph(v):
        cmd.append("--fp16")
    cmd.append("--skipInference" if v >= (8, 6) else "--buildOnly")
    return cmd


def time_command(trtexec: str, version: tuple, engine: str, times: str,
                 settings: TrtexecSettings) -> list[str]:
    """Time a built engine: warm-up, at least ``iterations`` and ``duration_s``, per-inference
    times exported to ``times``."""
    v = check_version(version)[:2]
    cmd = [trtexec, f"--loadEngine={engine}", f"--warmUp={int(settings.warmup_ms)}",
           f"--iterations={int(settings.iterations)}",
           f"--duration={_seconds(settings.duration_s)}", f"--exportTimes={times}"]
    if v >= (11, 0):
        if settings.include_transfer:
            cmd.append("--includeDataTransfers")
        if not settings.use_cuda_graph:
            cmd.append("--noCudaGraph")
        if not settings.use_spin_wait:
            cmd.append("--noSpinWait")
    else:
        if not settings.include_transfer and v >= (7, 2):
            cmd.append("--noDataTransfers")
        if settings.use_cuda_graph:
            cmd.append("--useCudaGraph")
        if settings.use_spin_wait:
            cmd.append("--useSpinWait")
    cmd.append("--percentile=90,95,99" if v >= (8, 5) else "--percentile=99")
    return cmd


def _seconds(value: float) -> str:
    # --duration takes whole seconds in older versions (an int option until 8.x)
    return str(max(0, int(round(value))))


def shell_join(cmd: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in cmd)
