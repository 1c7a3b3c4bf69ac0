"""tegrastats (NVIDIA Jetson): a parser for every format in shared/data/TEGRASTATS.md and a
sampler that runs ``tegrastats --interval N`` as a child process and ends it by its PID (never
``tegrastats --stop``, which would kill other users' instances).

Formats handled: optional ``MM-DD-YYYY HH:MM:SS`` prefix (L4T >= 34); unitless (JP4) or mW rails,
``cur/avg`` or ``cur/avg/max`` (R39), negative readings, a unit missing on one half;
``GR3D_FREQ`` as ``N%``, ``N%@MHz``, ``N%@[MHz,...]`` (per GPC), ``@[MHz,...]`` (clocks only) or
absent; legacy TX1 lines (``cpu [..]@MHz``, ``EMC``, ``GR3D``); ``off`` cores; ``-256C`` sensors
(missing); the ``PMIC@...C`` placeholder (ignored); engines (``NVENC off``, ``APE 150``, ...).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

from . import PowerTrace

_TIMESTAMP = re.compile(r"^\d\d-\d\d-\d{4}$")
_CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")
_USED_TOTAL = re.compile(r"^(\d+)/(\d+)(MB|kB)")
_CPU_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_LOAD_FREQ = re.compile(r"^(?:(\d+)%)?(?:@(?:(\d+)|\[([\d,]*)\]))?$")
_TEMP = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?:/(-?\d+(?:\.\d+)?)C)?$")
_RAIL_VALUE = re.compile(r"^(-?\d+)(?:mW)?/(-?\d+)(?:mW)?(?:/(-?\d+)(?:mW)?)?$")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_GPU_LOAD_KEYS = ("GR3D_FREQ", "GR3D")
_EMC_KEYS = ("EMC_FREQ", "EMC")
_SUM_RULE_BOARDS = "sum of all rails (no module input rail: AGX Xavier / AGX Orin)"
SENSOR_OFF_C = -256.0


class TegrastatsParseError(ValueError):
    pass


@dataclass
class TegraSample:
    timestamp: str | None = None
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    cpu: list = field(default_factory=list)          # per core {load_pct, freq_mhz} or None=off
    gpu_util_pct: float | None = None
    gpu_freq_mhz: float | None = None                # max over GPCs when per-GPC
    gpu_freq_mhz_per_gpc: list | None = None
    emc_util_pct: float | None = None
    emc_freq_mhz: float | None = None
    temperatures: dict = field(default_factory=dict)  # name -> degC (missing sensors left out)
    rails: dict = field(default_factory=dict)        # name -> {cur_mw, avg_mw, max_mw}
    module_power_mw: float | None = None
    module_power_rule: str | None = None
    engines: dict = field(default_factory=dict)
    unparsed: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _load_freq(token: str) -> tuple[float | None, list[int] | None]:
    m = _LOAD_FREQ.match(token)
    if not m or token == "":
        raise TegrastatsParseError(f"bad load/frequency token {token!r}")
    load = float(m[1]) if m[1] is not None else None
    if m[2] is not None:
        freqs = [int(m[2])]
    elif m[3] is not None:
        freqs = [int(f) for f in m[3].split(",") if f]
    else:
        freqs = None
    return load, freqs


def _cpu_list(token: str, shared_freq: int | None = None) -> list:
    body = token.strip("[]")
    cores = []
    for item in body.split(","):
        if item == "off":
            cores.append(None)
            continue
        m = _CPU_CORE.match(item)
        if not m:
            raise TegrastatsParseError(f"bad CPU core {item!r}")
        freq = int(m[2]) if m[2] else shared_freq
        cores.append({"load_pct": float(m[1]), "freq_mhz": freq})
    return cores


def module_power(rails: dict) -> tuple[float | None, str | None]:
    """Whole-module power by the board's rule (TEGRASTATS.md §5, jtop's total_power)."""
    for name in ("POM_5V_IN", "VDD_IN", "VIN"):
        if name in rails:
            return float(rails[name]["cur_mw"]), name
    usable = {k: v for k, v in rails.items() if k != "NC"}
    if not usable:
        return None, None
    return float(sum(v["cur_mw"] for v in usable.values())), _SUM_RULE_BOARDS


def parse_line(line: str) -> TegraSample:
    """Parse one tegrastats line. Raises TegrastatsParseError if it is not one."""
    tokens = line.split()
    if not tokens:
        raise TegrastatsParseError("empty line")
    s = TegraSample()
    i = 0
    if len(tokens) >= 2 and _TIMESTAMP.match(tokens[0]) and _CLOCK.match(tokens[1]):
        s.timestamp = f"{tokens[0]} {tokens[1]}"
        i = 2
    recognised = 0
    while i < len(tokens):
        tok, nxt = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else None
        if tok in ("RAM", "SWAP") and nxt and _USED_TOTAL.match(nxt):
            m = _USED_TOTAL.match(nxt)
            used, total = int(m[1]), int(m[2])
            if tok == "RAM":
                s.ram_used_mb, s.ram_total_mb = used, total
            else:
                s.swap_used_mb, s.swap_total_mb = used, total
            i += 2
            while i < len(tokens) and tokens[i].startswith("(") or (
                    i < len(tokens) and tokens[i].endswith(")") and not _NAME.match(tokens[i])):
                i += 1
            recognised += 1
            continue
        if tok == "IRAM" and nxt:
            i += 2
            while i < len(tokens) and tokens[i].endswith(")") and not _NAME.match(tokens[i]):
                i += 1
            continue
        if tok == "CPU" and nxt and nxt.startswith("["):
            s.cpu = _cpu_list(nxt)
            recognised += 1
            i += 2
            continue
        if tok == "cpu" and nxt and nxt.startswith("["):   # legacy L4T 24/28.1: [a%,b%]@MHz
            body, _, freq = nxt.partition("]@")
            s.cpu = _cpu_list(body + "]", int(freq) if freq.isdigit() else None)
            recognised += 1
            i += 2
            continue
        if tok in _GPU_LOAD_KEYS and nxt is not None:
            load, freqs = _load_freq(nxt)
            s.gpu_util_pct = load
            s.gpu_freq_mhz_per_gpc = freqs
            s.gpu_freq_mhz = max(freqs) if freqs else None
            recognised += 1
            i += 2
            continue
        if re.match(r"^GR3D\d_FREQ$", tok) and nxt is not None:   # old JP5.0 extra GPC token
            _, freqs = _load_freq(nxt)
            if freqs:
                s.gpu_freq_mhz_per_gpc = (s.gpu_freq_mhz_per_gpc or []) + freqs
            i += 2
            continue
        if tok in _EMC_KEYS and nxt is not None:
            load, freqs = _load_freq(nxt)
            s.emc_util_pct, s.emc_freq_mhz = load, (freqs[0] if freqs else None)
            i += 2
            continue
        if tok == "MTS" and i + 4 < len(tokens) + 1:
            i += 5
            continue
        m = _TEMP.match(tok)
        if m:
            name, value = m[1], float(m[2])
            if name != "PMIC" and value != SENSOR_OFF_C:   # PMIC@... is a fixed placeholder
                s.temperatures[name] = value
            recognised += 1
            i += 1
            continue
        if _NAME.match(tok) and nxt is not None and _RAIL_VALUE.match(nxt):
            m = _RAIL_VALUE.match(nxt)
            s.rails[tok] = {"cur_mw": int(m[1]), "avg_mw": int(m[2]),
                            "max_mw": int(m[3]) if m[3] is not None else None}
            recognised += 1
            i += 2
            continue
        if _NAME.match(tok) and nxt is not None and (nxt == "off" or re.match(
                r"^(\d+%)?(@\[?[\d,]+\]?)?$|^\d+$", nxt)):
            s.engines[tok] = nxt
            i += 2
            continue
        s.unparsed.append(tok)       # e.g. a name cut off at the end of a truncated line
        i += 1
    if s.ram_total_mb is None and not s.rails and recognised < 2:
        raise TegrastatsParseError("no RAM, CPU, GPU, temperature or rail fields")
    s.module_power_mw, s.module_power_rule = module_power(s.rails)
    return s


@dataclass
class LogParse:
    samples: list
    errors: list            # (line number, message)


def parse_log(text: str) -> LogParse:
    samples, errors = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            samples.append(parse_line(line))
        except TegrastatsParseError as exc:
            errors.append((n, str(exc)))
    return LogParse(samples, errors)


def summarize(samples: list[TegraSample], interval_ms: float) -> dict:
    """Mean module power and energy (trapezoid over ``cur``, ``interval_ms`` apart)."""
    power = [s.module_power_mw for s in samples if s.module_power_mw is not None]
    if not power:
        return {"samples": len(samples), "power_samples": 0, "mean_power_mw": None,
                "energy_j": None, "duration_s": None, "interval_ms": interval_ms}
    trace = PowerTrace([i * interval_ms / 1000 for i in range(len(power))],
                       [p / 1000 for p in power])
    return {"samples": len(samples), "power_samples": len(power),
            "mean_power_mw": sum(power) / len(power), "energy_j": trace.energy_j(),
            "duration_s": trace.t_s[-1], "interval_ms": interval_ms,
            "module_power_rule": samples[-1].module_power_rule}


class TegrastatsSampler:
    """Runs ``tegrastats --interval N`` as our own child and reads its stdout in a thread."""

    name = "tegrastats"

    def __init__(self, interval_ms: int = 100, executable: str = "tegrastats"):
        self.interval_ms = interval_ms
        self.executable = executable
        self.rate_hz = 1000.0 / interval_ms
        self.proc = None

    def unavailable_reason(self) -> str | None:
        if shutil.which(self.executable) is None:
            return f"'{self.executable}' is not on PATH (not a Jetson, or L4T tools missing)"
        return None

    def start(self) -> None:
        self._t, self._p, self.errors, self.last = [], [], [], None
        self.proc = subprocess.Popen([shutil.which(self.executable), "--interval",
                                      str(self.interval_ms)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            now = time.perf_counter()
            try:
                sample = parse_line(line)
            except TegrastatsParseError as exc:
                self.errors.append(str(exc))
                continue
            self.last = sample
            if sample.module_power_mw is not None:
                self._t.append(now)
                self._p.append(sample.module_power_mw / 1000)

    def stop(self) -> PowerTrace:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()          # our own child, by its PID; never `tegrastats --stop`
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._reader.join(timeout=2)
        t0 = self._t[0] if self._t else 0.0
        return PowerTrace.from_polled([t - t0 for t in self._t], self._p)
