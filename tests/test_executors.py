"""The executor seam: the same 4-cell suite on every executor (local, a worker process per
cell, a real local Ray cluster, a real one-node SLURM cluster), workers that die, jobs that
are cancelled, a driver that is killed, and the one-GPU-per-timing-cell check."""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

import benchbench
from _slurm import SlurmCluster, slurm_missing
from benchbench.cli import main
from benchbench.records import CELL_FIELDS, EXECUTOR_FIELDS
from benchbench.store import RunStore, current_records, read_records

MODELS = ["fassd_net_l2", "fc_hardnet_70"]
SIZES = [[64, 128], [64, 192]]
TIMING = {"warmup": 1, "min_iterations": 3, "max_time_s": 0.2}

CRASHY = '''
import os
import signal
from pathlib import Path
from torch import nn
from benchbench import register_model

MARKS = Path(__file__).with_suffix(".marks")


class Crashy(nn.Module):
    """Dies in its first forward on a real tensor: always, or only the first time (a
    worker that is lost once, then runs)."""

    def __init__(self, num_classes, how):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)
        self.how = how

    def forward(self, x):
        if not x.is_meta and self.how != "fine":
            mark = MARKS / self.how
            if self.how.endswith("always") or not mark.exists():
                MARKS.mkdir(exist_ok=True)
                mark.touch()
                if self.how.startswith("exit"):
                    os._exit(3)
                os.kill(os.getpid(), signal.SIGKILL)
        return self.conv(x)


for how in ("exit_once", "exit_always", "kill_once", "kill_always", "fine"):
    def build(*, num_classes: int = 19, how=how):
        return Crashy(num_classes, how)
    build.__name__ = f"TAG_{how}"
    register_model(family="test", paper="none")(build)
'''


def suite(tmp_path, executor, models=MODELS, sizes=SIZES, name="four", **extra) -> Path:
    raw = {"name": name, "device": "cpu", "models": models, "resolutions": sizes,
           "timing": dict(TIMING), "executor": executor, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def crashy_plugin(tmp_path, tag: str) -> str:
    """Models ``TAG_exit_once``, ``TAG_kill_always``, ... (a name is registered once per
    process: each test its own tag)."""
    path = tmp_path / "crashy.py"
    path.write_text(CRASHY.replace("TAG", tag))
    return str(path)


def run(capsys, *args):
    code = main(["run", *map(str, args), "--no-progress", "--json"])
    captured = capsys.readouterr()
    out = captured.out
    return code, json.loads(out) if out.strip().startswith("{") else out + captured.err


def records(run_dir) -> list[dict]:
    return read_records(Path(run_dir) / "records.jsonl")


def by_model(run_dir) -> dict:
    return {r["model"]: r for r in current_records(records(run_dir))}


def check_four_ok(run_dir, executor: str) -> list[dict]:
    recs = records(run_dir)
    assert len(recs) == 4, [r["cell_id"] for r in recs]              # each cell exactly once
    assert {r["cell_id"] for r in recs} == {
        f"{m}@{h}x{w}/b1/eager-fp32/cpu" for m in MODELS for h, w in SIZES}
    assert all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    assert all(r["executor"]["name"] == executor for r in recs)
    assert all(set(r["executor"]) >= set(EXECUTOR_FIELDS) for r in recs)
    assert all(r["executor"]["started_unix"] < r["executor"]["finished_unix"] for r in recs)
    assert {r["model"]: r["params"] for r in recs} == {"fassd_net_l2": 2_289_454,
                                                       "fc_hardnet_70": 4_119_257}
    return recs


# Under pytest-xdist the tests of the module's four-executor run are dealt to one worker, which
# makes the run once.
four_runs_worker = pytest.mark.xdist_group("test_executors.four_runs")


# --- the same suite on every executor ------------------------------------------------------------

@pytest.fixture(scope="module")
def slurm_or_none(tmp_path_factory):
    """A real one-node SLURM cluster for this module, or None where it cannot run here."""
    missing = slurm_missing()
    try:
        import submitit  # noqa: F401
    except ImportError:
        missing = missing or "no submitit"
    if missing:
        yield None
        return
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    yield cluster
    cluster.stop()
    if saved is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = saved


@pytest.fixture
def slurm(slurm_or_none):
    if slurm_or_none is None:
        pytest.skip(f"no SLURM here: {slurm_missing() or 'no submitit'}")
    return slurm_or_none


@pytest.fixture
def idle_slurm(slurm):
    """The module's cluster with an empty queue: no job of an earlier test still running."""
    slurm.cancel_all()
    return slurm


def _has_ray() -> bool:
    import importlib.util
    return importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="module")
