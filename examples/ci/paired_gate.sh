#!/usr/bin/env bash
# The paired latency gate, as both example workflows run it:
#
#   examples/ci/paired_gate.sh SUITE MAIN_REF
#
# SUITE is a paired suite (examples/ci/paired_cpu.yaml): the pull request's my_models.py beside
# it, and the main branch's copy under .bench-main/ as the interleaved reference. MAIN_REF is the
# main branch's commit (origin/main). The baseline is made here, on this runner, by the same
# suite with main's model on both sides (an A/A run): no stored baseline, so it works on hosted
# runners whose CPU model changes from job to job (a stored baseline is only valid on the CPU
# model it was measured on). Writes gate.md and gate.xml; exits as `bench check` does
# (0 pass, 1 regressed or failed cell, 2 not comparable).
set -euo pipefail
suite=$1
main_ref=$2
dir=$(dirname "$suite")
name=$(basename "$suite")

run_dir() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['run_dir'])" "$1"; }

mkdir -p "$dir/.bench-main"
git show "$main_ref:$dir/my_models.py" > "$dir/.bench-main/my_models.py"

base=.bench-baseline
rm -rf "$base" && mkdir -p "$base/.bench-main"
cp "$suite" "$base/$name"
cp "$dir/.bench-main/my_models.py" "$base/my_models.py"
cp "$dir/.bench-main/my_models.py" "$base/.bench-main/my_models.py"

bench run "$base/$name" --out results --json --no-progress > baseline-run.json
bench run "$suite" --out results --json --no-progress > run.json
bench check "$(run_dir run.json)" --baseline "$(run_dir baseline-run.json)" \
    --markdown gate.md --junit gate.xml
