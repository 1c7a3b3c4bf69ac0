"""Remote Jetson boards over a real SSH server on the loopback interface (see _sshboard.py)."""
import json
import statistics
import subprocess
from pathlib import Path

import pytest

import _fixtures  # noqa: F401 - registers tiny_seg
import benchbench
from _sshboard import SshBoard, make_board, samples, sshd_available
from benchbench.suite import suite_from_dict

pytestmark = pytest.mark.skipif(sshd_available() is not None, reason=str(sshd_available()))

TX2 = dict(version="8.2", banner="8201", summary_id="S16", times_id="S35",
           tegra_board="Jetson TX2", model="NVIDIA Jetson TX2",
           release="# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, "
                   "EABI: aarch64, DATE: Sat Feb 19 17:07:00 UTC 2022")
ORIN = dict(version="10.3", banner="100300", summary_id="S30", times_id="S33",
            tegra_board="Jetson Orin Nano 8GB", model="NVIDIA Jetson Orin Nano Developer Kit",
            release="# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, "
                    "EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024")


@pytest.fixture
def board(tmp_path):
    root = tmp_path / "tx2"
    make_board(root, **TX2)
    server = SshBoard(tmp_path / "sshd-tx2", "tx2", root)
    yield server, root
    server.stop()


def _suite(tmp_path, remote, sizes=([32, 64],), **extra):
    return suite_from_dict({
        "name": "jetson", "device": "cuda", "models": ["tiny_seg"], "resolutions": list(sizes),
        "backends": [{"name": "trtexec", "precision": "fp16"}, "eager"],
        "timing": {"protocol": "robust", "warmup_s": 0.2, "min_iterations": 10,
                   "max_time_s": 1.0},
        "power": {"sampler": "auto", "interval_ms": 100, "idle_s": 0.3},
        "remote": remote, **extra}, str(tmp_path / "suite.yaml"))


def _remote(server, root, **extra):
    return {"host": server.name, "ssh_config": server.ssh_config, "sysroot": str(root / "sysroot"),
            "workdir": str(root / "work"), **extra}


def _records(summary):
    return {r["cell_id"]: r for r in map(json.loads, (summary.run_dir / "records.jsonl").open())}


def test_a_remote_board_produces_the_record_of_a_local_cell(board, tmp_path):
    server, root = board
    summary = benchbench.run_suite(_suite(tmp_path, _remote(server, root)), out_dir=tmp_path,
                                   progress=False)
    records = _records(summary)
    r = records["tiny_seg@32x64/b1/trtexec-fp16/cuda"]
    assert r["status"] == "ok", r.get("error")
    # latency from the replayed --exportTimes (S35), FPS from the replayed summary (S16)
    trt = samples("trtexec_samples.jsonl")
    times = json.loads(trt["S35"]["text"] + "\n" + trt["S35"]["tail_text"])
    assert r["latency_ms_p50"] == pytest.approx(statistics.median(t["latencyMs"] for t in times))
    assert r["iterations"] == len(times) == 5
    assert r["fps"] == pytest.approx(41087.7)
    assert r["trtexec"]["gpu_compute_ms_mean"] == pytest.approx(0.388221)
    # power: tegrastats on the board (TX2: VDD_IN), energy per frame = P / FPS
    assert r["power_sampler"].startswith("tegrastats") and r["module_power_rule"]
    assert r["power_w_mean"] > 0 and r["idle_power_w"] > 0
    assert r["energy_mj_per_frame"] == pytest.approx(r["power_w_mean"] / r["fps"] * 1000)
    # the board and the protocol
    assert r["device_name"] == "NVIDIA Jetson TX2" and r["board"]["l4t"] == "R32.7.1"
    assert r["board"]["nvpmodel"] == "MAXN" and r["board"]["tensorrt_version"] == "8.2.1"
    p = r["protocol"]
    assert p["name"] == "trtexec" and p["trtexec_version"] == "8.2.1"
    assert "--workspace=1024" in p["build_command"] and "--fp16" in p["build_command"]
    assert "--buildOnly" in p["build_command"] and "--memPoolSize" not in p["build_command"]
    assert "--noDataTransfers" in p["command"] and "--exportTimes=" in p["command"]
    assert r["backend_info"]["engine_cached"] is False and r["backend_info"]["engine_build_s"] > 0
    # a workstation backend in a remote suite is not run here and mixed in
    eager = records["tiny_seg@32x64/b1/eager-fp32/cuda"]
    assert eager["status"] == "skipped" and "trtexec cells only" in eager["error"]
    # the cell's work directory is cleaned, the engine cache kept
    assert not [p for p in (root / "work").iterdir() if p.name != "engines"]
    assert len(list((root / "work" / "engines").iterdir())) == 1