def four_runs(tmp_path_factory, slurm_or_none):
    """One run of the 4-cell suite per executor that can run here, kept for the tests below."""
    tmp = tmp_path_factory.mktemp("four")
    runs, seconds = {}, {}
    for name, spec in (("local", "local"), ("process", "process"),
                       ("ray", {"name": "ray", "num_gpus": 1, "num_cpus": 1,
                                "local_num_cpus": 2, "local_num_gpus": 2}),
                       ("slurm", {"name": "slurm", "exclusive": True})):
        if (name == "ray" and not _has_ray()) or (name == "slurm" and slurm_or_none is None):
            continue
        (tmp / name).mkdir()
        # Ray's tasks time 1.5 s each, so that two started together surely overlap
        timing = dict(TIMING, max_time_s=1.5, target_ci_rel=1e-6) if name == "ray" else TIMING
        t0 = time.perf_counter()
        summary = benchbench.run_suite(suite(tmp / name, spec, timing=timing),
                                       out_dir=tmp / "out", progress=False)
        seconds[name] = time.perf_counter() - t0
        runs[name] = summary.run_dir
    return runs, seconds


def _run_of(four_runs, executor: str):
    runs, _ = four_runs
    if executor not in runs:
        pytest.skip(f"the {executor} executor cannot run here (no ray / no SLURM)")
    return runs[executor]


@four_runs_worker
@pytest.mark.parametrize("executor", ["local", "process", "ray", "slurm"])
def test_the_same_suite_runs_on_every_executor_each_cell_once(four_runs, executor, tmp_path):
    run_dir = _run_of(four_runs, executor)
    check_four_ok(run_dir, executor)
    from benchbench.report.html import render
    html = render([run_dir], tmp_path / "r.html").read_text()
    assert "fc_hardnet_70" in html and "data:image/png;base64," in html
    assert f"{executor}: {socket.gethostname()}" in html            # where each cell ran


@four_runs_worker
def test_records_have_one_schema_apart_from_executor(four_runs):
    runs, _ = four_runs
    assert {"local", "process"} <= set(runs)
    keys = {name: {frozenset(r) for r in records(run)} for name, run in runs.items()}
    assert all(len(k) == 1 for k in keys.values()), keys                # within a run, too
    assert len({next(iter(k)) for k in keys.values()}) == 1               # across executors
    assert set(CELL_FIELDS) <= next(iter(keys["local"]))
    local = {r["cell_id"]: r for r in records(runs["local"])}
    for name, run in runs.items():
        for r in records(run):
            assert {k: r[k] for k in CELL_FIELDS if k != "run_id"} == \
                {k: local[r["cell_id"]][k] for k in CELL_FIELDS if k != "run_id"}


@four_runs_worker
def test_workers_are_fresh_processes_and_say_where_they_ran(four_runs):
    runs, _ = four_runs
    here = os.getpid()
    pids = {name: [r["executor"]["pid"] for r in records(run)] for name, run in runs.items()}
    assert set(pids["local"]) == {here}
    assert len(set(pids["process"])) == 4 and here not in pids["process"]


@four_runs_worker
def test_slurm_records_say_which_job_and_node(four_runs):
    slurm = [r["executor"]["slurm"] for r in records(_run_of(four_runs, "slurm"))]
    assert {s["node"] for s in slurm} == {"localhost"} and len({s["job_id"] for s in slurm}) == 4
    assert all(s["restarts"] == 0 and s["array_job_id"] for s in slurm)


@four_runs_worker
def test_exclusive_slurm_jobs_never_overlap(four_runs):
    spans = sorted((r["executor"]["started_unix"], r["executor"]["finished_unix"])
                   for r in records(_run_of(four_runs, "slurm")))
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


@four_runs_worker
def test_concurrent_ray_tasks_get_different_gpus(four_runs):
    """Ray's logical GPUs (2 on the local cluster, 1 per task, and 1 CPU per task so that two
    run at once): tasks that ran at the same time were given different devices, and the
    record keeps which."""
    recs = records(_run_of(four_runs, "ray"))
    assert {r["executor"]["cuda_visible_devices"] for r in recs} <= {"0", "1"}
    assert all(r["executor"]["ray"]["gpu_ids"] == [r["executor"]["cuda_visible_devices"]]
               for r in recs)
    overlapping = [(a, b) for i, a in enumerate(recs) for b in recs[i + 1:]
                   if a["executor"]["started_unix"] < b["executor"]["finished_unix"]
                   and b["executor"]["started_unix"] < a["executor"]["finished_unix"]]
    assert overlapping, "two tasks should have run at once on 2 logical GPUs"
    assert all(a["executor"]["cuda_visible_devices"] != b["executor"]["cuda_visible_devices"]
               for a, b in overlapping)


