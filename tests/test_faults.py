"""Faults and hostile input, reproduced for real: a full tmpfs, a SIGTERM to a real `bench run`,
a second process holding the run's lock, plugin models written here that misbehave. Each ends in
one line, the documented exit code, and every record finished before it still readable."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import _fixtures
from benchbench.cli import main

BENCH = [sys.executable, "-m", "benchbench"]
ROOT = Path(__file__).resolve().parents[1]
TIMING = {"warmup": 1, "min_iterations": 3, "max_iterations": 5, "max_time_s": 0.2}


def bench(*argv, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([*BENCH, *map(str, argv)], capture_output=True, text=True, env=env,
                          **kw)


def cli(capsys, *argv):
    """``bench ARGV`` in this process (no interpreter start-up): exit code and stderr."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def write_suite(path: Path, **fields) -> Path:
    suite = {"name": "faults", "device": "cpu", "models": ["tiny_seg"],
             "resolutions": [[32, 64], [64, 128], [96, 192]], "timing": TIMING,
             "power": {"sampler": "none"}, "equivalence": False,
             "plugins": [_fixtures.__file__], **fields}
    path.write_text(yaml.safe_dump(suite))
    return path


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


# --- 1. a full disk ------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB tmpfs (root only: CI runs the tests as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                            str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """Fill the filesystem until ``leave`` bytes are free."""
    import shutil
    filler = mount / "filler"
    free = shutil.disk_usage(mount).free
    with open(filler, "ab") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_append_on_a_full_disk_writes_the_whole_line_or_nothing(small_disk):
    from benchbench.fileio import WriteFailed
    from benchbench.store import RunStore, read_records

    store = RunStore.create(small_disk, "run", {"suite": {}, "device": "cpu"})
    store.append({"cell_id": "a", "pad": "x" * 100})
    fill(small_disk, 0)
    with pytest.raises(WriteFailed) as info:
        store.append({"cell_id": "b", "pad": "y" * 20_000})   # beyond the last page
    assert info.value.disk_full and "No space left on device" in str(info.value)
    assert f"filesystem {small_disk}" in str(info.value)
    (small_disk / "filler").unlink()                 # space comes back
    store.append({"cell_id": "c"})
    assert [r["cell_id"] for r in read_records(store.records_path)] == ["a", "c"]
    store.close()


