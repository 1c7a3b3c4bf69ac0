"""Power samplers run beside the timer. Interface:

    PowerSampler: name; rate_hz; unavailable_reason() -> str | None; start(); stop() -> PowerTrace

``auto`` picks the first sampler in ``SAMPLERS`` that can run here; with none available the
cell records ``power_sampler: "none"`` and ``power_unavailable: <reason>`` and nothing else
changes. Energy is integrated from a ``PowerTrace`` in exactly one place: ``PowerTrace.energy_j``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PowerTrace:
    t_s: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)

    def __post_init__(self):
        if len(self.t_s) != len(self.power_w):
            raise ValueError(f"a power trace needs one power value per time stamp, got "
                             f"{len(self.t_s)} times and {len(self.power_w)} values")

    @classmethod
    def from_polled(cls, t_s: list, power_w: list) -> "PowerTrace":
        """From lists a polling thread appends to (time, then power): the common prefix, so a
        read interrupted between the two appends cannot leave an unmatched time stamp."""
        n = min(len(t_s), len(power_w))
        return cls(list(t_s[:n]), list(power_w[:n]))

    def energy_j(self) -> float:
        """Trapezoidal integral of power over time."""
        return sum((self.t_s[i] - self.t_s[i - 1]) * (self.power_w[i] + self.power_w[i - 1]) / 2
                   for i in range(1, len(self.t_s)))

    def mean_w(self) -> float | None:
        span = self.t_s[-1] - self.t_s[0] if len(self.t_s) > 1 else 0.0
        return self.energy_j() / span if span > 0 else None


class PowerSampler(Protocol):
    name: str
    rate_hz: float

    def unavailable_reason(self) -> str | None: ...

    def start(self) -> None: ...

    def stop(self) -> PowerTrace: ...


def _samplers() -> dict[str, type]:
    from .nvml import NvmlSampler
    from .rapl import RaplSampler
    from .tegrastats import TegrastatsSampler
    return {"nvml": NvmlSampler, "tegrastats": TegrastatsSampler, "rapl": RaplSampler}


SAMPLER_NAMES = ("nvml", "tegrastats", "rapl")
# what `auto` tries, in order, for a cell on each device type
AUTO_ORDER = {"cuda": ("nvml", "tegrastats"), "cpu": ("rapl", "tegrastats")}


def resolve_sampler(name: str, device_type: str = "cpu", interval_ms: int = 100,
                    device_index: int | None = None) -> tuple[PowerSampler | None, str | None]:
    """(sampler, None) when one can run here, else (None, "unavailable: <reasons>"). NVML
    reads the GPU the cell runs on (``cuda:<device_index>``), matched by PCI bus id."""
    if name == "none":
        return None, "power sampling not requested (power.sampler: none)"
    classes = _samplers()
    keys = AUTO_ORDER.get(device_type, SAMPLER_NAMES) if name == "auto" else (name,)
    reasons = []
    for key in keys:
        extra = {"cuda_index": device_index} if key == "nvml" else {}
        sampler = classes[key](interval_ms=interval_ms, **extra)
        reason = sampler.unavailable_reason()
        if reason is None:
            return sampler, None
        reasons.append(f"{key}: {reason}")
    return None, "unavailable: " + "; ".join(reasons)