# --- workers that die ----------------------------------------------------------------------------

def test_a_dead_worker_process_fails_its_cell_and_resume_completes(tmp_path, capsys):
    models = ["crash_exit_once", "crash_kill_once", "crash_fine"]
    path = suite(tmp_path, "process", models=models, sizes=[[32, 64]],
                 plugins=[crashy_plugin(tmp_path, "crash")])
    code, out = run(capsys, path, "--out", tmp_path / "out")
    assert code == 3 and out["ok"] == 1 and out["failed"] == 2
    got = by_model(out["run_dir"])
    assert got["crash_exit_once"]["error"].startswith(
        "the worker process exited with code 3 before it returned the record")
    assert got["crash_kill_once"]["error"].startswith(
        "the worker process was killed by SIGKILL (the kernel's OOM killer sends SIGKILL)")
    assert got["crash_fine"]["status"] == "ok"
    code, out = run(capsys, "--resume", out["run_dir"], "--retry-failed")
    assert code == 0 and out["ok"] == 3 and out["ran"] == 2
    assert {r["status"] for r in by_model(out["run_dir"]).values()} == {"ok"}


def test_a_local_ray_cluster_is_the_runs_own(monkeypatch):
    """Without an address the executor starts a cluster of its own (address "local"): Ray's
    default would join a cluster `ray start` left on this machine, where local_num_cpus and
    local_num_gpus cannot apply and which the run's end must not stop."""
    import importlib.machinery
    import types

    from benchbench.executors.ray_tasks import RayExecutor

    calls = []
    fake = types.ModuleType("ray")
    fake.__spec__ = importlib.machinery.ModuleSpec("ray", None)
    fake.is_initialized = lambda: False
    fake.init = lambda **kw: calls.append(kw)
    monkeypatch.setitem(sys.modules, "ray", fake)
    RayExecutor(None, {"local_num_cpus": 2, "local_num_gpus": 1})
    assert calls == [{"address": "local", "num_cpus": 2, "num_gpus": 1,
                      "include_dashboard": False, "log_to_driver": False}]
    RayExecutor(None, {"address": "head:6379"})
    assert calls[1] == {"address": "head:6379", "log_to_driver": False}


def test_a_lost_ray_worker_is_retried_once_then_fails(tmp_path, capsys):
    pytest.importorskip("ray", reason="the ray executor needs ray")
    models = ["lost_kill_once", "lost_kill_always", "lost_fine"]
    path = suite(tmp_path, {"name": "ray", "local_num_cpus": 2, "num_cpus": 1, "max_retries": 1},
                 models=models, sizes=[[32, 64]], plugins=[crashy_plugin(tmp_path, "lost")])
    code, out = run(capsys, path, "--out", tmp_path / "out")
    got = by_model(out["run_dir"])
    assert code == 3 and out["ok"] == 2 and out["failed"] == 1
    assert got["lost_kill_once"]["status"] == "ok"            # lost once, retried, ran
    error = got["lost_kill_always"]["error"]
    assert error.startswith("Ray task failed after 1 retry: ") and "died" in error.lower()


# --- SLURM: a cancelled job, a killed driver -----------------------------------------------------