def test_a_run_on_a_full_disk_stops_with_one_line_and_resumes(small_disk, tmp_path):
    suite = write_suite(tmp_path / "suite.yaml")
    proc = subprocess.Popen([*BENCH, "run", str(suite), "--out", str(small_disk), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.time() + 120
    while time.time() < deadline:              # the disk fills once the first cell is kept
        found = list(small_disk.glob("*/records.jsonl"))
        if found and found[0].read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    filler = fill(small_disk, 0)
    _, err = proc.communicate(timeout=120)
    run_dir = found[0].parent
    kept = records(run_dir)
    if len(kept) == 3:
        pytest.skip("the run finished before the disk was full")
    assert proc.returncode == 1, err
    line = one_line(err)
    assert "No space left on device" in line and f"filesystem {small_disk}" in line
    assert line.endswith(f"Free space there and resume with: bench run --resume {run_dir}")
    assert kept and all(r["status"] == "ok" for r in kept)        # whole records only
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == run_dir.name
    filler.unlink()
    resumed = bench("run", "--resume", run_dir, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["cell_id"] for r in records(run_dir)) == sorted(
        f"tiny_seg@{h}x{w}/b1/eager-fp32/cpu" for h, w in ((32, 64), (64, 128), (96, 192)))


# the tests that use `good_run` go to one pytest-xdist worker, which makes it once
shares_good_run = pytest.mark.xdist_group("test_faults.good_run")


@shares_good_run
def test_outputs_on_a_full_disk_are_one_line_and_leave_the_old_file(small_disk, good_run,
                                                                    capsys):
    export = small_disk / "cells.csv"
    export.write_text("old,good\n")
    fill(small_disk, 0)
    for argv in (["export", good_run, "-o", export],
                 ["report", good_run, "-o", small_disk / "r.html"],
                 ["baseline", "save", good_run, "--dir", small_disk / "b"],
                 ["check", good_run, "--baseline", good_run, "--junit", small_disk / "j.xml"]):
        code, err = cli(capsys, *argv)
        assert code == 1, (argv, err)
        assert one_line(err).startswith(f"bench: cannot write {small_disk}/")
        assert f"No space left on device (filesystem {small_disk}, 0 B free)" in err
    assert export.read_text() == "old,good\n"                 # never emptied
    assert not list(small_disk.glob(".*.tmp"))


@shares_good_run
def test_baseline_save_on_a_read_only_filesystem_is_one_line(good_run, capsys):
    code, err = cli(capsys, "baseline", "save", good_run, "--dir", "/proc/benchbench-baselines")
    assert code == 1
    assert one_line(err).startswith("bench: cannot write /proc/benchbench-baselines")


# --- 2. SIGTERM ----------------------------------------------------------------------------------

def test_sigterm_keeps_finished_cells_and_says_how_to_resume(tmp_path):
    suite = write_suite(tmp_path / "suite.yaml", timing=dict(TIMING, max_time_s=3.0,
                                                             target_ci_rel=1e-9,
                                                             max_iterations=100_000))
    proc = subprocess.Popen([*BENCH, "run", str(suite), "--out", str(tmp_path / "out"),
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list((tmp_path / "out").glob("*/records.jsonl"))
        if found and found[0].read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    run_dir = found[0].parent
    assert proc.returncode == 143
    assert one_line(err) == (f"bench: terminated (SIGTERM) after 1 of 3 cells; finished cells "
                             f"are kept. Resume with: bench run --resume {run_dir}")
    assert [r["status"] for r in records(run_dir)] == ["ok"]
    assert not (run_dir / "run.json").read_text().count("completed_at")


CTRL_C_IN_A_FINALIZER = '''
import os
import signal
from torch import nn
from benchbench import register_model


class CtrlCWhenCollected(nn.Module):
    """Ctrl-C arrives while the garbage collector finalizes the first cell's model: Python
    drops an exception raised in a finalizer (an "Exception ignored" line) and goes on."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x):
        return self.conv(x)

    def __del__(self):
        if not self.conv.weight.is_meta and os.environ.pop("CTRL_C_ONCE", None):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):       # the handler runs here, inside the finalizer
                pass


@register_model(family="test", paper="none")
def ctrl_c_when_collected(*, num_classes: int = 19):
    return CtrlCWhenCollected(num_classes)
'''


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_run(tmp_path, capsys, monkeypatch):
    plugin = tmp_path / "ctrl_c_model.py"
    plugin.write_text(CTRL_C_IN_A_FINALIZER)
    suite = write_suite(tmp_path / "s.yaml", models=["ctrl_c_when_collected"],
                        plugins=[str(plugin)])
    monkeypatch.setenv("CTRL_C_ONCE", "1")
    code, err = cli(capsys, "run", suite, "--out", tmp_path / "out", "--no-progress")
    run_dir = next((tmp_path / "out").iterdir())
    assert code == 130
    assert one_line(err) == (f"bench: interrupted after 1 of 3 cells; finished cells are kept. "
                             f"Resume with: bench run --resume {run_dir}")
    assert [r["status"] for r in records(run_dir)] == ["ok"]


# --- 4. one writer per run directory, unique run ids ---------------------------------------------

@shares_good_run
def test_a_second_process_on_the_same_run_dir_is_refused(good_run, tmp_path, capsys):
    import shutil

    from benchbench.store import RunLock

    run_dir = Path(shutil.copytree(good_run, tmp_path / "run"))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r); from benchbench.store import RunLock; "
        "RunLock(sys.argv[1]); print('locked', flush=True); time.sleep(60)") % str(ROOT),
        str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = cli(capsys, "run", "--resume", run_dir, "--retry-failed", "--no-progress")
        assert code == 2
        assert f"another bench process is writing this run (pid {holder.pid} on " in \
            one_line(err)
    finally:
        holder.kill()
        holder.wait()
    RunLock(run_dir).release()           # the kernel dropped the dead holder's lock


def test_run_ids_started_in_the_same_second_differ():
    from benchbench.store import new_run_id
    ids = {new_run_id("s") for _ in range(200)}
    assert len(ids) == 200


# --- 3, 8, 9: numbers and names in suites and on the command line --------------------------------

BAD_SUITES = {
    "timing: {max_time_s: .nan}": "timing.max_time_s: must be a non-negative finite number, "
                                   "got nan",
    "power: {idle_s: .inf}": "power.idle_s: must be a non-negative finite number, got inf",
    "power: {duration_s: 1.0e+9}": "power.duration_s: must be at most 86400",
    "timing: {target_ci_rel: .nan}": "timing.target_ci_rel: must be a non-negative finite",
    "equivalence: {min_argmax_agreement: .nan}": "equivalence.min_argmax_agreement: must be",
    "batch_sizes: [100000]": "batch_sizes[0]: must be at most 1,024",
}


@pytest.mark.parametrize("extra", list(BAD_SUITES))
def test_non_finite_and_out_of_range_numbers_are_refused(tmp_path, capsys, extra):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: x\nmodels: [fassd_net]\nresolutions: [[64, 128]]\n{extra}\n")
    code, err = cli(capsys, "run", path, "--dry-run")
    assert code == 2
    assert one_line(err).startswith(f"bench: {path}: {BAD_SUITES[extra]}")


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]"
        for i in range(8)]                                 # 10^9 strings once expanded
    path = tmp_path / "bomb.yaml"
    path.write_text("name: x\nmodels: [fassd_net]\nresolutions: [[64, 128]]\n"
                    "timing:\n  protocol:\n" + "".join(f"    {ln}\n" for ln in levels))
    start = time.perf_counter()
    done = bench("run", path, "--dry-run")
    assert time.perf_counter() - start < 30
    assert done.returncode == 2
    assert "expands to more than 100,000 YAML nodes" in one_line(done.stderr)


