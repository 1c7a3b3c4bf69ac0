"""The CI examples users copy: the workflow files parse, the suites they name exist, and the
paired gate (main branch's model as the interleaved reference) passes an unchanged model and
fails a heavier one, through the same commands the workflows run."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import requires_cuda

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "ci"


@pytest.mark.parametrize("workflow", ["github-actions.yml", "gitlab-ci.yml"])
def test_workflows_parse_and_name_suites_that_exist(workflow):
    text = (EXAMPLES / workflow).read_text()
    yaml.safe_load(text)
    suites = set(re.findall(r"(suites/\w+\.yaml|examples/ci/\w+\.yaml)", text))
    assert {"examples/ci/paired_cpu.yaml", "examples/ci/paired_gpu.yaml"} <= suites
    assert len(suites) >= 4
    for suite in suites:
        assert (ROOT / suite).is_file(), suite


def paired_checkout(tmp_path, pr_source: str, name: str = "paired_cpu.yaml",
                    shrink: bool = True, size: tuple = (64, 128)) -> Path:
    """examples/ci as a job sees it: the pull request's my_models.py, main's in .bench-main/,
    and the suite (shrunk to test size and time)."""
    work = tmp_path / "ci"
    work.mkdir(parents=True)
    (work / "my_models.py").write_text(pr_source)
    (work / ".bench-main").mkdir()
    shutil.copy(EXAMPLES / "my_models.py", work / ".bench-main" / "my_models.py")
    suite = yaml.safe_load((EXAMPLES / name).read_text())
    if shrink:
        precision = suite["backends"][0]["precision"]
        suite["resolutions"] = [list(size)]
        suite["timing"].update(repeats=5, max_time_s=0.15, min_iterations=8, warmup=2,
                               reference=f"main_my_segnet@{size[0]}x{size[1]}/b1/eager-{precision}")
    (work / name).write_text(yaml.safe_dump(suite))
    return work / name


def bench(*args) -> subprocess.CompletedProcess:
    """A fresh process per command, as in CI (the two checkouts register the same names)."""
    return subprocess.run([sys.executable, "-m", "benchbench.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def run(suite: Path, out: Path) -> str:
    done = bench("run", suite, "--out", out, "--json", "--no-progress")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["run_dir"]


def test_paired_gate_passes_the_same_model_and_fails_a_heavier_one(tmp_path):
    source = (EXAMPLES / "my_models.py").read_text()
    base = run(paired_checkout(tmp_path / "main", source), tmp_path / "res")
    saved = json.loads(bench("baseline", "save", base, "--dir", tmp_path / "baselines",
                             "--json").stdout)["baseline"]
    same = run(paired_checkout(tmp_path / "pr1", source), tmp_path / "res")
    check = bench("check", same, "--baseline", saved, "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    result = json.loads(check.stdout)
    assert result["metric"] == "latency_rel_p50"
    cell = next(c for c in result["cells"] if c["cell_id"].startswith("my_segnet@"))
    assert cell["verdict"] == "unchanged" and 0.9 < cell["ratio"] < 1.1
    heavier = source.replace("return TinySegNet(num_classes)",
                             "return TinySegNet(num_classes, width=64)")
    assert heavier != source
    slow = run(paired_checkout(tmp_path / "pr2", heavier), tmp_path / "res")
    check = bench("check", slow, "--baseline", saved, "--json")
    assert check.returncode == 1, check.stdout + check.stderr
    result = json.loads(check.stdout)
    assert result["regressions"] == ["my_segnet@64x128/b1/eager-fp32/cpu"]


def test_the_gpu_paired_suite_validates_and_names_its_reference_cell(tmp_path):
    suite = paired_checkout(tmp_path, (EXAMPLES / "my_models.py").read_text(),
                            "paired_gpu.yaml", shrink=False)
    listed = bench("run", suite, "--dry-run", "--out", tmp_path / "res")
    assert listed.returncode == 0, listed.stderr
    assert "my_segnet@512x1024/b1/eager-fp16/cuda" in listed.stdout
    assert "main_my_segnet@512x1024/b1/eager-fp16/cuda" in listed.stdout
    spec = yaml.safe_load(suite.read_text())
    assert spec["timing"]["reference"] + "/cuda" in listed.stdout


@requires_cuda
def test_gpu_paired_gate_passes_the_same_model_and_fails_a_heavier_one(tmp_path):
    def checkout(where, source):
        return paired_checkout(tmp_path / where, source, "paired_gpu.yaml", size=(512, 1024))

    source = (EXAMPLES / "my_models.py").read_text()
    base = run(checkout("main", source), tmp_path / "res")
    same = run(checkout("pr1", source), tmp_path / "res")
    check = bench("check", same, "--baseline", base, "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    # more kernels at full resolution: slower on a GPU, where a wider tiny net may not be
    heavier = source.replace(
        "return TinySegNet(num_classes)",
        "return nn.Sequential(TinySegNet(num_classes), "
        "*[nn.Conv2d(num_classes, num_classes, 3, padding=1) for _ in range(8)])")
    assert heavier != source
    slow = run(checkout("pr2", heavier), tmp_path / "res")
    check = bench("check", slow, "--baseline", base, "--json")
    assert check.returncode == 1, check.stdout + check.stderr
    assert json.loads(check.stdout)["regressions"] == ["my_segnet@512x1024/b1/eager-fp16/cuda"]