def _wait_for(predicate, timeout=120, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _jobs(run_dir) -> dict:
    path = Path(run_dir) / "slurm" / "jobs.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.usefixtures("idle_slurm")
def test_a_cancelled_slurm_job_fails_its_cell_with_slurms_reason(slurm, tmp_path, capsys):
    """Exclusive jobs run one at a time on the one node: the second waits, and is cancelled."""
    path = suite(tmp_path, {"name": "slurm", "poll_s": 0.5}, models=["fassd_net_l2"])
    out_dir = tmp_path / "out"

    def cancel_the_waiting_one():
        run_dir = _wait_for(lambda: next(iter(out_dir.glob("four-*")), None), what="run dir")
        jobs = _wait_for(lambda: len(_jobs(run_dir)) == 2 and _jobs(run_dir), what="jobs.json")
        _wait_for(lambda: any(line.split()[-1] == "RUNNING" for line in slurm.squeue()),
                  what="a job to run")
        subprocess.run(["scancel", jobs["fassd_net_l2@64x192/b1/eager-fp32/cpu"]],
                       env=slurm.env, check=True)

    canceller = threading.Thread(target=cancel_the_waiting_one)
    canceller.start()
    code, out = run(capsys, path, "--out", out_dir)
    canceller.join()
    got = {r["cell_id"]: r for r in records(out["run_dir"])}
    r = got["fassd_net_l2@64x192/b1/eager-fp32/cpu"]
    assert code == 3 and r["status"] == "failed"
    assert r["error"].startswith(f"SLURM job {r['executor']['slurm']['job_id']} ended CANCELLED")
    assert "without a record; its log: " in r["error"]
    assert got["fassd_net_l2@64x128/b1/eager-fp32/cpu"]["status"] == "ok"
    code, out = run(capsys, "--resume", out["run_dir"], "--retry-failed")
    assert code == 0 and out["ok"] == 2 and out["ran"] == 1


@pytest.mark.usefixtures("idle_slurm")
def test_sigterm_of_the_driver_cancels_its_jobs(slurm, tmp_path):
    slow = dict(TIMING, max_time_s=120.0, target_ci_rel=1e-6)     # runs its 120 s
    path = suite(tmp_path, {"name": "slurm", "poll_s": 0.5}, models=["fassd_net_l2"],
                 sizes=[[64, 128]], timing=slow)
    out_dir = tmp_path / "out"
    driver = _driver(path, out_dir, slurm)
    run_dir = _wait_for(lambda: next(iter(out_dir.glob("four-*")), None), what="the run dir")
    job = _wait_for(lambda: next(iter(_jobs(run_dir).values()), None), what="jobs.json")
    _wait_for(lambda: f"{job} RUNNING" in slurm.squeue(), what="the job to run")
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 143
    assert err.decode().strip().startswith("bench: terminated (SIGTERM) after 0 of 1 cells")
    _wait_for(lambda: not slurm.squeue(), timeout=30, what="the job to be cancelled")


@pytest.mark.usefixtures("idle_slurm")
def test_a_preempted_slurm_job_is_requeued_and_runs_its_cell_again(slurm, tmp_path, capsys):
    """Preemption as SLURM does it (SIGTERM, then the job's warning signal USR2): submitit's
    handler requeues the job, which runs the cell again from the start."""
    slow = dict(TIMING, max_time_s=3.0, target_ci_rel=1e-6)       # runs its 3 s
    path = suite(tmp_path, {"name": "slurm", "poll_s": 0.5}, models=["fassd_net_l2"],
                 sizes=[[64, 128]], timing=slow)
    out_dir = tmp_path / "out"

    def preempt_when_running():
        run_dir = _wait_for(lambda: next(iter(out_dir.glob("four-*")), None), what="run dir")
        job = _wait_for(lambda: next(iter(_jobs(run_dir).values()), None), what="jobs.json")
        _wait_for(lambda: any("benchbench: cell " in p.read_text(errors="replace")
                              for p in (run_dir / "slurm").glob("*/*_log.out")),
                  what="the cell to start in its job")
        time.sleep(1)
        subprocess.run(["scancel", job, "--signal", "SIGTERM"], env=slurm.env, check=True)
        # USR2 only once the job has taken the SIGTERM: the requeue USR2 starts is a child of
        # the job, which a SIGTERM delivered after it would end (slurmstepd may deliver late)
        _wait_for(lambda: any("Bypassing signal SIGTERM" in p.read_text(errors="replace")
                              for p in (run_dir / "slurm").glob("*/*_log.*")),
                  what="the job to take the SIGTERM")
        subprocess.run(["scancel", job, "--signal", "USR2"], env=slurm.env, check=True)

    preempter = threading.Thread(target=preempt_when_running)
    preempter.start()
    code, out = run(capsys, path, "--out", out_dir)
    preempter.join()
    r = records(out["run_dir"])[0]
    assert code == 0 and r["status"] == "ok", r.get("error")
    assert r["executor"]["slurm"]["restarts"] == 1


def _driver(path, out_dir, slurm, **kw):
    return subprocess.Popen([sys.executable, "-c", "import sys; from benchbench.cli import "
                             "main; sys.exit(main())", "run", str(path), "--out", str(out_dir),
                             "--no-progress"], env=dict(os.environ, SLURM_CONF=str(slurm.conf)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


@pytest.mark.usefixtures("idle_slurm")
def test_a_killed_slurm_driver_resumes_and_collects_finished_jobs(slurm, tmp_path, capsys):
    path = suite(tmp_path, {"name": "slurm", "poll_s": 0.5})
    out_dir = tmp_path / "out"
    driver = _driver(path, out_dir, slurm)
    run_dir = _wait_for(lambda: next(iter(out_dir.glob("four-*")), None), what="the run dir")
    jobs = _wait_for(lambda: len(_jobs(run_dir)) == 4 and _jobs(run_dir), what="submission")
    driver.send_signal(signal.SIGKILL)         # no clean-up: the jobs go on without it
    driver.wait()
    assert len(records(run_dir)) < 4
    _wait_for(lambda: not slurm.squeue(), timeout=180, what="the jobs to finish")
    code, out = run(capsys, "--resume", run_dir)
    recs = check_four_ok(run_dir, "slurm")
    assert code == 0 and out["ok"] == 4
    assert {r["cell_id"]: r["executor"]["slurm"]["job_id"] for r in recs} == jobs  # none re-run
    assert _jobs(run_dir) == jobs


# --- one GPU per timing cell ---------------------------------------------------------------------

def test_two_cells_timed_at_once_on_one_gpu_fail_the_later(tmp_path):
    from benchbench.runner import _RecordWriter

    class Quiet:
        def cell_done(self, record):
            pass

    store = RunStore.create(tmp_path, "gpu-overlap", {"suite": {}, "device": "cuda"})
    writer = _RecordWriter(store, Quiet())

    def rec(cell, uuid, t0, t1):
        return {"cell_id": cell, "status": "ok", "executor": {
            "name": "ray", "gpu_uuid": uuid, "started_unix": t0, "finished_unix": t1}}

    writer(rec("a", "GPU-1", 0.0, 10.0))
    writer(rec("b", "GPU-2", 5.0, 15.0))       # another GPU at the same time: fine
    writer(rec("c", "GPU-1", 10.0, 20.0))      # the same GPU after a: fine
    writer(rec("d", "GPU-1", 12.0, 13.0))      # the same GPU during c: fails
    store.close()
    got = {r["cell_id"]: r for r in records(tmp_path / "gpu-overlap")}
    assert [got[c]["status"] for c in "abcd"] == ["ok", "ok", "ok", "failed"]
    assert got["d"]["error"].startswith("timed while c was timed on the same GPU (GPU-1)")


# --- the suite's executor section ----------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    ({"name": "slrum"}, "executor.name: 'slrum' is not one of: local, process, boards, slurm, "
                        "ray (did you mean 'slurm'?)"),
    ({"name": "slurm", "partitio": "gpu"}, "executor.partitio: unknown option of the slurm "
                                           "executor; allowed: folder, partition,"),
    ({"name": "ray", "options": {"num_gpus": "one"}},
     "executor.options.num_gpus: must be int or float, got 'one'"),
    ({"name": "process", "timeout_s": float("nan")},
     "executor.timeout_s: must be a finite number >= 0, got nan"),
    ({"options": {}}, "executor.name: is required; allowed: local, process, boards, slurm, ray"),
])
def test_bad_executor_sections_are_one_line(tmp_path, capsys, value, message):
    code = main(["run", str(suite(tmp_path, value)), "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.splitlines() == [err] and message in err


def test_executor_from_the_command_line_is_recorded(tmp_path, capsys):
    code, out = run(capsys, suite(tmp_path, "local", models=["fassd_net_l2"], sizes=[[64, 128]]),
                    "--executor", "process", "--executor-opt", "timeout_s=600",
                    "--out", tmp_path / "out")
    assert code == 0
    info = json.loads((Path(out["run_dir"]) / "run.json").read_text())
    assert info["suite"]["executor"] == {"name": "process", "options": {"timeout_s": 600}}
    assert records(out["run_dir"])[0]["executor"]["name"] == "process"
    code = main(["run", str(suite(tmp_path, "local")), "--executor-opt", "nope", "--dry-run"])
    assert code == 2 and "--executor-opt 'nope': give KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("executor, library, message", [
    ("ray", "ray", "bench: the ray executor needs ray: pip install 'benchbench[ray]' (or pip "
                   "install 'ray[default]')"),
    ("slurm", "submitit", "bench: the slurm executor needs submitit: pip install "
                          "'benchbench[slurm]' (or pip install submitit)"),
])
def test_an_executor_whose_library_is_missing_says_what_to_install(tmp_path, capsys,
                                                                    monkeypatch, executor,
                                                                    library, message):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == library else real(name, *a))
    code = main(["run", str(suite(tmp_path, executor)), "--out", str(tmp_path / "out")])
    assert code == 2 and capsys.readouterr().err.strip() == message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_slurm_without_sbatch_on_path_says_so(tmp_path, capsys, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["run", str(suite(tmp_path, "slurm")), "--out", str(tmp_path / "out")])
    assert code == 2 and "submits with sbatch, which is not on PATH" in capsys.readouterr().err