def test_an_oversized_suite_file_is_refused(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("name: x\n" + "# padding\n" * 200_000)
    code, err = cli(capsys, "run", path, "--dry-run")
    assert code == 2 and "a suite file is at most" in one_line(err)


@pytest.mark.parametrize("argv, message", [
    (["analyze", "fassd_net", "--size", "1000000000x1000000000"], "each side must be at most"),
    (["eval", "fassd_net", "--data", "/nonexistent", "--scales", "inf"],
     "scales must be positive finite numbers"),
    (["eval", "fassd_net", "--data", "/nonexistent", "--scales", "nan"],
     "scales must be positive finite numbers"),
])
def test_non_finite_or_huge_command_line_numbers_are_one_line(capsys, argv, message):
    code, err = cli(capsys, *argv)
    assert code == 2 and message in one_line(err)


def test_a_huge_resolution_in_a_dry_run_is_one_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nmodels: [fassd_net]\nresolutions: [[1000000000, 2000000000]]\n")
    code, err = cli(capsys, "run", path, "--dry-run")
    assert code == 2 and "must be at most 16,384" in one_line(err)


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", "..", ".hidden", ""])
def test_a_suite_name_cannot_leave_the_results_folder(tmp_path, capsys, name):
    path = write_suite(tmp_path / "s.yaml", name=name, plugins=[])   # tiny_seg: imported here
    code, err = cli(capsys, "run", path, "--out", tmp_path / "out", "--no-progress")
    assert code == 2
    assert "name:" in one_line(err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not Path("/tmp/abs").exists() and not (tmp_path.parent / "x").exists()


@shares_good_run
def test_a_baseline_name_cannot_leave_its_folder(good_run, tmp_path, capsys):
    code, err = cli(capsys, "baseline", "save", good_run, "--dir", tmp_path / "b", "--name",
                    "../../evil")
    assert code == 2 and "--name '../../evil'" in one_line(err)
    assert not list(tmp_path.parent.glob("evil*"))


# --- 8: files that lie ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("good")
    done = bench("run", write_suite(tmp / "s.yaml", resolutions=[[32, 64]]), "--out", tmp / "out",
                 "--no-progress")
    assert done.returncode == 0, done.stderr
    return next((tmp / "out").iterdir())


def _copy_run(run_dir, tmp_path):
    import shutil
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


@shares_good_run
@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "run.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), "not UTF-8"),
    (lambda d: (d / "run.json").write_text("[1, 2]"), "a JSON object is expected"),
    (lambda d: (d / "records.jsonl").write_bytes(b"\xff\xfe\x00\n{}\n"), "not a JSON record"),
    (lambda d: (d / "records.jsonl").write_text("[1]\n"), "a JSON object is expected"),
])
@pytest.mark.parametrize("command", ["report", "export", "check", "resume"])
def test_damaged_run_files_are_one_line(good_run, tmp_path, capsys, damage, message, command):
    run_dir = _copy_run(good_run, tmp_path)
    damage(run_dir)
    argv = {"report": ["report", run_dir, "-o", tmp_path / "r.html"],
            "export": ["export", run_dir], "check": ["check", run_dir, "--baseline", good_run],
            "resume": ["run", "--resume", run_dir, "--no-progress"]}[command]
    if command == "resume":          # re-imports the run's plugin: a process of its own
        done = bench(*argv)
        code, err = done.returncode, done.stderr
    else:
        code, err = cli(capsys, *argv)
    assert code == 2, err
    assert message in one_line(err)


