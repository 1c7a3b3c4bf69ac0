"""What a board is: its trtexec (path, TensorRT version), tegrastats, and identity -- the L4T
release, the model from the device tree, the nvpmodel power mode, what ``jetson_clocks --show``
reports where readable -- read in one SSH round trip."""
from __future__ import annotations

import re
import shlex

from ..trtexec.command import parse_version

TRTEXEC_FALLBACK = "/usr/src/tensorrt/bin/trtexec"

_PROBE = r"""
T={trtexec}
if [ -z "$T" ]; then T=$(command -v trtexec 2>/dev/null || true); fi
if [ -z "$T" ] && [ -x {fallback} ]; then T={fallback}; fi
echo "@@trtexec"; echo "$T"
echo "@@banner"; if [ -n "$T" ]; then "$T" --help 2>&1 | grep -m1 '&&&& RUNNING' || true; fi
echo "@@tegrastats"; command -v tegrastats 2>/dev/null || true
echo "@@release"; cat {root}etc/nv_tegra_release 2>/dev/null || true
echo "@@model"; tr -d '\000' < {root}proc/device-tree/model 2>/dev/null || true; echo
echo "@@nvpmodel"; nvpmodel -q 2>/dev/null || true
echo "@@clocks"; (sudo -n jetson_clocks --show 2>/dev/null || jetson_clocks --show 2>/dev/null) || true
echo "@@uname"; uname -srm
echo "@@hostname"; hostname
echo "@@disk"; mkdir -p {workdir} && df -Pk {workdir} | tail -n 1
"""


def probe_script(spec) -> str:
    root = spec.sysroot.rstrip("/") + "/"
    return _PROBE.format(trtexec=shlex.quote(spec.trtexec or ""), fallback=TRTEXEC_FALLBACK,
                         root=shlex.quote(root) if root != "/" else "/",
                         workdir=shlex.quote(spec.workdir))


def parse_probe(text: str) -> dict:
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    get = {k: "\n".join(v).strip() for k, v in sections.items()}
    version = parse_version(get.get("banner", "")) if get.get("banner") else None
    out = {"trtexec": get.get("trtexec") or None,
           "tensorrt_version": ".".join(map(str, version)) if version else None,
           "tegrastats": get.get("tegrastats") or None,
           "l4t": parse_l4t(get.get("release", "")), "l4t_release_line":
           get.get("release", "").splitlines()[0] if get.get("release") else None,
           "model": get.get("model") or None,
           "nvpmodel": parse_nvpmodel(get.get("nvpmodel", "")),
           "jetson_clocks": get.get("clocks") or None,
           "kernel": get.get("uname") or None, "hostname": get.get("hostname") or None,
           "disk_free_mib": _free_mib(get.get("disk", ""))}
    return out


def parse_l4t(text: str) -> str | None:
    """``# R32 (release), REVISION: 7.1, ...`` -> ``R32.7.1`` (JetPack 4.6.x)."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{match.group(1)}.{match.group(2)}" if match else None


def parse_nvpmodel(text: str) -> str | None:
    match = re.search(r"NV Power Mode:\s*(.+)", text)
    return match.group(1).strip() if match else None


def _free_mib(line: str) -> int | None:
    parts = line.split()
    return int(parts[3]) // 1024 if len(parts) >= 4 and parts[3].isdigit() else None
