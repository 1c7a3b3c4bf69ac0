"""A real one-node SLURM cluster for the tests: munged, slurmctld and slurmd from Debian's
packages (slurm-wlm, munge), configured in a temporary folder (nothing under /etc is touched),
started as root, stopped after. Clients find it through SLURM_CONF."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo")


def slurm_missing() -> str | None:
    missing = [b for b in BINARIES if shutil.which(b) is None
               and not os.access(f"/usr/sbin/{b}", os.X_OK)]
    if missing:
        return f"no {', '.join(missing)} (Debian: apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "slurmd runs jobs as their user and must start as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class SlurmCluster:
    def __init__(self, root: Path, cpus: int | None = None):
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count()
        self.conf = self.root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    def start(self) -> "SlurmCluster":
        r = self.root
        for d in ("state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        subprocess.run([_bin("mungekey"), "-c", "-f", "-k", str(r / "munge.key")], check=True)
        os.chmod(r / "munge.key", 0o600)
        sock = r / "munge.sock"
        subprocess.run([_bin("munged"), "--force", f"--socket={sock}",
                        f"--key-file={r / 'munge.key'}", f"--pid-file={r / 'munged.pid'}",
                        f"--log-file={r / 'log' / 'munged.log'}",
                        f"--seed-file={r / 'munge.seed'}"], check=True)
        mem = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 / 2)
        self.conf.write_text(f"""ClusterName=benchtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock},cred_expire=5
CredType=cred/munge
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=localhost CPUs={self.cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        subprocess.run([_bin("slurmctld")], env=self.env, check=True)
        subprocess.run([_bin("slurmd"), "-N", "localhost"], env=self.env, check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env,
                                 capture_output=True, text=True)
            if out.stdout.strip() == "idle":
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the test SLURM cluster did not come up: {out.stdout}{out.stderr}")

    def stop(self) -> None:
        """Cancel every job, let the steps wind down, then end every process of this cluster
        (found by the SLURM_CONF in their environment: slurmd, its slurmstepds, their jobs),
        the controller and munged."""
        self.cancel_all(15)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self._processes():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            time.sleep(1)
        try:
            os.kill(int((self.root / "munged.pid").read_text().split()[0]), signal.SIGTERM)
        except (OSError, ValueError):
            pass

    def _processes(self) -> list[int]:
        mine = {os.getpid(), os.getppid()}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in mine:
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            ours = f"SLURM_CONF={self.conf}".encode() in environ
            if ours and (comm.startswith("slurm") or b"SLURM_JOB_ID" in b"".join(environ)):
                found.append(int(entry.name))
        return found

    def cancel_all(self, timeout: float = 30) -> None:
        subprocess.run(["scancel", "--full", "--user", "root"], env=self.env,
                       capture_output=True)
        deadline = time.monotonic() + timeout
        while self.squeue() and time.monotonic() < deadline:
            time.sleep(0.3)

    def squeue(self) -> list[str]:
        out = subprocess.run(["squeue", "-h", "-o", "%i %T"], env=self.env,
                             capture_output=True, text=True)
        return [line for line in out.stdout.splitlines() if line.strip()]