@pytest.mark.parametrize("cells, message", [
    (None, "cells: must be a mapping of cell id to cell, got nothing"),
    ([], "cells: must be a mapping of cell id to cell, got list"),
    ({"c": 3}, "cells.c: must be a mapping"),
    ({"c": {"latency_ms_p50": 0}}, "cells.c.latency_ms_p50: must be a positive finite number"),
    ({"c": {"samples_ms": [1.0, 0.0]}}, "cells.c.samples_ms[1]: must be a positive finite"),
])
@shares_good_run
def test_a_baseline_that_lies_is_one_line(good_run, tmp_path, capsys, cells, message):
    from benchbench.regress import baseline_from_run
    baseline = baseline_from_run(good_run)
    if cells is None:
        baseline.pop("cells")
    else:
        baseline["cells"] = cells
    path = tmp_path / "b.json"
    path.write_text(json.dumps(baseline))
    code, err = cli(capsys, "check", good_run, "--baseline", path)
    assert code == 2 and message in one_line(err)


# --- 5, 6: a model that misbehaves ---------------------------------------------------------------

PLUGIN = '''
import sys
import torch
from torch import nn
from benchbench import register_model


class Bad(nn.Module):
    def __init__(self, num_classes, how):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)
        self.how = how

    def forward(self, x):
        y = self.conv(x)
        if self.how == "nan":
            return y * float("nan")
        if self.how == "classes":
            return y[:, :5]
        if self.how == "size":
            return y[:, :, ::2, ::2]
        if self.how == "tuple":
            return (y, y)
        if self.how == "int":
            return y.argmax(1, keepdim=True)
        if self.how == "exit" and not x.is_meta:
            sys.exit(7)
        return y


for how in ("nan", "classes", "size", "tuple", "int", "exit"):
    def build(*, num_classes: int = 19, how=how):
        return Bad(num_classes, how)
    build.__name__ = f"bad_{how}"
    register_model(family="test", paper="none")(build)
'''


def test_models_that_break_their_contract_fail_their_cell_and_the_run_goes_on(tmp_path,
                                                                               capsys):
    plugin = tmp_path / "bad_models.py"
    plugin.write_text(PLUGIN)
    models = ["bad_nan", "bad_classes", "bad_size", "bad_tuple", "bad_int", "bad_exit", "tiny_seg"]
    suite = write_suite(tmp_path / "s.yaml", models=models, resolutions=[[32, 64]],
                        plugins=[str(plugin)])          # tiny_seg: imported here
    code, err = cli(capsys, "run", suite, "--out", tmp_path / "out", "--no-progress", "--json")
    assert code == 3, err                                      # some cells failed
    got = {r["model"]: r for r in records(next((tmp_path / "out").iterdir()))}
    assert set(got) == set(models)                             # every cell ran
    errors = {m: got[m].get("error") or "" for m in models}
    assert "NaN or infinite" in errors["bad_nan"]
    assert "shape (1, 5, 32, 64), expected a tensor N x C x H x W = 1 x 19 x 32 x 64" \
        in errors["bad_classes"]
    assert "shape (1, 19, 16, 32)" in errors["bad_size"]
    assert "returned a tuple of 2" in errors["bad_tuple"]
    assert "torch.int64 tensor" in errors["bad_int"]
    assert errors["bad_exit"] == "SystemExit: 7"
    assert all(got[m]["status"] == "failed" for m in models[:-1])
    assert got["tiny_seg"]["status"] == "ok"


