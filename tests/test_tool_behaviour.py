"""Every command behaves like a finished tool: one stderr line and exit 2 for bad input, quiet
broken pipes, honest exit codes and run state, a summary at the end, and `bench export`."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import _fixtures  # noqa: F401 - registers the test models (flaky_net, color_oracle)
from benchbench.cli import main
from benchbench.errors import SuiteError
from benchbench.store import read_records
from benchbench.suite import load_suite

SUITE = """\
name: tool
device: cpu
models: [{models}]
resolutions: [[64, 128]]
backends: [{{name: eager, precision: fp32}}]
timing: {{protocol: robust, warmup: 1, min_iterations: 3, max_time_s: 0.05}}
"""


def suite_file(tmp_path, models="fassd_net_l2, flaky_net", extra=""):
    path = tmp_path / "tool.yaml"
    path.write_text(SUITE.format(models=models) + extra)
    return path


def one_line(capsys, argv, code=2):
    got = main(argv)
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# --- errors that were tracebacks ---------------------------------------------------------------

@pytest.mark.parametrize("arg, expected", [
    ("alpha=0", "fassd_net: alpha=0 is not allowed; allowed: 1, 2, 4, 6"),
    ("alpha=abc", "fassd_net: alpha='abc' must be int"),
    ("alpha=5", "fassd_net: alpha=5 is not allowed"),
])
def test_analyze_validates_model_arguments(capsys, arg, expected):
    err = one_line(capsys, ["analyze", "fassd_net", "--size", "64x128", "--arg", arg])
    assert expected in err


@pytest.mark.parametrize("alpha", [0, 5])
def test_suite_validates_model_arguments(tmp_path, alpha):
    with pytest.raises(SuiteError) as err:
        load_suite(suite_file(tmp_path, models=f"{{name: fassd_net, args: {{alpha: {alpha}}}}}"))
    assert f"models[0].args.alpha: fassd_net: alpha={alpha} is not allowed" in str(err.value)


def test_analyze_applies_the_suite_size_rules(capsys):
    err = one_line(capsys, ["analyze", "fassd_net", "--size", "512x1000"])
    assert err == "bench: 512x1000 is not a multiple of 16, which fassd_net requires"


def test_output_paths_are_checked_before_work(tmp_path, capsys, runs_dir):
    err = one_line(capsys, ["report", str(runs_dir), "-o", str(tmp_path)])
    assert "is a directory" in err
    err = one_line(capsys, ["report", str(runs_dir), "-o", "/proc/nope/r.html"])
    assert err.startswith("bench: -o /proc/nope/r.html: cannot write there")
    err = one_line(capsys, ["run", str(suite_file(tmp_path)), "--out", "/proc/x"])
    assert err.startswith("bench: --out /proc/x: cannot write there")
    err = one_line(capsys, ["run", str(suite_file(tmp_path)), "--report", "/proc/x/r.html"])
    assert err.startswith("bench: --report /proc/x/r.html: cannot write there")


def test_report_failing_after_the_run_prints_the_run_dir_first(tmp_path, capsys):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "r_figures").write_text("a file where the report's figure folder must go")
    code = main(["run", str(suite_file(tmp_path, models="fassd_net_l2")), "--out",
                 str(tmp_path / "res"), "--report", str(out / "r.html"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    run_line = [line for line in captured.out.splitlines() if "1 ok" in line]
    assert run_line and str(tmp_path / "res") in run_line[0]
    # one line for the failure (the run may also have warned that the machine was busy)
    failure = [line for line in captured.err.strip().splitlines()
               if not line.startswith("bench: warning: ") or "machine was busy" not in line]
    assert len(failure) == 1, captured.err
    assert "the run is complete in" in failure[0] and "could not be written" in failure[0]


def test_a_run_json_without_a_run_is_one_line(tmp_path, capsys):
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "records.jsonl").write_text("")
    err = one_line(capsys, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert "not a benchbench run (missing run_id, suite, device, timing, environment)" in err
    err = one_line(capsys, ["run", "--resume", str(tmp_path)])
    assert "not a benchbench run" in err


@pytest.mark.parametrize("argv", [["literature"], ["devices"], ["models"]])
def test_piped_into_head_exits_quietly(argv, tmp_path):
    bench = f"{sys.executable} -m benchbench.cli {' '.join(argv)}"
    proc = subprocess.run(f"{bench} | head -1", shell=True, capture_output=True, text=True,
                          timeout=120)
    assert proc.stderr == "" and len(proc.stdout.splitlines()) == 1


def test_dry_run_json_piped_into_head(tmp_path):
    suite = suite_file(tmp_path, models="fassd_net_l2")
    bench = f"{sys.executable} -m benchbench.cli run {suite} --dry-run --json"
    proc = subprocess.run(f"{bench} | head -1", shell=True, capture_output=True, text=True,
                          timeout=120)
    assert proc.stderr == "" and proc.stdout == "{\n"


def test_telemetry_needs_tegrastats_lines(tmp_path, capsys):
    log = tmp_path / "empty.log"
    log.write_text("hello\nnot tegrastats\n")
    err = one_line(capsys, ["telemetry", "tegrastats", str(log)])
    assert err.startswith(f"bench: {log}: no tegrastats line in the file")
    err = one_line(capsys, ["telemetry", "tegrastats", str(log), "--interval-ms", "-5"])
    assert err == "bench: --interval-ms -5: must be a positive number of milliseconds"


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(SUITE.format(models="fassd_net_l2") + "resolutions: [[128, 256]]\n")
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(err.value) == (f"{path}: resolutions: appears twice in one mapping (lines 4 and "
                              f"7); YAML would silently keep the last")


# --- exit codes and run state ------------------------------------------------------------------

def run_json(capsys, argv):
    code = main(argv + ["--json", "--no-progress"])
    return code, json.loads(capsys.readouterr().out)


def test_resume_counts_failed_cells_and_retry_failed_reruns_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_TEST_FAIL", "1")
    code, out = run_json(capsys, ["run", str(suite_file(tmp_path)), "--out", str(tmp_path)])
    assert code == 3 and out["ok"] == 1 and out["failed"] == 1
    run_dir = out["run_dir"]
    completed = json.loads((Path(run_dir) / "run.json").read_text())["completed_at"]
    code, out = run_json(capsys, ["run", "--resume", run_dir])
    assert code == 3 and out["failed"] == 1 and out["ran"] == 0       # not "0 failed", exit 0
    info = json.loads((Path(run_dir) / "run.json").read_text())
    assert info["completed_at"] == completed and "resumes" not in info   # nothing to do: untouched
    monkeypatch.delenv("BENCH_TEST_FAIL")
    code, out = run_json(capsys, ["run", "--resume", run_dir, "--retry-failed"])
    assert code == 0 and out["ok"] == 2 and out["failed"] == 0 and out["ran"] == 1
    records = read_records(Path(run_dir) / "records.jsonl")
    flaky = [r for r in records if r["model"] == "flaky_net"]
    assert [(r["status"], r.get("superseded")) for r in flaky] == [("failed", True), ("ok", None)]
    assert json.loads((Path(run_dir) / "run.json").read_text())["resumes"][0]["retry_failed"]


def test_resume_on_another_machine_is_refused_unless_allowed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_TEST_FAIL", "1")
    code, out = run_json(capsys, ["run", str(suite_file(tmp_path)), "--out", str(tmp_path)])
    run_json_path = Path(out["run_dir"]) / "run.json"
    info = json.loads(run_json_path.read_text())
    info["environment"]["host"] = "jetson-lab-7"
    info["environment"]["versions"]["torch"] = "1.10.0"
    run_json_path.write_text(json.dumps(info))
    monkeypatch.delenv("BENCH_TEST_FAIL")
    err = one_line(capsys, ["run", "--resume", out["run_dir"], "--retry-failed"])
    assert "this machine differs from the run's (host: jetson-lab-7 ->" in err
    assert "versions.torch: 1.10.0 ->" in err and "--allow-env-change" in err
    code, _ = run_json(capsys, ["run", "--resume", out["run_dir"], "--retry-failed",
                                "--allow-env-change"])
    assert code == 0
    resume = json.loads(run_json_path.read_text())["resumes"][0]
    assert resume["environment_differences"][0].startswith("host: jetson-lab-7 ->")
    assert resume["environment"]["host"] != "jetson-lab-7"                 # both recorded


def test_summary_table_after_a_run(tmp_path, capsys):
    code = main(["run", str(suite_file(tmp_path, models="fassd_net_l2")), "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["model", "size", "backend", "FPS", "(1000/p50)", "p50", "ms",
                              "params", "GFLOPs", "status"]
    row = out[1].split()
    assert row[:3] == ["fassd_net_l2", "64x128", "eager-fp32"] and row[-1] in ("ok", "busy")
    assert row[5] == "2,289,454"
    # the FPS shown is the one its header names: 1000 / the p50 beside it
    assert float(row[3].rstrip("!")) == pytest.approx(1000 / float(row[4]), rel=0.01)
    assert out[2] == ("FPS: robust: 1000 x batch / latency_ms_p50 (frames/s at the median "
                      "latency)")
    assert out[3].endswith("1 ok, 0 failed, 0 skipped (1 run now, 0 already done)")


def test_progress_is_one_line_per_cell_off_a_terminal(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchbench.cli", "run",
                           str(suite_file(tmp_path, models="fassd_net_l2, fassd_net_l1")),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("[1/2] fassd_net_l2@64x128/b1/eager-fp32/cpu: ok ")
    assert lines[1].startswith("[2/2] fassd_net_l1@64x128/b1/eager-fp32/cpu: ok ")


def test_models_matches_substrings_and_globs(capsys):
    assert main(["models", "fassd", "--json"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)]
    assert "fassd_net" in names and "u_mobilenetv2" not in names and "fassd_mobile" in names
    assert main(["models", "fassd_net_l*", "--json"]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)] == ["fassd_net_l1",
                                                                        "fassd_net_l2"]
    err = one_line(capsys, ["models", "resnet50"])
    assert err == "bench: no model matches 'resnet50'; `bench models` lists them all"


# --- export -------------------------------------------------------------------------------------

@pytest.fixture
def runs_dir(tmp_path_factory, capsys):
    tmp = tmp_path_factory.mktemp("export")
    assert main(["run", str(suite_file(tmp, models="fassd_net_l2, fassd_net_l1")), "--out",
                 str(tmp), "--no-progress"]) == 0
    capsys.readouterr()      # the run's own output (a busy-machine warning, say) is not the test's
    return next(p for p in tmp.iterdir() if (p / "run.json").exists())


def test_export_csv_and_json_are_one_flat_table(runs_dir, tmp_path, capsys):
    assert main(["export", str(runs_dir), "-o", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table["model"]) == ["fassd_net_l2", "fassd_net_l1"]
    assert list(table["params"]) == [2_289_454, 2_845_351]
    assert {"latency_ms_p50", "protocol.name", "env.torch", "env.host"} <= set(table.columns)
    assert "latency_samples_ms" not in table.columns
    capsys.readouterr()
    assert main(["export", str(runs_dir), str(runs_dir), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and rows[0]["protocol.name"] == "robust"      # the same run once


def test_export_parquet(runs_dir, tmp_path, capsys):
    target = tmp_path / "t.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        err = one_line(capsys, ["export", str(runs_dir), "--format", "parquet", "-o",
                                str(target)])
        assert "pip install 'benchbench[parquet]'" in err
        return
    assert main(["export", str(runs_dir), "--format", "parquet", "-o", str(target)]) == 0
    assert list(pd.read_parquet(target)["params"]) == [2_289_454, 2_845_351]