def test_ray_on_an_existing_cluster_by_address(tmp_path):
    """A cluster started apart (``ray start --head``, as a lab's is), reached by address with
    Ray's token authentication; the driver disconnects at the end and the cluster stays."""
    pytest.importorskip("ray", reason="the ray executor needs ray")
    cli = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; "
                                 "sys.argv[0] = 'ray'; main()"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")      # short: Ray's socket paths
    subprocess.run(cli + ["start", "--head", "--num-cpus", "2", "--port", str(port),
                          "--include-dashboard", "false", "--disable-usage-stats",
                          f"--temp-dir={temp_dir}"],
                   check=True, capture_output=True, timeout=180)
    try:
        path = suite(tmp_path, {"name": "ray", "address": f"127.0.0.1:{port}"},
                     models=["fassd_net_l2"], sizes=[[64, 128]])
        driver = subprocess.run(        # `bench run` as a user types it (Ray reads its auth
            [sys.executable, "-c", "import sys; from benchbench.cli import main; "   # mode at
             "sys.exit(main())", "run", str(path), "--out", str(tmp_path / "out"),  # import)
             "--no-progress", "--json"], env=dict(os.environ, RAY_AUTH_MODE="token"),
            capture_output=True, text=True, timeout=300)
        assert driver.returncode == 0, driver.stderr[-2000:]
        out = json.loads(driver.stdout)                  # Ray's own lines stay off stdout
        r = records(out["run_dir"])[0]
        assert r["status"] == "ok" and r["executor"]["name"] == "ray"
        assert r["executor"]["ray"]["node_id"] and r["executor"]["pid"] != os.getpid()
        status = subprocess.run(cli + ["status", "--address", f"127.0.0.1:{port}"],
                                env=dict(os.environ, RAY_AUTH_MODE="token"),
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr       # still up after the run
    finally:
        _stop_ray_cluster(temp_dir)


def _stop_ray_cluster(temp_dir: str) -> None:
    """End the cluster `ray start --temp-dir` made: the processes naming its folder and their
    children (agents, workers), not every Ray process on the machine as `ray stop` does (which
    would end another test's local cluster too)."""
    import psutil

    procs = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in part for part in proc.info["cmdline"] or ()):
                procs.update({p.pid: p for p in (proc, *proc.children(recursive=True))})
        except psutil.Error:
            continue
    for proc in procs.values():
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    shutil.rmtree(temp_dir, ignore_errors=True)


