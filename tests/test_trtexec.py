"""The trtexec parser on every real sample of shared/data/trtexec/samples.jsonl (copied to
tests/data): TensorRT 5.x to 10.x, Jetson and desktop, including pastes their authors damaged.
The expected figures are the numbers printed in each log."""
import json
from pathlib import Path

import pytest

from benchbench.cli import main
from benchbench.trtexec import (TrtexecSettings, UnsupportedVersion, build_command,
                                parse_export_times, parse_log, parse_version, time_command)
from benchbench.trtexec.parse import version_from_banner

SAMPLES = {json.loads(line)["id"]: json.loads(line) for line in
           (Path(__file__).parent / "data" / "trtexec_samples.jsonl").open()}

# figures as printed in each log (e.g. S16: "Throughput: 41087.7 qps", "Latency: ... mean =
# 0.402238 ms, median = 0.401947 ms, percentile(99%) = 0.420288 ms"); "problems": how many
# things the parser reports it could not read (damaged or partial pastes)
EXPECTED = {
    "S01": {"complete": True, "tensorrt_version": '8.0.3', "device": 'NVIDIA GeForce GTX 1070', "throughput_qps": 6330.83, "latency_ms_mean": 0.159522, "latency_ms_median": 0.15918, "latency_ms_p99": 0.165161, "gpu_compute_ms_mean": 0.15302, "h2d_ms_median": 0.00390625, "d2h_ms_median": 0.00219727, "problems": 0},
    "S03": {"complete": True, "tensorrt_version": '8.4.1', "device": 'NVIDIA GeForce GTX 1070', "throughput_qps": 6106.55, "latency_ms_mean": 0.169435, "latency_ms_median": 0.161621, "latency_ms_p99": 0.433105, "gpu_compute_ms_mean": 0.16247, "h2d_ms_median": 0.00390625, "d2h_ms_median": 0.0022583, "problems": 0},
    "S04": {"complete": True, "tensorrt_version": '8.6.0', "device": 'NVIDIA GeForce RTX 3090', "throughput_qps": 21009.2, "latency_ms_mean": 0.0533242, "latency_ms_median": 0.0517578, "latency_ms_p99": 0.0630798, "gpu_compute_ms_mean": 0.0451127, "h2d_ms_median": 0.00415039, "d2h_ms_median": 0.00366211, "problems": 0},
    "S05": {"complete": True, "tensorrt_version": '10.14.1', "device": 'NVIDIA RTX 6000 Ada Generation', "throughput_qps": 23188.6, "latency_ms_mean": 0.0385501, "latency_ms_median": 0.0383301, "latency_ms_p99": 0.046875, "gpu_compute_ms_mean": 0.0287623, "h2d_ms_median": 0.00450134, "d2h_ms_median": 0.00561523, "problems": 0},
    "S06": {"complete": True, "tensorrt_version": '10.14.1', "device": 'NVIDIA RTX 6000 Ada Generation', "throughput_qps": 30518.1, "latency_ms_mean": 0.0314152, "latency_ms_median": 0.029541, "latency_ms_p99": 0.0656738, "gpu_compute_ms_mean": 0.0314152, "h2d_ms_median": 0.0, "d2h_ms_median": 0.0, "problems": 0},
    "S08": {"complete": True, "throughput_qps": 6033.36, "latency_ms_mean": 0.162363, "latency_ms_median": 0.162354, "latency_ms_p99": 0.163452, "gpu_compute_ms_mean": 0.162363, "h2d_ms_median": 0.0, "d2h_ms_median": 0.0, "problems": 0},
    "S09": {"complete": True, "throughput_qps": 797.639, "latency_ms_mean": 0.942851, "latency_ms_median": 0.899048, "latency_ms_p99": 1.80432, "gpu_compute_ms_mean": 0.942851, "h2d_ms_median": 0.0, "d2h_ms_median": 0.0, "problems": 0},
    "S11": {"complete": True, "throughput_qps": 73.4985, "latency_ms_mean": 15.07, "latency_ms_median": 15.0422, "latency_ms_p99": 15.7443, "gpu_compute_ms_mean": 13.5448, "h2d_ms_median": 1.51404, "d2h_ms_median": 0.0125732, "problems": 0},
    "S12": {"complete": True, "tensorrt_version": '10.14.1', "device": 'NVIDIA GeForce RTX 4080 SUPER', "throughput_qps": 741.755, "latency_ms_mean": 1.27044, "latency_ms_median": 1.23547, "latency_ms_p99": 1.75824, "gpu_compute_ms_mean": 1.18613, "h2d_ms_median": 0.0507812, "d2h_ms_median": 0.0307617, "problems": 0},
    "S13": {"complete": True, "device": 'NVIDIA GeForce RTX 4050 Laptop GPU', "throughput_qps": 347.915, "latency_ms_mean": 2.87257, "latency_ms_median": 2.87305, "latency_ms_p99": 2.87744, "gpu_compute_ms_mean": 2.87257, "h2d_ms_median": 0.0, "d2h_ms_median": 0.0, "problems": 0},
    "S14": {"complete": True, "throughput_qps": 48.9507, "latency_ms_mean": 20.4271, "latency_ms_median": 20.4258, "latency_ms_p99": 20.4473, "gpu_compute_ms_mean": 20.4271, "h2d_ms_median": 0.0, "d2h_ms_median": 0.0, "problems": 0},
    "S15": {"complete": True, "throughput_qps": 120.699, "latency_ms_mean": 9.81005, "latency_ms_median": 9.76404, "latency_ms_p99": 11.4742, "gpu_compute_ms_mean": 8.23978, "h2d_ms_median": 1.55444, "d2h_ms_median": 0.0153809, "problems": 0},
    "S16": {"complete": True, "tensorrt_version": '8.4.0', "throughput_qps": 41087.7, "latency_ms_mean": 0.402238, "latency_ms_median": 0.401947, "latency_ms_p99": 0.420288, "gpu_compute_ms_mean": 0.388221, "h2d_ms_median": 0.00952148, "d2h_ms_median": 0.00366211, "problems": 0},
    "S18": {"complete": False, "throughput_qps": 43073.6, "latency_ms_mean": 0.386481, "latency_ms_median": 0.385986, "latency_ms_p99": 0.404907, "gpu_compute_ms_mean": 0.369765, "h2d_ms_median": 0.0130615, "problems": 4},
    "S20": {"complete": False, "latency_ms_mean": 55.3944, "gpu_compute_ms_mean": 55.2518, "problems": 0},
    "S21": {"complete": False, "throughput_qps": 145.5, "latency_ms_mean": 6.84532, "latency_ms_median": 6.60986, "latency_ms_p99": 8.90259, "problems": 0},
    "S22": {"complete": False, "latency_ms_mean": 0.041071, "latency_ms_median": 0.0410156, "latency_ms_p99": 0.0507812, "gpu_compute_ms_mean": 0.0298031, "problems": 1},
    "S23": {"complete": False, "latency_ms_mean": 1.66069, "latency_ms_median": 1.65601, "latency_ms_p99": 1.67065, "problems": 2},
    "S24": {"complete": False, "latency_ms_mean": 28.79945, "gpu_compute_ms_mean": 23.703, "problems": 0},
    "S25": {"complete": True, "throughput_qps": 130.298, "latency_ms_mean": 7.60628, "latency_ms_median": 7.16092, "latency_ms_p99": 12.9675, "gpu_compute_ms_mean": 7.58404, "h2d_ms_median": 0.00814819, "d2h_ms_median": 0.00439453, "problems": 0},
    "S26": {"complete": False, "throughput_qps": 32.7261, "latency_ms_mean": 30.7571, "latency_ms_median": 30.7585, "latency_ms_p99": 30.8523, "gpu_compute_ms_mean": 30.3322, "h2d_ms_median": 0.247559, "d2h_ms_median": 0.177734, "problems": 1},
    "S27": {"complete": True, "throughput_qps": 759.832, "latency_ms_mean": 2.13468, "latency_ms_median": 2.09521, "latency_ms_p99": 2.16016, "gpu_compute_ms_mean": 1.30893, "h2d_ms_median": 0.818848, "d2h_ms_median": 0.0065918, "problems": 0},
    "S29": {"complete": True, "throughput_qps": 169.352, "latency_ms_mean": 5.93288, "latency_ms_median": 6.02185, "latency_ms_p99": 6.17407, "gpu_compute_ms_mean": 3.63242, "h2d_ms_median": 0.817383, "d2h_ms_median": 1.48657, "problems": 0},
    "S30": {"complete": False, "throughput_qps": 12.9581, "latency_ms_mean": 76.3344, "latency_ms_median": 76.3436, "latency_ms_p99": 76.4476, "problems": 1},
    "S32": {"complete": False, "throughput_qps": 234.19, "latency_ms_mean": 4.29966, "latency_ms_median": 4.29718, "latency_ms_p99": 4.32874, "problems": 1},
}