# --- 7: a label that does not fit its image ------------------------------------------------------

def test_eval_refuses_a_label_whose_size_differs_from_its_image(tmp_path, capsys):
    root = _fixtures.make_cityscapes(tmp_path / "cs", cities=("aachen",), per_city=1)
    label = next((root / "gtFine" / "val").glob("*/*_labelIds.png"))
    image = next((root / "leftImg8bit" / "val").glob("*/*.png"))
    Image.fromarray(np.zeros((64, 128), np.uint8)).save(label)
    code = main(["eval", "color_oracle", "--data", str(root), "--no-progress", "--weights",
                 str(_fixtures.oracle_checkpoint(tmp_path / "oracle.pth"))])
    err = capsys.readouterr().err
    assert code == 2
    assert one_line(err) == (f"bench: {label} is 128x64 (WxH) but its image {image} is 256x128: "
                             f"a label must have its image's size")


# --- 10: remote fields ---------------------------------------------------------------------------

@pytest.mark.parametrize("remote, message", [
    ({"host": "b", "options": "a=b"}, "options: must be a list of ssh options"),
    ({"host": "b", "options": ["-oProxyCommand=x"]}, "options: must be a list of ssh options"),
    ({"host": "b", "keep": "no"}, "keep: must be true or false, got 'no'"),
    ({"host": "b", "port": "22"}, "port: must be an integer, got '22'"),
    ({"host": "b", "port": 70000}, "port: must be 1-65535"),
    ({"host": "-oProxyCommand=touch /tmp/pwned"}, "host: '-oProxyCommand=touch /tmp/pwned' is "
                                                  "not a host name"),
    ("-oProxyCommand=x", "host: '-oProxyCommand=x' is not a host name"),
    ({"host": "b", "user": "-x"}, "user: '-x' is not a user name"),
    ({"host": "b", "workdir": "rel"}, "workdir: must be an absolute path"),
])
def test_remote_fields_are_type_checked(tmp_path, remote, message):
    from benchbench.errors import SuiteError
    from benchbench.suite import suite_from_dict
    with pytest.raises(SuiteError) as info:
        suite_from_dict({"name": "x", "device": "cuda", "models": ["fassd_net"],
                         "resolutions": [[64, 128]],
                         "backends": [{"name": "trtexec", "precision": "fp16"}],
                         "remote": remote}, "s.yaml")
    assert message in str(info.value)


def test_ssh_gets_the_destination_after_double_dash():
    from benchbench.remote.transport import RemoteSpec, SshTransport
    transport = SshTransport(RemoteSpec(host="board", port=2222))
    try:
        import unittest.mock as mock
        with mock.patch("subprocess.run") as run:
            run.return_value = subprocess.CompletedProcess([], 0, "", "")
            transport.run("true")
        argv = run.call_args[0][0]
        assert argv[-3:] == ["--", "board", "true"]
    finally:
        transport.close()


def test_a_record_that_cannot_be_written_stops_every_board():
    """The scheduler's ``on_record`` raising (a full disk) stops the other boards' cells and
    reaches the caller, instead of dying in a worker thread and leaving the run hanging."""
    import threading

    from benchbench.fileio import WriteFailed
    from benchbench.remote.scheduler import run_on_boards

    class Board:                  # a stand-in for a board: the hardware is absent here
        def __init__(self, name):
            self.transport = type("T", (), {"label": name})()
            self.cancelled = threading.Event()

        def cancel(self):
            self.cancelled.set()

        def run(self, cell):
            if cell == 0:
                return {"cell_id": cell}
            self.cancelled.wait(30)            # a long cell, until it is cancelled
            return {"cell_id": cell}

    boards = [Board("a"), Board("b")]

    def on_record(record):
        raise WriteFailed("/full/records.jsonl", OSError(28, "No space left on device"))

    start = time.perf_counter()
    with pytest.raises(WriteFailed):
        run_on_boards([0, 1, 2], boards, lambda cell, board: board.run(cell), on_record)
    assert time.perf_counter() - start < 10
    assert any(b.cancelled.is_set() for b in boards)
