"""The environment a run measured in: host, CPU, memory, OS, Python, libraries, GPU, commit."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from . import __version__


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(root: str | Path | None = None) -> str | None:
    """The commit checked out at ``root`` (default: benchbench's own), ``-dirty`` when tracked
    files changed; None outside a git work tree."""
    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _gpu_info() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"gpu_name": None}
    idx = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(idx)
    info = {"gpu_name": props.name, "gpu_memory_mib": props.total_memory // 2**20,
            "gpu_capability": f"{props.major}.{props.minor}",
            "gpu_count": torch.cuda.device_count()}
    try:
        import pynvml
        pynvml.nvmlInit()
        info["gpu_driver"] = pynvml.nvmlSystemGetDriverVersion()
        pynvml.nvmlShutdown()
    except Exception as exc:  # NVML missing or not permitted: say so, keep going
        info["gpu_driver"] = f"unavailable: {type(exc).__name__}"
    return info


def _versions() -> dict:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "benchbench": __version__}
    for mod in ("fvcore", "numpy", "tensorrt"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    return out


def collect() -> dict:
    import psutil
    import torch

    return {
        "host": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 2),
        "torch_threads": torch.get_num_threads(),
        "versions": _versions(),
        "git_commit": git_commit(),
        **_gpu_info(),
    }


# What must not change between two halves of one run (or a run and its baseline).
COMPARED = ("host", "cpu", "cpu_count_logical", "gpu_name", "gpu_driver", "git_commit",
            "versions.torch", "versions.cuda", "versions.cudnn", "versions.tensorrt",
            "versions.benchbench")


def _get(envd: dict, dotted: str):
    value = envd
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def differences(before: dict, now: dict, keys=COMPARED) -> list[str]:
    """Human-readable differences between two ``collect()`` results, e.g.
    ``versions.torch: 2.13.0 -> 2.14.1``."""
    out = []
    for key in keys:
        a, b = _get(before or {}, key), _get(now or {}, key)
        if a != b:
            out.append(f"{key}: {a} -> {b}")
    return out
