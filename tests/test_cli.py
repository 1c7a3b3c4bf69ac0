"""The CLI's printed output and JSON against real values."""
import json

from benchbench.cli import main


def test_analyze_fassd_net_full_resolution(capsys):
    assert main(["analyze", "fassd_net", "--size", "1024x2048"]) == 0
    out = capsys.readouterr().out
    assert "params              2,845,351" in out
    assert "GFLOPs (papers')    45.1 " in out
    assert "CIO                 352,952,320" in out
    assert "MoC                 126.60" in out
    assert "aten::prelu x18" in out


def test_analyze_json_several_sizes_and_args(capsys):
    assert main(["analyze", "fassd_net", "--size", "512x1024", "--size", "1024x2048",
                 "--arg", "alpha=4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["input_hw"] for r in rows] == [[512, 1024], [1024, 2048]]
    assert rows[1]["params"] == 2_584_279


def test_analyze_bad_input(capsys):
    assert main(["analyze", "fassd_nett", "--size", "64x128"]) == 2
    assert "did you mean 'fassd_net'" in capsys.readouterr().err
    assert main(["analyze", "fassd_net", "--size", "64by128"]) == 2
    assert main(["analyze", "fassd_net", "--size", "64x128", "--arg", "beta=1"]) == 2
    assert "takes no argument" in capsys.readouterr().err


def test_models_json(capsys):
    assert main(["models", "fc_hardnet*", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in cards] == ["fc_hardnet_70", "fc_hardnet_70_l1", "fc_hardnet_70_l2"]
    assert cards[0]["official_params"] == 4_119_257
    assert cards[0]["reported"][0]["fps"] == 53.0


def test_report_needs_a_run_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_run_needs_suite_or_resume(capsys):
    assert main(["run"]) == 2
    assert "exactly one" in capsys.readouterr().err


_PROBE = ("import sys, os; from benchbench.cli import main\n"
          "os.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n"
          "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
          "sys.stderr.write(f'code={code} torch={\"torch\" in sys.modules} '\n"
          "                 f'pandas={\"pandas\" in sys.modules}')")


def _imports_of(*argv) -> str:
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True,
                          timeout=120).stderr.strip().splitlines()[-1]


def test_the_commands_that_need_no_model_do_not_import_torch_or_pandas(tmp_path):
    log = tmp_path / "tegrastats.log"
    log.write_text("RAM 2448/7846MB (lfb 1x2MB) CPU [1%@102,0%@102] VDD_IN 2000/2000\n")
    for argv in (["--help"], ["run", "--help"], ["devices"], ["literature"],
                 ["telemetry", "tegrastats", str(log)]):
        assert _imports_of(*argv).endswith("torch=False pandas=False"), argv
    assert _imports_of("literature", "--json") == "code=0 torch=False pandas=False"


def test_models_table_has_a_header_and_the_papers_counts(capsys):
    assert main(["models", "desanet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["model", "family", "params", "(code)"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert rows["desanet_rn"][2:4] == ["-", "15.3M"]          # DESANet Table 1
    assert rows["desanet_hn"][2:4] == ["-", "6.2M"]
    assert lines[-1].startswith("params (code): the exact count of the authors' code")
    assert main(["models", "fassd_net_l2"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:4] == ["fassd_net_l2", "fassd", "2,289,454", "2.3M"]