def test_the_report_has_the_board_fps_power_and_energy(board, tmp_path):
    server, root = board
    summary = benchbench.run_suite(_suite(tmp_path, _remote(server, root),
                                          sizes=([32, 64], [64, 128])),
                                   out_dir=tmp_path, progress=False)
    from benchbench.report.html import render
    page = render([summary.run_dir], tmp_path / "r.html").read_text()
    assert "NVIDIA Jetson TX2" in page and "FPS vs input resolution" in page
    records = _records(summary)
    r = records["tiny_seg@64x128/b1/trtexec-fp16/cuda"]
    # the power column: mean power and energy per frame of the board
    assert f"{r['power_w_mean']:.2f} W, {r['energy_mj_per_frame']:.3g} mJ/frame" in page


def test_a_second_run_reuses_the_engine_built_on_the_board(board, tmp_path):
    server, root = board
    suite = _suite(tmp_path, _remote(server, root))
    benchbench.run_suite(suite, out_dir=tmp_path / "a", progress=False)
    second = _records(benchbench.run_suite(suite, out_dir=tmp_path / "b", progress=False))
    info = second["tiny_seg@32x64/b1/trtexec-fp16/cuda"]["backend_info"]
    assert info["engine_cached"] is True and info["engine_build_s"] is None
    builds = [c for c in (root / "calls.log").read_text().splitlines() if "--onnx=" in c]
    assert len(builds) == 1


def test_tensorrt_10_commands_use_mempoolsize_and_skipinference(tmp_path):
    root = tmp_path / "orin"
    make_board(root, **ORIN)
    server = SshBoard(tmp_path / "sshd", "orin", root)
    try:
        r = next(iter(_records(benchbench.run_suite(
            _suite(tmp_path, _remote(server, root)), out_dir=tmp_path,
            progress=False)).values()))
    finally:
        server.stop()
    assert r["status"] == "ok", r.get("error")
    build = r["protocol"]["build_command"]
    assert "--memPoolSize=workspace:1024" in build and "--skipInference" in build
    assert "--workspace" not in build and "--buildOnly" not in build
    assert r["fps"] == pytest.approx(12.9581)              # S30, a Jetson AGX Orin summary
    assert r["device_name"] == "NVIDIA Jetson Orin Nano Developer Kit"


