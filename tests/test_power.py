"""Power and telemetry: real tegrastats lines, a fake tegrastats on PATH end to end, fuzzed
lines, RAPL on a fake sysfs tree, NVML reason decoding; NVML sampling itself only on a GPU."""
import json
import os
import random
import stat
import sys
from pathlib import Path

import pytest
import torch

from benchbench.cli import main
from benchbench.measure.power import PowerTrace, resolve_sampler
from benchbench.measure.power.nvml import decode_reasons
from benchbench.measure.power.rapl import RaplSampler, delta_uj
from benchbench.measure.power.tegrastats import (TegrastatsParseError, parse_line,
                                                 summarize)
from benchbench.store import read_records
from conftest import requires_cuda

DATA = Path(__file__).parent / "data"
SAMPLES = [json.loads(line) for line in (DATA / "tegrastats_samples.jsonl").read_text().splitlines()]


def line_of(board: str, fragment: str) -> str:
    return next(s["line"] for s in SAMPLES if s["board"].startswith(board) and fragment in s["line"])


def test_every_real_line_parses():
    assert len(SAMPLES) == 28
    for s in SAMPLES:
        sample = parse_line(s["line"])
        assert sample.ram_total_mb and sample.cpu, s["board"]


def test_nano_under_load_rails_module_power_and_gpu():
    s = parse_line(line_of("Jetson Nano", "GR3D_FREQ 86%@921"))
    assert s.rails["POM_5V_IN"] == {"cur_mw": 4531, "avg_mw": 3285, "max_mw": None}
    assert s.rails["POM_5V_GPU"]["cur_mw"] == 1113
    assert s.module_power_mw == 4531 and s.module_power_rule == "POM_5V_IN"  # sub-rails not added
    assert (s.gpu_util_pct, s.gpu_freq_mhz) == (86.0, 921)
    assert (s.emc_util_pct, s.emc_freq_mhz) == (7.0, 1600)
    assert s.cpu[0] == {"load_pct": 44.0, "freq_mhz": 1479}
    assert "PMIC" not in s.temperatures and s.temperatures["GPU"] == 42.5


def test_tx2_l4t32_vdd_in_in_the_middle_and_off_cores():
    s = parse_line(line_of("Jetson TX2", "VDD_SYS_GPU 152/152"))
    assert s.module_power_mw == 3056 and s.module_power_rule == "VDD_IN"
    assert s.cpu[1] is None and s.cpu[2] is None and s.cpu[0]["freq_mhz"] == 345
    s = parse_line(line_of("Jetson TX2", "VDD_IN 14025/14416"))
    assert s.module_power_mw == 14025 and s.rails["VDD_GPU"]["avg_mw"] == 6903
    assert s.gpu_util_pct == 71.0


def test_agx_xavier_sums_all_rails():
    s = parse_line(line_of("Jetson AGX Xavier 16GB", "SYS5V 3306"))
    assert s.module_power_mw == 463 + 618 + 2936 + 0 + 309 + 3306
    assert s.module_power_rule.startswith("sum of all rails")
    assert s.gpu_util_pct == 0.0 and s.gpu_freq_mhz is None      # non-root: no @MHz


def test_jp5_timestamp_mw_units_and_per_gpc_bracket():
    s = parse_line(line_of("Jetson Xavier NX", "07-09-2024"))
    assert s.timestamp == "07-09-2024 13:31:31"
    assert s.rails["VDD_IN"] == {"cur_mw": 2763, "avg_mw": 2846, "max_mw": None}
    assert s.gpu_freq_mhz_per_gpc == [114] and s.gpu_util_pct == 0.0


def test_agx_orin_sensors_off_and_two_gpcs():
    s = parse_line(line_of("Jetson AGX Orin 64GB", "04-11-2025"))
    assert "GPU" not in s.temperatures and "CV0" not in s.temperatures     # -256C = missing
    assert s.temperatures["tj"] == 44.343
    assert s.gpu_freq_mhz_per_gpc == [0, 0]
    assert s.module_power_mw == 2340 + 390 + 4025 + 301        # all rails but the NC channels


def test_r39_cur_avg_max_and_thor_without_gpu_load():
    s = parse_line(line_of("Jetson AGX Thor", "VIN 87426mW"))
    assert s.rails["VIN"] == {"cur_mw": 87426, "avg_mw": 43713, "max_mw": 87426}
    assert s.module_power_mw == 87426 and s.module_power_rule == "VIN"
    assert s.gpu_util_pct is None and s.gpu_freq_mhz is None
    s = parse_line(line_of("Jetson AGX Thor", "GR3D_FREQ @[314,314,314]"))
    assert s.gpu_util_pct is None and s.gpu_freq_mhz_per_gpc == [314, 314, 314]
    s = parse_line(line_of("Jetson Orin Nano", "10-01-2026"))
    assert s.rails["VDD_IN"]["max_mw"] == 4548 and s.temperatures["tj"] == 50.875


