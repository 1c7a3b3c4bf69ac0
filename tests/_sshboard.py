"""A real OpenSSH server on 127.0.0.1 whose "board" has stand-in ``trtexec``, ``tegrastats``,
``nvpmodel`` and ``jetson_clocks`` programs that replay real recorded outputs
(shared/data/trtexec/samples.jsonl, shared/data/tegrastats_samples.jsonl). Only the Jetson
hardware is absent; SSH, scp, the shell and the files are real.

The stand-in trtexec accepts exactly the flags its TensorRT version parses (FLAGS.md presence
matrix, for the flags benchbench can pass) and fails like the real one on any other
(``[E] Unknown option`` ... ``&&&& FAILED``), so a command built for the wrong version breaks.
"""
from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"     # copies of shared/data's real recordings
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

# the flags benchbench may pass, per TensorRT version (FLAGS.md presence matrix)
COMMON = {"onnx", "saveEngine", "loadEngine", "warmUp", "iterations", "duration", "exportTimes",
          "percentile", "help", "useCudaGraph", "useSpinWait", "avgRuns"}
FLAGS = {
    "8.2": COMMON | {"workspace", "fp16", "buildOnly", "explicitBatch", "noDataTransfers"},
    "8.4": COMMON | {"workspace", "memPoolSize", "fp16", "buildOnly", "explicitBatch",
                     "noDataTransfers"},
    "10.3": COMMON | {"memPoolSize", "fp16", "skipInference", "noDataTransfers",
                      "stronglyTyped"},
    "11.0": COMMON | {"memPoolSize", "skipInference", "noCudaGraph", "includeDataTransfers",
                      "noSpinWait", "noDataTransfers", "stronglyTyped"},
}

TRTEXEC = r'''#!{python}
import json, os, sys, time
cfg = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "board.json")))
args = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in sys.argv[1:])
banner = "[TensorRT v%s]" % cfg["banner"]
print("&&&& RUNNING TensorRT.trtexec %s # trtexec %s" % (banner, " ".join(sys.argv[1:])))
unknown = [k for k in args if k not in cfg["flags"]]
if unknown:
    print("[E] Unknown option: --%s" % unknown[0])
    print("&&&& FAILED TensorRT.trtexec %s # trtexec" % banner)
    sys.exit(1)
if "help" in args:
    sys.exit(0)
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "calls.log"), "a").write(
    " ".join(sys.argv[1:]) + "\n")
if "onnx" in args:
    data = open(args["onnx"], "rb").read()
    if not data:
        print("[E] Failed to parse onnx file"); sys.exit(1)
    open(args["saveEngine"], "wb").write(b"ENGINE" + data[:64])
    print("[I] Engine built in 0.1 sec.")
else:
    if cfg.get("reboot_on_timing"):     # the board goes away mid-run: sshd and this session
        import signal
        os.kill(int(open(cfg["reboot_on_timing"]).read()), signal.SIGTERM)
        pid = os.getppid()
        while pid > 1:
            stat = open("/proc/%d/stat" % pid).read()
            if "(sshd" in stat:
                os.kill(pid, signal.SIGKILL)
                break
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        time.sleep(5)
        sys.exit(1)
    if not open(args["loadEngine"], "rb").read().startswith(b"ENGINE"):
        print("[E] Error opening engine file"); sys.exit(1)
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "timing.pid"),
         "w").write(str(os.getpid()))
    time.sleep(cfg.get("run_s", 0.6))
    print(cfg["header"]); print(cfg["summary"])
    open(args["exportTimes"], "w").write(cfg["times"])
print("&&&& PASSED TensorRT.trtexec %s # trtexec" % banner)
'''

TEGRASTATS = r'''#!{python}
import json, os, sys, time
cfg = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "board.json")))
interval = int(sys.argv[sys.argv.index("--interval") + 1]) if "--interval" in sys.argv else 1000
i = 0
while True:
    print(cfg["tegrastats"][i % len(cfg["tegrastats"])], flush=True)
    i += 1
    time.sleep(interval / 1000)
'''


def samples(path: str, key: str = "id") -> dict:
    return {json.loads(line)[key]: json.loads(line) for line in (DATA / path).open()}


def tegrastats_lines(board: str) -> list[str]:
    return [json.loads(line)["line"] for line in (DATA / "tegrastats_samples.jsonl").open()
            if json.loads(line)["board"] == board]


def make_board(root: Path, *, version: str, banner: str, summary_id: str, times_id: str,
               tegra_board: str, model: str, release: str, trtexec: bool = True,
               reboot_on_timing: str | None = None, run_s: float = 0.6) -> dict:
    trt = samples("trtexec_samples.jsonl")
    times = trt[times_id]
    cfg = {"banner": banner, "flags": sorted(FLAGS[version]),
           "header": trt[summary_id].get("header_text", ""), "summary": trt[summary_id]["text"],
           "times": times["text"] + "\n" + times["tail_text"],
           "tegrastats": tegrastats_lines(tegra_board), "reboot_on_timing": reboot_on_timing,
           "run_s": run_s}
    (root / "bin").mkdir(parents=True)
    (root / "board.json").write_text(json.dumps(cfg))
    programs = {"tegrastats": TEGRASTATS,
                "nvpmodel": "#!/bin/sh\necho 'NV Power Mode: MAXN'\necho 0\n",
                "jetson_clocks": "#!/bin/sh\necho 'SOC family:tegra186  Machine:quill'\n"}
    if trtexec:
        programs["trtexec"] = TRTEXEC
    for name, text in programs.items():
        path = root / "bin" / name
        path.write_text(text.replace("{python}", sys.executable))
        path.chmod(0o755)
    (root / "sysroot" / "etc").mkdir(parents=True)
    (root / "sysroot" / "etc" / "nv_tegra_release").write_text(release + "\n")
    (root / "sysroot" / "proc" / "device-tree").mkdir(parents=True)
    (root / "sysroot" / "proc" / "device-tree" / "model").write_bytes(model.encode() + b"\0")
    return cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SshBoard:
    """sshd on 127.0.0.1:<free port> for one board directory; an ssh_config naming it."""

    def __init__(self, tmp: Path, name: str, board_dir: Path):
        self.name, self.dir = name, tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(tmp / key)], check=True)
        (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
        os.chmod(tmp / "authorized_keys", 0o600)
        path = f"{board_dir}/bin:/usr/local/bin:/usr/bin:/bin"
        (tmp / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {tmp}/host_key\n"
            f"AuthorizedKeysFile {tmp}/authorized_keys\nPasswordAuthentication no\n"
            f"KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
            f"StrictModes no\nPidFile {tmp}/sshd.pid\nSetEnv PATH={path}\nLogLevel ERROR\n"
            f"PermitRootLogin yes\nMaxSessions 50\nMaxStartups 50\n")
        host_pub = (tmp / "host_key.pub").read_text().split()
        (tmp / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (tmp / "ssh_config").write_text(
            f"Host {name}\n  HostName 127.0.0.1\n  Port {self.port}\n  User {getpass.getuser()}\n"
            f"  IdentityFile {tmp}/client_key\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {tmp}/known_hosts\n  StrictHostKeyChecking yes\n")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)      # sshd's privilege-separation dir
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()

    def _wait(self) -> None:
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.proc.stderr.read().decode()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    @property
    def ssh_config(self) -> str:
        return str(self.dir / "ssh_config")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def sshd_available() -> str | None:
    """Why the SSH tests cannot run here, or None."""
    if not os.path.exists(SSHD):
        return "sshd is not installed (Debian: apt install openssh-server; .ci/run does)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "the OpenSSH client is not installed"
    return None