def test_unreachable_host_and_missing_trtexec_fail_the_cell_with_one_line(tmp_path):
    closed = {"host": "127.0.0.1", "port": 1, "connect_timeout_s": 3,
              "options": ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"]}
    summary = benchbench.run_suite(_suite(tmp_path / "a", closed), out_dir=tmp_path / "a",
                                   progress=False)
    r = _records(summary)["tiny_seg@32x64/b1/trtexec-fp16/cuda"]
    assert r["status"] == "failed" and "cannot reach 127.0.0.1:1 over SSH" in r["error"]
    assert "\n" not in r["error"]

    root = tmp_path / "bare"
    make_board(root, **TX2, trtexec=False)
    server = SshBoard(tmp_path / "sshd", "bare", root)
    try:
        summary = benchbench.run_suite(_suite(tmp_path / "b", _remote(server, root)),
                                       out_dir=tmp_path / "b", progress=False)
    finally:
        server.stop()
    r = _records(summary)["tiny_seg@32x64/b1/trtexec-fp16/cuda"]
    assert r["status"] == "failed" and "no trtexec on bare" in r["error"]


def test_two_boards_share_the_cells_and_one_that_drops_out_leaves_its_cells(tmp_path):
    servers = []
    for name, spec in (("tx2", TX2), ("orin", ORIN)):
        root = tmp_path / name
        make_board(root, **spec)
        servers.append((SshBoard(tmp_path / f"sshd-{name}", name, root), root))
    sizes = ([32, 64], [64, 128], [96, 192], [128, 256])
    try:
        suite = _suite(tmp_path, [_remote(s, r) for s, r in servers], sizes=sizes)
        records = _records(benchbench.run_suite(suite, out_dir=tmp_path / "both",
                                                progress=False))
        trt = [r for r in records.values() if r["backend"] == "trtexec"]
        assert all(r["status"] == "ok" for r in trt)
        assert {r["board_label"] for r in trt} == {"tx2", "orin"}     # spread over both
        # one board gone: the other runs every cell
        servers[1][0].stop()
        records = _records(benchbench.run_suite(suite, out_dir=tmp_path / "one",
                                                progress=False))
        trt = [r for r in records.values() if r["backend"] == "trtexec"]
        assert len(trt) == 4 and all(r["status"] == "ok" for r in trt)
        assert {r["board_label"] for r in trt} == {"tx2"}
    finally:
        for server, _ in servers:
            if server.proc.poll() is None:
                server.stop()


def test_bad_remote_entries_are_one_line_errors(tmp_path):
    from benchbench.errors import SuiteError
    with pytest.raises(SuiteError, match=r"remote: unknown key 'hots'"):
        _suite(tmp_path, {"hots": "tx2"})
    with pytest.raises(SuiteError, match=r"remote\[1\]: 'a b' is not ssh://"):
        _suite(tmp_path, ["tx2", "a b"])
    with pytest.raises(SuiteError, match="add {name: trtexec"):
        suite_from_dict({"name": "x", "device": "cuda", "models": ["tiny_seg"],
                         "resolutions": [[32, 64]], "remote": "tx2"}, "s.yaml")


def test_kill_mid_run_and_resume_completes(board, tmp_path):
    server, root = board
    sizes = ([32, 64], [64, 128], [96, 192])
    suite_path = tmp_path / "suite.yaml"
    import yaml
    suite_path.write_text(yaml.safe_dump({
        "name": "jetson", "device": "cuda", "models": ["tiny_seg"],
        "resolutions": [list(s) for s in sizes],
        "backends": [{"name": "trtexec", "precision": "fp16"}],
        "timing": {"warmup_s": 0.2, "min_iterations": 10, "max_time_s": 1.0},
        "power": {"sampler": "none"}, "plugins": [str(_fixtures.__file__)],
        "remote": _remote(server, root)}))
    cmd = ["python3", "-m", "benchbench", "run", str(suite_path), "--out", str(tmp_path / "out"),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = None
    import time
    deadline = time.time() + 120
    while time.time() < deadline:     # kill once the first cell is recorded
        found = list((tmp_path / "out").glob("*/records.jsonl"))
        if found and found[0].read_text().count("\n") >= 1:
            run_dir = found[0].parent
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert run_dir is not None
    done_before = run_dir.joinpath("records.jsonl").read_text().count("\n")
    assert 1 <= done_before < 3
    resumed = subprocess.run(["python3", "-m", "benchbench", "run", "--resume", str(run_dir),
                              "--no-progress"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(x) for x in run_dir.joinpath("records.jsonl").open()]
    assert sorted(r["cell_id"] for r in lines) == sorted(
        f"tiny_seg@{h}x{w}/b1/trtexec-fp16/cuda" for h, w in sizes)
    assert all(r["status"] == "ok" for r in lines)


def test_trtexec_on_this_machine_runs_without_ssh(tmp_path, monkeypatch):
    root = tmp_path / "here"
    make_board(root, **TX2)
    monkeypatch.setenv("PATH", f"{root / 'bin'}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    suite = suite_from_dict({
        "name": "local", "device": "cuda", "models": ["tiny_seg"], "resolutions": [[32, 64]],
        "backends": [{"name": "trtexec", "precision": "fp32"}],
        "timing": {"warmup_s": 0.2, "min_iterations": 10, "max_time_s": 1.0},
        "power": {"sampler": "auto", "interval_ms": 100, "idle_s": 0.2}},
        str(tmp_path / "suite.yaml"))
    r = next(iter(_records(benchbench.run_suite(suite, out_dir=tmp_path,
                                                progress=False)).values()))
    assert r["status"] == "ok", r.get("error")
    assert r["board_label"] == "localhost" and r["fps"] == pytest.approx(41087.7)
    assert "--fp16" not in r["protocol"]["build_command"]            # an fp32 cell
    assert r["power_w_mean"] > 0                                     # tegrastats on PATH here
    assert list((tmp_path / "cache" / "benchbench" / "trtexec" / "engines").glob("*.engine"))


def test_a_board_that_reboots_mid_run_leaves_its_cell_to_the_other(tmp_path):
    stable_root, flaky_root = tmp_path / "tx2", tmp_path / "orin"
    make_board(stable_root, **TX2)
    flaky_dir = tmp_path / "sshd-orin"
    make_board(flaky_root, **ORIN, reboot_on_timing=str(flaky_dir / "sshd.pid"))
    stable = SshBoard(tmp_path / "sshd-tx2", "tx2", stable_root)
    flaky = SshBoard(flaky_dir, "orin", flaky_root)
    try:
        suite = _suite(tmp_path, [_remote(flaky, flaky_root), _remote(stable, stable_root)],
                       sizes=([32, 64], [64, 128], [96, 192]))
        summary = benchbench.run_suite(suite, out_dir=tmp_path, progress=False)
    finally:
        stable.stop()
        if flaky.proc.poll() is None:
            flaky.stop()
    trt = [r for r in _records(summary).values() if r["backend"] == "trtexec"]
    assert len(trt) == 3 and all(r["status"] == "ok" for r in trt), [r.get("error") for r in trt]
    assert {r["board_label"] for r in trt} == {"tx2"}
    lost = json.loads((summary.run_dir / "run.json").read_text())["boards_lost"]
    assert list(lost) == ["orin"] and "cannot reach orin over SSH" in lost["orin"]


def _cmdline(proc) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_trtexec_on_the_board_cleans_up_and_resume_completes(tmp_path):
    import os
    import signal
    import time

    import yaml
    root = tmp_path / "tx2"
    make_board(root, **TX2, run_s=300)         # a timing run that would last five minutes
    server = SshBoard(tmp_path / "sshd-tx2", "tx2", root)
    try:
        suite_path = tmp_path / "suite.yaml"
        suite_path.write_text(yaml.safe_dump({
            "name": "jetson", "device": "cuda", "models": ["tiny_seg"],
            "resolutions": [[32, 64], [64, 128]],
            "backends": [{"name": "trtexec", "precision": "fp16"}],
            "timing": {"warmup_s": 0.2, "min_iterations": 10, "max_time_s": 1.0},
            "power": {"sampler": "auto", "interval_ms": 100, "idle_s": 0.2},
            "plugins": [str(_fixtures.__file__)], "remote": _remote(server, root)}))
        host_tmp = tmp_path / "host-tmp"
        host_tmp.mkdir()
        proc = subprocess.Popen(["python3", "-m", "benchbench", "run", str(suite_path), "--out",
                                 str(tmp_path / "out"), "--no-progress"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, TMPDIR=str(host_tmp)))
        pid_file, deadline = root / "timing.pid", time.time() + 120
        while not pid_file.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert pid_file.exists(), proc.communicate()[1]
        trtexec_pid = int(pid_file.read_text())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 143, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        run_dir = next((tmp_path / "out").iterdir())
        assert lines[0] == (f"bench: terminated (SIGTERM) after 0 of 2 cells; finished cells "
                            f"are kept. Resume with: bench run --resume {run_dir}")
        time.sleep(0.5)
        assert not _alive(trtexec_pid)                       # the board's benchmark is over
        leftovers = [p for p in Path("/proc").glob("[0-9]*") if _alive(int(p.name)) and
                     str(root / "bin").encode() in _cmdline(p)]
        assert leftovers == []                               # tegrastats too
        assert sorted(p.name for p in (root / "work").iterdir()) == ["engines"]
        assert list(host_tmp.glob("bench-*")) == []           # no ONNX export folder left
        assert run_dir.joinpath("records.jsonl").read_text() == ""
        cfg = json.loads((root / "board.json").read_text())
        (root / "board.json").write_text(json.dumps(dict(cfg, run_s=0.3)))
        resumed = subprocess.run(["python3", "-m", "benchbench", "run", "--resume", str(run_dir),
                                  "--no-progress"], capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        records = [json.loads(x) for x in run_dir.joinpath("records.jsonl").open()]
        assert sorted(r["cell_id"] for r in records) == [
            "tiny_seg@32x64/b1/trtexec-fp16/cuda", "tiny_seg@64x128/b1/trtexec-fp16/cuda"]
        assert all(r["status"] == "ok" for r in records)
    finally:
        server.stop()