def test_legacy_tx1_and_half_unit_rail_and_negative_rail():
    s = parse_line(line_of("Jetson TX1", "cpu [17%,13%,29%,5%]@408"))
    assert [c["load_pct"] for c in s.cpu] == [17, 13, 29, 5]
    assert all(c["freq_mhz"] == 408 for c in s.cpu)
    assert (s.gpu_util_pct, s.gpu_freq_mhz, s.emc_freq_mhz) == (3.0, 76, 408)
    assert s.module_power_mw is None and s.rails == {}
    s = parse_line(line_of("Jetson Orin Nano", "12-23-2024"))
    assert s.rails["VDD_CPU_GPU_CV"] == {"cur_mw": 598, "avg_mw": 598, "max_mw": None}
    s = parse_line("04-21-2026 15:50:52 RAM 1/2MB CPU [1%@972] VDD_GPU -392mW/-392mW VIN 19780mW/19780mW")
    assert s.rails["VDD_GPU"]["cur_mw"] == -392 and s.module_power_mw == 19780


def test_fuzzed_lines_never_crash():
    rng = random.Random(1234)
    alphabet = "0123456789%@[],/mWCMBkB_ABCDEFGHIJKLMNOPQRSTUVWXYZ.- ()off"
    for _ in range(3000):
        tokens = rng.choice(SAMPLES)["line"].split()
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(tokens))
            op = rng.random()
            if op < 0.3:
                del tokens[i]
            elif op < 0.6:
                tokens[i] = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
            elif op < 0.8:
                tokens.insert(i, rng.choice(tokens))
            else:
                cut = rng.randrange(len(tokens[i]) + 1)
                tokens[i] = tokens[i][:cut]
        try:
            parse_line(" ".join(tokens))
        except TegrastatsParseError:
            pass


