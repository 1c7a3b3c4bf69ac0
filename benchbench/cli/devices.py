"""``bench devices``: device profiles, and which one this machine is."""
from __future__ import annotations

from ._common import EXIT_OK, emit


def add_parser(sub) -> None:
    dev = sub.add_parser("devices", help="device profiles, and which one this machine is")
    dev.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..devices import detect_current, load_profiles

    profiles = load_profiles()
    current = detect_current(profiles)
    if args.json:
        emit({"current": current, "profiles": profiles})
        return EXIT_OK
    for p in profiles:
        mark = "*" if current and p["key"] == current.get("key") else " "
        factor = p["factor_vs_1080ti"] if p["factor_vs_1080ti"] is not None else "-"
        print(f"{mark} {p['key']:16s} {p['name'][:34]:34s} fp32 {p['fp32_tflops'] or '-':>7} TFLOPS"
              f"  fp16 {p['fp16_tflops'] or '-':>7}  {p['mem_bw_gbs'] or '-':>6} GB/s  "
              f"factor {factor}")
    print(f"this machine: {current['key']} ({current['detected_as']})" if current else
          "this machine: not in the profiles")
    return EXIT_OK