def test_a_worker_runs_the_cells_repeats_each_opened_by_the_builtin_reference(tmp_path, capsys):
    timing = dict(TIMING, repeats=3, reference="builtin")
    code, out = run(capsys, suite(tmp_path, "process", models=["fassd_net_l2"], sizes=[[64, 128]],
                                  timing=timing), "--out", tmp_path / "out")
    r = records(out["run_dir"])[0]
    assert code == 0 and r["status"] == "ok" and r["executor"]["name"] == "process"
    assert [x["round"] for x in r["repeats"]] == [0, 1, 2] and len(r["repeat_centres_ms"]) == 3
    assert r["reference"]["workload"] == "builtin: fassd_net_l2@128x256 eager-fp32 b1 on cpu"
    assert len(r["reference"]["per_round_ms"]) == 3
    assert all(x["drift_normalised"] > 0 for x in r["repeats"])


def test_a_worker_past_its_timeout_is_killed_and_its_cell_failed(tmp_path, capsys):
    slow = dict(TIMING, max_time_s=120.0, target_ci_rel=1e-6)
    path = suite(tmp_path, {"name": "process", "timeout_s": 1}, models=["fassd_net_l2"],
                 sizes=[[64, 128]], timing=slow)
    t0 = time.monotonic()
    code, out = run(capsys, path, "--out", tmp_path / "out")
    r = records(out["run_dir"])[0]
    assert code == 3 and time.monotonic() - t0 < 60
    assert r["error"] == "the worker ran past executor.timeout_s (1 s) and was killed"
    assert r["executor"]["name"] == "process" and r["executor"]["pid"] != os.getpid()
