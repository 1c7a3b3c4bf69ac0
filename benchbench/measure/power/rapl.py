"""CPU package energy from Linux powercap RAPL (``/sys/class/powercap/intel-rapl:N``; AMD Zen
exposes the same interface). Reads ``energy_uj`` at start and stop, handling wrap-around with
``max_energy_range_uj``; a thread polls it so a power trace exists too."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from . import PowerTrace

POWERCAP = Path("/sys/class/powercap")


def rapl_packages(root: Path = POWERCAP) -> list[Path]:
    """Top-level package domains (intel-rapl:0, intel-rapl:1, ...), not their subzones."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1
                  and (p / "energy_uj").exists())


def delta_uj(before: int, after: int, max_range: int) -> int:
    """Counter difference across at most one wrap-around."""
    return after - before if after >= before else after + max_range - before


class RaplSampler:
    name = "rapl"

    def __init__(self, interval_ms: int = 100, root: Path = POWERCAP):
        self.interval_ms = interval_ms
        self.rate_hz = 1000.0 / interval_ms
        self.root = Path(root)
        self.method = "energy_counter"

    def unavailable_reason(self) -> str | None:
        packages = rapl_packages(self.root)
        if not packages:
            return f"no RAPL package domains under {self.root} (no powercap driver or not x86)"
        try:
            for p in packages:
                int((p / "energy_uj").read_text())
        except PermissionError:
            return f"{packages[0]}/energy_uj is not readable (root only since CVE-2020-8694)"
        except (OSError, ValueError) as exc:
            return f"cannot read {packages[0]}/energy_uj: {exc}"
        return None

    def _read(self) -> list[int]:
        return [int((p / "energy_uj").read_text()) for p in self.packages]

    def start(self) -> None:
        self.packages = rapl_packages(self.root)
        self.ranges = [int((p / "max_energy_range_uj").read_text()) for p in self.packages]
        self._start = self._last = self._read()
        self._total_uj = 0
        self._t, self._p = [], []
        self._stop = threading.Event()
        self._t0 = self._tl = time.perf_counter()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _step(self) -> None:
        now, values = time.perf_counter(), self._read()
        step = sum(delta_uj(a, b, r) for a, b, r in zip(self._last, values, self.ranges))
        self._total_uj += step
        if now > self._tl:
            self._t.append(now - self._t0)
            self._p.append(step / 1e6 / (now - self._tl))
        self._last, self._tl = values, now

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_ms / 1000):
            self._step()

    def stop(self) -> PowerTrace:
        self._stop.set()
        self._thread.join()
        self._step()
        self.counter_energy_j = self._total_uj / 1e6
        self.elapsed_s = time.perf_counter() - self._t0
        return PowerTrace.from_polled(self._t, self._p)
