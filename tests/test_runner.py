"""End to end: suite -> records -> report; failures, skips, SIGKILL and resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchbench.cli import main
from benchbench.store import read_records

SUITE = """\
name: tiny
device: {device}
models: [fassd_net_l2, {{name: fassd_net, args: {{alpha: 4}}}}]
resolutions: [[64, 128], [128, 256]]
backends: [{{name: eager, precision: fp32}}, {{name: channels_last, precision: fp32}}]
timing: {{protocol: robust, warmup: 1, min_iterations: 5, max_time_s: {budget}, target_ci_rel: 0.05}}
power: {{sampler: auto}}
"""


def write_suite(tmp_path, device="cpu", budget=0.1, extra=""):
    path = tmp_path / "tiny.yaml"
    path.write_text(SUITE.format(device=device, budget=budget) + extra)
    return path


def run_json(capsys, argv):
    code = main(argv + ["--json", "--no-progress"])
    return code, json.loads(capsys.readouterr().out)


def test_run_writes_self_describing_records_and_report(tmp_path, capsys):
    suite = write_suite(tmp_path)
    report = tmp_path / "r.html"
    code, out = run_json(capsys, ["run", str(suite), "--out", str(tmp_path / "res"),
                                  "--report", str(report)])
    assert code == 0 and out["ok"] == 8 and out["failed"] == 0
    run_dir = Path(out["run_dir"])
    info = json.loads((run_dir / "run.json").read_text())
    assert info["suite"]["name"] == "tiny" and info["device"] == "cpu"
    env = info["environment"]
    assert env["versions"]["torch"] == torch.__version__ and env["cpu_count_logical"] >= 1
    records = read_records(run_dir / "records.jsonl")
    assert [r["cell_id"] for r in records][:2] == [
        "fassd_net_l2@64x128/b1/eager-fp32/cpu", "fassd_net_l2@64x128/b1/channels_last-fp32/cpu"]
    r = records[-1]
    assert r["model"] == "fassd_net" and r["model_args"] == {"alpha": 4}
    assert r["params"] == 2_584_279                    # Table IV alpha = 4, exact official count
    assert r["status"] == "ok" and r["fps"] > 0 and r["iterations"] >= 5
    assert r["latency_ms_p50"] <= r["latency_ms_p90"] <= r["latency_ms_p99"]
    assert r["protocol"]["name"] == "robust" and r["protocol"]["threads"] >= 1
    assert r["power_sampler"] == "none" and r["power_unavailable"].startswith("unavailable:")
    assert r["energy_mj_per_frame"] is None
    html = report.read_text()
    assert "data:image/png;base64," in html and "fassd_net_l2" in html


def test_failing_cell_is_recorded_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    import benchbench.executors.stages as runner

    real = runner.create_model

    def flaky(name, **kw):
        if name == "fassd_net":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(name, **kw)

    monkeypatch.setattr(runner, "create_model", flaky)
    code, out = run_json(capsys, ["run", str(write_suite(tmp_path)), "--out", str(tmp_path)])
    assert code == 3 and out["failed"] == 4 and out["ok"] == 4
    failed = [r for r in read_records(Path(out["run_dir"]) / "records.jsonl")
              if r["status"] == "failed"]
    assert failed[0]["error"] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert failed[0]["params"] == 2_584_279            # analysis ran before the build failed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_cuda_suite_without_cuda_records_skipped_cells(tmp_path, capsys):
    suite = write_suite(tmp_path, device="cuda").read_text().replace(
        "backends: [", "backends: [{name: tensorrt, precision: fp16}, ")
    path = tmp_path / "cuda.yaml"
    path.write_text(suite)
    code = main(["run", str(path), "--out", str(tmp_path), "--json", "--no-progress"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    # nothing was measured: one warning line and exit 3, not a silent success; then each
    # reason once, with the number of cells it skipped (not the same line 12 times)
    assert code == 3 and out["skipped"] == 12 and out["ok"] == 0
    reasons = {r["backend"]: r["error"] for r in
               read_records(Path(out["run_dir"]) / "records.jsonl")}
    assert "CUDA is not available" in reasons["eager"]
    assert "TensorRT" in reasons["tensorrt"]
    assert captured.err.strip().splitlines() == [
        "bench: warning: nothing was measured: all 12 cells were skipped",
        f"bench: 8 cell(s) skipped: {reasons['eager']}",
        f"bench: 4 cell(s) skipped: {reasons['tensorrt']}"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_dry_run_of_a_cuda_suite_without_cuda_says_once_what_is_missing(tmp_path, capsys):
    from benchbench.cli import main as cli
    path = write_suite(tmp_path, device="cuda")
    assert cli(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    cells, notes, last = out[:8], out[8:-1], out[-1]
    assert all(line.endswith("skipped [1]") for line in cells)
    assert notes == ["[1] 8 cell(s): CUDA is not available (torch.cuda.is_available() is False)"]
    assert last == "8 cells; no run-time estimate: none of them runs on this machine (see the " \
                   "reasons above)"
    assert "GFLOP/s" not in "\n".join(out) and "0.0 min" not in "\n".join(out)


def test_dry_run_lists_cells_in_order(tmp_path, capsys):
    code, out = run_json(capsys, ["run", str(write_suite(tmp_path)), "--dry-run"])
    cells = out["cells"]
    assert code == 0 and len(cells) == 8
    est = out["estimate"]
    assert len(est["per_cell_s"]) == 8 and all(s > 0 for s in est["per_cell_s"])
    assert est["total_s"] == pytest.approx(sum(est["per_cell_s"])) and est["device_gflops"] > 0
    # a larger input costs more: the estimate follows the analysis' MACs
    assert est["per_cell_s"][2] >= est["per_cell_s"][0]
    assert cells[-1] == "fassd_net(alpha=4)@128x256/b1/channels_last-fp32/cpu"


def start_run(tmp_path, **popen_args):
    """`bench run` on the tiny suite in a child process; returns (process, results dir)."""
    out_dir = tmp_path / "res"
    cmd = [sys.executable, "-m", "benchbench.cli", "run", str(write_suite(tmp_path, budget=0.4)),
           "--out", str(out_dir), "--no-progress"]
    return subprocess.Popen(cmd, **popen_args), out_dir


def wait_for_records(out_dir, count: int):
    """The run's records.jsonl once it holds ``count`` lines (None after two minutes)."""
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list(out_dir.glob("*/records.jsonl"))
        if found and found[0].read_bytes().count(b"\n") >= count:
            return found[0]
        time.sleep(0.05)
    return None