def _log(sample):
    return sample.get("header_text", "") + "\n" + sample["text"]


def test_every_summary_sample_is_covered():
    assert set(EXPECTED) == {k for k, s in SAMPLES.items() if s["kind"] == "summary"}


@pytest.mark.parametrize("sample_id", sorted(EXPECTED))
def test_summary_figures(sample_id):
    out = parse_log(_log(SAMPLES[sample_id]))
    expected = dict(EXPECTED[sample_id])
    assert len(out["problems"]) == expected.pop("problems"), out["problems"]
    for key, value in expected.items():
        assert out.get(key) == (pytest.approx(value) if isinstance(value, float) else value), key


@pytest.mark.parametrize("sample_id", ["S18", "S23", "S26", "S30", "S32"])
def test_damaged_and_partial_pastes_give_a_partial_result_that_says_so(sample_id):
    out = parse_log(_log(SAMPLES[sample_id]))
    assert out["complete"] is False and out["problems"]
    assert out["latency_ms_mean"] > 0


def test_damaged_values_are_named_not_invented():
    out = parse_log(_log(SAMPLES["S18"]))          # "percentile(99%) = 0.2551s" (cut)
    assert "enqueue_ms_p99" not in out and out["enqueue_ms_p95"] == pytest.approx(0.22229)
    assert "Enqueue Time: percentile(99%) unreadable" in out["problems"]


