"""The CI examples users copy: the workflow files parse, the suites they name exist, and the
paired gate (main branch's model as the interleaved reference) passes an unchanged model and
fails a heavier one, through the same commands the workflows run."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import xml.etree.ElementTree as ET

import yaml
from conftest import ALONE, alone, requires_cuda

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


@alone               # the A/A pair's ratio is asserted: the others run niced beside it
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
    # an A/A pair passes the gate. Shrunk to 5 x 0.15 s its 95% CI may reach past the threshold
    # on a noisy machine ("inconclusive", which passes; the suite as shipped, 9 x 1.2 s, earned
    # "unchanged" 10 of 10: README, gate calibration), but it is never attributed to the model
    assert cell["verdict"] in ("unchanged", "inconclusive"), cell
    assert 0.9 < cell["ratio"] < 1.1 and not result["regressions"], cell
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


# --- the workflows themselves, run as a CI runner runs them ------------------------------------

def _git(*args, cwd):
    return subprocess.run(["git", *map(str, args)], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def ci_checkout(tmp_path, pr_source: str | None = None) -> Path:
    """What a runner has after `actions/checkout` / GitLab's fetch: a clone of this commit whose
    origin has it as `main`, the paired suite shrunk to test size (only its time budget), and
    the pull request's change to my_models.py in the working tree."""
    sha = _git("rev-parse", "HEAD", cwd=ROOT)
    upstream = tmp_path / "upstream.git"
    _git("clone", "-q", "--bare", "--no-local", ROOT, upstream, cwd=tmp_path)
    _git("update-ref", "refs/heads/main", sha, cwd=upstream)
    work = tmp_path / "checkout"
    _git("clone", "-q", "--branch", "main", upstream, work, cwd=tmp_path)
    suite = work / "examples" / "ci" / "paired_cpu.yaml"
    spec = yaml.safe_load(suite.read_text())
    spec["resolutions"] = [[64, 128]]
    spec["timing"].update(repeats=5, max_time_s=0.15, min_iterations=8, warmup=2,
                          reference="main_my_segnet@64x128/b1/eager-fp32")
    suite.write_text(yaml.safe_dump(spec))
    if pr_source is not None:
        (work / "examples" / "ci" / "my_models.py").write_text(pr_source)
    return work


def runner_env(tmp_path) -> dict:
    """A fresh virtual environment that sees this machine's packages (torch, ...) and no
    package index: the install step must install the checkout, not a download."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)],
                   check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", VIRTUAL_ENV=str(venv), PIP_NO_INDEX="1",
               PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1",
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"), CI_DEFAULT_BRANCH="main",
               CI_PIPELINE_SOURCE="merge_request_event")
    return env


def run_script(lines: list[str], work: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", "\n".join(lines)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)


def github_job(name: str) -> list[list[str]]:
    """The `run:` steps of a job, in order (`uses:` steps are the runner's own actions)."""
    job = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())["jobs"][name]
    return [[step["run"]] for step in job["steps"] if "run" in step and "if" not in step]


def gitlab_job(name: str) -> list[list[str]]:
    jobs = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    job = jobs[name]
    return [job["before_script"], job["script"]]


@pytest.mark.parametrize("flavour, job, model_change, exit_code", [
    # both time the pull request's model against main's: ahead of the other tests (tests/_turns.py)
    pytest.param("github", "paired-gate", None, 0, marks=ALONE),       # an A/A pair
    pytest.param("gitlab", "latency-paired", "width=64", 1, marks=ALONE),
])
def test_the_ci_examples_run_as_written_on_a_local_checkout(tmp_path, flavour, job,
                                                            model_change, exit_code):
    """Each workflow's own commands, in a clone of this commit with a fresh venv and no
    package index: they install this checkout (not a package of the same name), measure the
    pull request against main on this machine, and pass an unchanged model (GitHub) or fail
    a heavier one (GitLab), naming the cell."""
    source = (EXAMPLES / "my_models.py").read_text()
    pr = source.replace("return TinySegNet(num_classes)",
                        f"return TinySegNet(num_classes, {model_change})") if model_change \
        else None
    work = ci_checkout(tmp_path, pr)
    env = runner_env(tmp_path)
    steps = github_job(job) if flavour == "github" else gitlab_job(job)
    install, *rest = steps
    done = run_script(install, work, env)
    assert done.returncode == 0, done.stdout + done.stderr
    where = run_script(["python3 -c 'import benchbench; print(benchbench.__file__)'"], work, env)
    assert where.stdout.strip() == str(work / "benchbench" / "__init__.py")   # this checkout
    gate = run_script(rest[0], work, env)
    assert gate.returncode == exit_code, gate.stdout + gate.stderr
    summary = (work / "gate.md").read_text()
    verdict = "regressed" if exit_code else "(unchanged|inconclusive)"   # noisy A/A: see above
    assert re.search(rf"`my_segnet@64x128/b1/eager-fp32/cpu` .*{verdict}", summary), summary
    assert "`main_my_segnet@64x128/b1/eager-fp32/cpu` | " in summary
    assert "reference (not gated)" in summary
    cases = {c.get("name"): c for c in ET.parse(work / "gate.xml").getroot().iter("testcase")}
    assert (cases["my_segnet@64x128/b1/eager-fp32/cpu"].find("failure") is not None) == \
        bool(exit_code)
    if flavour == "github":
        summary_step = run_script(["cat gate.md >> \"$GITHUB_STEP_SUMMARY\""], work, env)
        assert summary_step.returncode == 0 and \
            (tmp_path / "summary.md").read_text() == summary