def test_sigkill_leaves_valid_lines_and_resume_completes(tmp_path, capsys):
    proc, out_dir = start_run(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    records = wait_for_records(out_dir, 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert records is not None, "the run never wrote two records"
    lines = records.read_bytes().splitlines()
    assert 2 <= len(lines) < 8
    assert all(json.loads(line) for line in lines)          # whole JSON lines only
    run_dir = records.parent
    code, out = run_json(capsys, ["run", "--resume", str(run_dir)])
    assert code == 0 and out["already_done"] == len(lines) and out["ran"] == 8 - len(lines)
    ids = [r["cell_id"] for r in read_records(records)]
    assert len(ids) == len(set(ids)) == 8


def test_ctrl_c_keeps_finished_cells_and_says_how_to_resume(tmp_path):
    proc, out_dir = start_run(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = wait_for_records(out_dir, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "finished cells are kept. Resume with: bench run --resume" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert records is not None and len(read_records(records)) >= 1


def test_python_api_runs_a_suite_path(tmp_path):
    import benchbench

    summary = benchbench.run_suite(write_suite(tmp_path), out_dir=tmp_path, progress=False)
    assert summary.ok == 8 and (summary.run_dir / "run.json").exists()


def test_resume_cuts_a_torn_tail(tmp_path, capsys):
    code, out = run_json(capsys, ["run", str(write_suite(tmp_path)), "--out", str(tmp_path)])
    path = Path(out["run_dir"]) / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]) + lines[3][:40])     # a write cut mid-line
    assert len(read_records(path)) == 3
    code, out = run_json(capsys, ["run", "--resume", out["run_dir"]])
    assert code == 0 and out["ran"] == 5
    assert len(read_records(path)) == 8 and path.read_bytes().endswith(b"\n")


def test_resume_of_a_non_run_dir(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_cells_run_over_a_frozen_heap_which_is_thawed_after(tmp_path):
    """The collection after each cell walks only what the cells made: what was alive when the
    run started is frozen while its cells run, thawed after; a heap someone else froze stays
    theirs (not thawed)."""
    import gc

    import benchbench
    from torch import nn

    seen = []

    @benchbench.register_model(family="test", paper="none")
    def freeze_probe(*, num_classes: int = 19):
        seen.append(gc.get_freeze_count())
        return nn.Conv2d(3, num_classes, 1)

    suite = tmp_path / "probe.yaml"
    suite.write_text("name: probe\ndevice: cpu\nmodels: [freeze_probe]\nresolutions: [[32, 64]]\n"
                     "timing: {warmup: 1, min_iterations: 3, max_time_s: 0.05, repeats: 2}\n")
    assert gc.get_freeze_count() == 0
    assert benchbench.run_suite(suite, out_dir=tmp_path, progress=False).ok == 1
    assert len(seen) >= 2 and min(seen) > 10_000       # torch's objects, frozen in every round
    assert gc.get_freeze_count() == 0
    # what a worker process, SLURM job or Ray task runs: one cell's rounds
    from benchbench.cells import expand
    from benchbench.executors.stages import run_cell_rounds
    from benchbench.suite import load_suite

    seen.clear()
    probe = load_suite(suite)
    assert run_cell_rounds(expand(probe, "cpu")[0], probe, "probe-run")["status"] == "ok"
    assert len(seen) == 2 and min(seen) > 10_000 and gc.get_freeze_count() == 0
    gc.freeze()                                         # a caller's own frozen heap
    try:
        before = gc.get_freeze_count()
        assert benchbench.run_suite(suite, out_dir=tmp_path, progress=False).ok == 1
        # not thawed, and nothing of the run's frozen for good (refcounting may free a few)
        assert 10_000 < gc.get_freeze_count() <= before
    finally:
        gc.unfreeze()


def test_a_suites_threads_are_its_cells_not_the_next_runs(tmp_path):
    """``timing.threads`` holds for the suite's cells; the process has its own count again
    after them, so a later run in the same process (a notebook's) times with its own threads
    and records them truthfully."""
    import benchbench

    suite = tmp_path / "threads.yaml"
    suite.write_text("name: threads\ndevice: cpu\nmodels: [fassd_net_l2]\n"
                     "resolutions: [[64, 128]]\n"
                     "timing: {warmup: 1, min_iterations: 3, max_time_s: 0.05, threads: 2}\n")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = benchbench.run_suite(suite, out_dir=tmp_path, progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    [record] = read_records(summary.run_dir / "records.jsonl")
    assert record["status"] == "ok" and record["protocol"]["threads"] == 2