def test_three_percentiles_from_8_5_and_one_before():
    assert parse_log(_log(SAMPLES["S04"]))["percentiles"] == [90.0, 95.0, 99.0]
    assert parse_log(_log(SAMPLES["S16"]))["percentiles"] == [99.0]


def test_7x_throughput_bug_is_unknown_not_zero():
    out = parse_log(_log(SAMPLES["S22"]))
    assert "throughput_qps" not in out and "0 qps" in out["problems"][0]


def test_zero_transfers_mean_no_data_transfers():
    assert parse_log(_log(SAMPLES["S06"]))["data_transfers"] is False
    assert "data_transfers" not in parse_log(_log(SAMPLES["S05"]))


def test_cov_warning_and_banner_command():
    out = parse_log(_log(SAMPLES["S05"]))
    assert out["gpu_compute_cov_pct"] == pytest.approx(12.8763)
    assert out["command"].startswith("trtexec --onnx=/cookbook/00-Data/model/model-trained.onnx")


@pytest.mark.parametrize("number,dotted", [("8003", "8.0.3"), ("8203", "8.2.3"),
                                           ("8401", "8.4.1"), ("8600", "8.6.0"),
                                           ("100200", "10.2.0"), ("101401", "10.14.1")])
def test_banner_versions(number, dotted):
    assert version_from_banner(number) == dotted


