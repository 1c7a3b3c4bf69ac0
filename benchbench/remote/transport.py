"""How benchbench reaches a board: OpenSSH's own ``ssh`` binary, so the user's
``~/.ssh/config`` (host aliases, keys, agent, ProxyJump) just works and no password is ever
stored; one shared connection per board (ControlMaster) keeps each command cheap. The local
transport runs the same commands on this machine (trtexec installed here)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BenchError


class BoardUnreachable(BenchError):
    """The board cannot be reached (network, key, host key): its remaining cells go to others."""


class RemoteCommandFailed(BenchError):
    pass


@dataclass(frozen=True)
class RemoteSpec:
    host: str
    user: str | None = None
    port: int | None = None
    workdir: str = "/tmp/benchbench"
    keep: bool = False               # keep the per-cell work directory on the board
    trtexec: str | None = None       # default: trtexec on PATH, then /usr/src/tensorrt/bin
    sysroot: str = "/"               # where the board's /etc and /proc are (a container, chroot)
    ssh_config: str | None = None    # default: the user's ~/.ssh/config
    connect_timeout_s: int = 10
    options: tuple = field(default=())   # extra "-o Key=Value" for ssh

    @property
    def label(self) -> str:
        who = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{who}{self.host}{port}"

    def as_dict(self) -> dict:
        from dataclasses import asdict
        out = asdict(self)
        out["options"] = list(self.options)
        return out


_URL = re.compile(r"^(?:ssh://)?(?:([^@/:\s]+)@)?([^@/:\s]+)(?::(\d+))?/?$")


def parse_remote(value) -> RemoteSpec:
    """``ssh://user@host:port``, ``user@host``, a host alias of ~/.ssh/config, or a mapping
    with the RemoteSpec fields. ValueError with what is wrong."""
    if isinstance(value, str):
        match = _URL.match(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not ssh://user@host:port, user@host or a host alias")
        user, host, port = match.groups()
        return _checked(RemoteSpec(host=host, user=user, port=int(port) if port else None))
    if isinstance(value, dict):
        allowed = set(RemoteSpec.__dataclass_fields__)
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        if not isinstance(value.get("host"), str) or not value["host"]:
            raise ValueError("needs a 'host'")
        spec = dict(value)
        for key, kind in _FIELD_TYPES.items():
            if key in spec and spec[key] is not None and not _is(spec[key], kind):
                raise ValueError(f"{key}: must be {_KIND_TEXT[kind]}, got {spec[key]!r}")
        if "options" in spec:
            options = spec["options"]
            if not isinstance(options, list) or not all(
                    isinstance(o, str) and _SSH_OPTION.fullmatch(o) for o in options):
                raise ValueError(f"options: must be a list of ssh options 'Key=Value', e.g. "
                                 f"['ServerAliveInterval=10'], got {options!r}")
            spec["options"] = tuple(options)
        return _checked(RemoteSpec(**spec))
    raise ValueError(f"a remote is a string or a mapping, got {type(value).__name__}")


_FIELD_TYPES = {"host": str, "user": str, "port": int, "workdir": str, "keep": bool,
                "trtexec": str, "sysroot": str, "ssh_config": str, "connect_timeout_s": int}
_KIND_TEXT = {str: "a string", int: "an integer", bool: "true or false"}
_SSH_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9]*=\S.*")


def _is(value, kind) -> bool:
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _checked(spec: RemoteSpec) -> RemoteSpec:
    """What reaches ``ssh``'s command line: a host or user beginning with '-' would be read as
    an option (``-oProxyCommand=...``), so neither may; a port is 1-65535."""
    for key in ("host", "user"):
        value = getattr(spec, key)
        if value is not None and (not value or value.startswith("-") or
                                  any(c.isspace() for c in value)):
            raise ValueError(f"{key}: {value!r} is not a {key} name (it may not be empty, begin "
                             f"with '-' or hold spaces)")
    if spec.port is not None and not 0 < spec.port < 65536:
        raise ValueError(f"port: must be 1-65535, got {spec.port}")
    if not 0 < spec.connect_timeout_s <= 3600:
        raise ValueError(f"connect_timeout_s: must be 1-3600, got {spec.connect_timeout_s}")
    if not spec.workdir.startswith("/"):
        raise ValueError(f"workdir: must be an absolute path on the board, got {spec.workdir!r}")
    return spec


class SshTransport:
    """Commands and files on a board over SSH (BatchMode: never asks for a password)."""

    def __init__(self, spec: RemoteSpec):
        if shutil.which("ssh") is None:
            raise BoardUnreachable("the OpenSSH client (ssh) is not installed on this "
                                   "machine (Debian/Ubuntu: apt install openssh-client)")
        self.spec = spec
        # a socket path is limited to 108 bytes: /tmp, not a long $TMPDIR
        self._control_dir = tempfile.mkdtemp(prefix="bench-ssh-",
                                             dir="/tmp" if os.path.isdir("/tmp") else None)
        self.label = spec.label

    def _options(self) -> list[str]:
        s = self.spec
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={s.connect_timeout_s}",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_dir}/%C",
                "-o", "ControlPersist=120", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3"]
        if s.ssh_config:
            opts = ["-F", s.ssh_config] + opts
        if s.user:
            opts += ["-o", f"User={s.user}"]
        for option in s.options:
            opts += ["-o", option]
        return opts

    def run(self, command: str, timeout: float | None = None, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        port = ["-p", str(self.spec.port)] if self.spec.port else []
        argv = ["ssh", *self._options(), *port, "--", self.spec.host, command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  input=stdin)
        except subprocess.TimeoutExpired:
            raise RemoteCommandFailed(f"{self.label}: no answer within {timeout:.0f} s "
                                      f"(board hung or rebooting?)") from None
        if done.returncode == 255:           # ssh's own failure, not the command's
            raise BoardUnreachable(f"cannot reach {self.label} over SSH: "
                                   f"{_last_line(done.stderr) or 'ssh exited with 255'}")
        if check and done.returncode != 0:
            raise RemoteCommandFailed(f"{self.label}: `{command[:80]}` exited with "
                                      f"{done.returncode}: {_last_line(done.stderr or done.stdout)}")
        return done

    def put(self, local: str | Path, remote: str) -> None:
        """Copy a file by streaming it into ``cat`` on the board: needs nothing but a shell
        there (no sftp subsystem, which scp uses by default since OpenSSH 9)."""
        port = ["-p", str(self.spec.port)] if self.spec.port else []
        target = shlex.quote(remote)
        argv = ["ssh", *self._options(), *port, "--", self.spec.host,
                f"cat > {target}.part && mv {target}.part {target}"]
        with open(local, "rb") as source:
            done = subprocess.run(argv, stdin=source, capture_output=True)
        if done.returncode == 0:
            return
        message = _last_line(done.stderr.decode(errors="replace")) or \
            f"exited with {done.returncode}"
        if done.returncode == 255:
            raise BoardUnreachable(f"cannot reach {self.label} over SSH: {message}")
        if "No space left" in message:
            raise RemoteCommandFailed(f"{self.label}: the board's disk is full (copying "
                                      f"{Path(local).name} to {remote})")
        raise RemoteCommandFailed(f"{self.label}: copying {Path(local).name} to {remote} "
                                  f"failed: {message}")

    def close(self) -> None:
        subprocess.run(["ssh", *self._options(), "-O", "exit", "--", self.spec.host],
                       capture_output=True, text=True)
        shutil.rmtree(self._control_dir, ignore_errors=True)


def local_workdir() -> Path:
    """Where trtexec on this machine keeps its engine cache: the user's cache directory
    ($XDG_CACHE_HOME or ~/.cache), not /tmp, which every user and every reboot shares."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "benchbench" / "trtexec"


class LocalTransport:
    """The same interface on this machine: trtexec and tegrastats installed here."""

    label = "localhost"

    def __init__(self, spec: RemoteSpec | None = None):
        self.spec = spec or RemoteSpec(host="localhost", workdir=str(local_workdir()))

    def run(self, command: str, timeout: float | None = None, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                  timeout=timeout, input=stdin, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise RemoteCommandFailed(f"`{command[:80]}` did not finish within "
                                      f"{timeout:.0f} s") from None
        if check and done.returncode != 0:
            raise RemoteCommandFailed(f"`{command[:80]}` exited with {done.returncode}: "
                                      f"{_last_line(done.stderr or done.stdout)}")
        return done

    def put(self, local, remote: str) -> None:
        Path(remote).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, remote)

    def close(self) -> None:
        pass


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""