def test_telemetry_cli_parses_a_log_and_reports_bad_lines(tmp_path, capsys):
    nano = [s["line"] for s in SAMPLES if "detectnet" in s["l4t"]]
    log = tmp_path / "teg.log"
    log.write_text("\n".join(nano[:2] + ["this is not tegrastats"] + nano[2:]) + "\n")
    assert main(["telemetry", "tegrastats", str(log), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["module_power_mw"] for r in rows[:-1]] == [4122, 4531, 4531]
    assert rows[0]["rails"]["POM_5V_CPU"] == {"cur_mw": 1167, "avg_mw": 748, "max_mw": None}
    summary = rows[-1]["summary"]
    assert summary["mean_power_mw"] == pytest.approx((4122 + 4531 + 4531) / 3)
    # trapezoid over 1 s samples: (4122+4531)/2 + (4531+4531)/2 mJ-per-ms-units -> J
    assert summary["energy_j"] == pytest.approx(((4122 + 4531) / 2 + 4531) / 1000)
    assert summary["unreadable_lines"][0]["line"] == 3
    assert f"{log}:3: unreadable tegrastats line" in err


def test_summarize_without_power():
    s = summarize([parse_line(line_of("Jetson TX1", "cpu [0%,0%,0%,0%]@1734"))], 1000)
    assert s["mean_power_mw"] is None and s["energy_j"] is None


FAKE_TEGRASTATS = """#!{python}
import sys, time, os
interval = int(sys.argv[sys.argv.index("--interval") + 1]) / 1000
open(os.environ["FAKE_TEGRA_PIDFILE"], "w").write(str(os.getpid()))
line = ("RAM 1504/3956MB (lfb 331x4MB) CPU [44%@1479,22%@1479,26%@1479,14%@1479] "
        "EMC_FREQ 7%@1600 GR3D_FREQ 86%@921 PLL@39C CPU@44C PMIC@100C GPU@42.5C "
        "POM_5V_IN 5000/4000 POM_5V_GPU 1113/213 POM_5V_CPU 539/722")
while True:
    print(line, flush=True)
    time.sleep(interval)
"""


@pytest.fixture
def fake_tegrastats(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "tegrastats"
    exe.write_text(FAKE_TEGRASTATS.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("FAKE_TEGRA_PIDFILE", str(pidfile))
    return pidfile


def test_fake_tegrastats_end_to_end_energy_per_frame(tmp_path, capsys, fake_tegrastats):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: teg\ndevice: cpu\nmodels: [fassd_net_l2]\nresolutions: [[64, 128]]\n"
                     "timing: {protocol: paper, warmup: 1, iterations: 5}\n"
                     "power: {sampler: auto, interval_ms: 50, idle_s: 0.3, duration_s: 0.6}\n")
    assert main(["run", str(suite), "--out", str(tmp_path), "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = read_records(Path(out["run_dir"]) / "records.jsonl")[0]
    assert r["power_sampler"] == "tegrastats" and r["power_sampler_rate_hz"] == 20
    assert r["power_w_mean"] == pytest.approx(5.0)            # POM_5V_IN 5000 mW, constant
    assert r["idle_power_w"] == pytest.approx(5.0) and r["power_w_above_idle"] == pytest.approx(0)
    assert r["energy_mj_per_frame"] == pytest.approx(5.0 * r["power_window_s"] * 1000 /
                                                     r["power_frames"], rel=1e-3)
    assert r["fps_per_watt"] == pytest.approx(r["fps_power_pass"] / 5.0)
    pid = int(fake_tegrastats.read_text())
    with pytest.raises(ProcessLookupError):      # our child was ended by its PID
        os.kill(pid, 0)


def test_power_auto_on_this_machine_records_unavailable(tmp_path, capsys):
    if resolve_sampler("auto", "cpu")[0] is not None:
        pytest.skip("this machine has a power sampler")
    suite = tmp_path / "s.yaml"
    suite.write_text("name: p\ndevice: cpu\nmodels: [fassd_net_l2]\nresolutions: [[64, 128]]\n"
                     "timing: {protocol: paper, warmup: 1, iterations: 3}\npower: {sampler: auto}\n")
    assert main(["run", str(suite), "--out", str(tmp_path), "--json", "--no-progress"]) == 0
    r = read_records(Path(json.loads(capsys.readouterr().out)["run_dir"]) / "records.jsonl")[0]
    assert r["status"] == "ok" and r["fps"] > 0
    assert r["power_sampler"] == "none" and r["power_unavailable"].startswith("unavailable: rapl:")
    assert r["energy_mj_per_frame"] is None
    assert r["telemetry_before"]["host"]["rss_mib"] > 0 and r["throttled"] is None


def make_rapl(root: Path, energy: int, max_range: int = 262_143_328_850) -> Path:
    pkg = root / "intel-rapl:0"
    (pkg / "intel-rapl:0:0").mkdir(parents=True)
    (pkg / "energy_uj").write_text(f"{energy}\n")
    (pkg / "max_energy_range_uj").write_text(f"{max_range}\n")
    (pkg / "name").write_text("package-0\n")
    return pkg


def test_rapl_on_a_fake_sysfs_tree_with_wraparound(tmp_path):
    pkg = make_rapl(tmp_path, energy=999_000_000, max_range=1_000_000_000)
    sampler = RaplSampler(interval_ms=10_000, root=tmp_path)
    assert sampler.unavailable_reason() is None
    sampler.start()
    (pkg / "energy_uj").write_text("2500000\n")          # wrapped: 1.0 J + 2.5 J
    sampler.stop()
    assert sampler.counter_energy_j == pytest.approx(3.5)
    assert delta_uj(10, 30, 100) == 20 and delta_uj(90, 5, 100) == 15


def test_rapl_unavailable_reasons(tmp_path):
    assert "no RAPL package domains" in RaplSampler(root=tmp_path / "none").unavailable_reason()


def test_power_trace_integral():
    trace = PowerTrace([0.0, 1.0, 2.0], [10.0, 20.0, 20.0])
    assert trace.energy_j() == 35.0 and trace.mean_w() == 17.5


def test_nvml_clock_event_reasons_decode():
    assert decode_reasons(0x1 | 0x4 | 0x40) == ["GpuIdle", "SwPowerCap", "HwThermalSlowdown"]


@requires_cuda
@pytest.mark.cuda
def test_nvml_sampler_on_a_gpu():
    from benchbench.measure.power.nvml import NvmlSampler, snapshot

    sampler = NvmlSampler()
    if sampler.unavailable_reason():
        pytest.skip(sampler.unavailable_reason())
    x = torch.randn(4096, 4096, device="cuda")
    sampler.start()
    for _ in range(200):
        x = x @ x / 4096
    torch.cuda.synchronize()
    trace = sampler.stop()
    assert trace.mean_w() > 0 and snapshot(0)["sm_clock_mhz"] > 0