@pytest.mark.parametrize("sample_id,records", [("S33", 5), ("S34", 5), ("S35", 5)])
def test_export_times_samples(sample_id, records):
    sample = SAMPLES[sample_id]
    whole = parse_export_times(sample["text"] + "\n" + sample["tail_text"])
    assert whole["records"] == records and not whole["problems"]
    values = [json.loads(line.lstrip(", "))["latencyMs"] for line in
              (sample["text"] + "\n" + sample["tail_text"]).splitlines() if "{" in line]
    assert whole["latency_ms_mean"] == pytest.approx(sum(values) / len(values))
    assert "endToEndMs" not in whole["key_set"] and "h2dMs" in whole["key_set"]    # 8.4+ keys
    cut = parse_export_times(sample["text"])         # the stored prefix: no closing "]"
    assert cut["records"] == 4 and "cut short" in cut["problems"][0]


def test_export_times_7x_keys_and_the_swapped_stamps_note():
    text = json.dumps([{"startEnqMs": 1, "endEnqMs": 2, "startInMs": 0, "endInMs": 1,
                        "startComputeMs": 2, "endComputeMs": 3, "startOutMs": 3, "endOutMs": 4,
                        "inMs": 0.5, "computeMs": 1.0, "outMs": 0.25, "latencyMs": 1.75,
                        "endToEndMs": 4}])
    out = parse_export_times(text)
    assert out["h2d_ms_mean"] == 0.5 and out["d2h_ms_mean"] == 0.25
    assert "swapped" in out["note"]


def test_commands_follow_each_versions_flags():
    s = TrtexecSettings(precision="fp16", workspace_mib=512)
    assert build_command("t", (8, 2, 1), "m.onnx", "e", s)[3:] == [
        "--workspace=512", "--fp16", "--buildOnly"]
    assert build_command("t", (7, 1, 3), "m.onnx", "e", s)[3] == "--explicitBatch"
    assert build_command("t", (10, 3, 0), "m.onnx", "e", s)[3:] == [
        "--memPoolSize=workspace:512", "--fp16", "--skipInference"]
    assert build_command("t", (11, 0, 0), "m.onnx", "e", s)[3:] == [
        "--memPoolSize=workspace:512", "--skipInference"]          # no --fp16 in 11.x
    t11 = time_command("t", (11, 1, 0), "e", "x.json", s)
    assert "--noCudaGraph" in t11 and "--noDataTransfers" not in t11 and "--useSpinWait" not in t11
    t82 = time_command("t", (8, 2, 1), "e", "x.json", s)
    assert "--noDataTransfers" in t82 and "--percentile=99" in t82
    with pytest.raises(UnsupportedVersion, match="7.0 to 11.x"):
        build_command("t", (6, 0, 1), "m.onnx", "e", s)


def test_versions_from_text():
    assert parse_version("[TensorRT v8201]") == (8, 2, 1)
    assert parse_version("10.14.1.48") == (10, 14, 1)
    assert parse_version("nothing") is None


def test_bench_telemetry_trtexec_json(tmp_path, capsys):
    log = tmp_path / "run.log"
    log.write_text(_log(SAMPLES["S12"]))
    times = tmp_path / "times.json"
    times.write_text(SAMPLES["S34"]["text"] + "\n" + SAMPLES["S34"]["tail_text"])
    assert main(["telemetry", "trtexec", str(log), "--times", str(times), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_ms_mean"] == pytest.approx(1.27044)
    assert out["latency_ms_median"] == pytest.approx(1.23547)
    assert out["latency_ms_p99"] == pytest.approx(1.75824)
    assert out["throughput_qps"] == pytest.approx(741.755)
    assert out["h2d_ms_median"] == pytest.approx(0.0507812)
    assert out["gpu_compute_ms_median"] > 0 and out["d2h_ms_median"] > 0
    assert out["tensorrt_version"] == "10.14.1" and out["device"] == "NVIDIA GeForce RTX 4080 SUPER"
    assert out["export_times"]["records"] == 5


def test_bench_telemetry_trtexec_bad_input_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.log"
    empty.write_text("hello\n")
    assert main(["telemetry", "trtexec", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no trtexec performance figures" in err and err.count("\n") == 1
    assert main(["telemetry", "trtexec", str(tmp_path / "missing.log")]) == 2
