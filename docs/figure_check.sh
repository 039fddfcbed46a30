#!/usr/bin/env bash
# The report's figures for the three searches they must stay readable on (issue 16): the demo
# ε × k grid, an Optuna search of 40 samples (continuous ε, integer k) and an AG News grid with
# three seeds. Runs each sweep into OUT_DIR/sweeps/ (a finished one is reused, an interrupted one
# resumed), writes each report into OUT_DIR/<name>/ and prints every PNG with its size in pixels;
# then look at them (any image viewer).
#
#   docs/figure_check.sh OUT_DIR [DATA_DIR]
#   e.g.  docs/figure_check.sh /tmp/figs data        # DATA_DIR holds ag_news/{train,test}.parquet
#
# Without DATA_DIR/ag_news the AG News input is skipped (say so, do not fail): `python
# data/prepare.py ag_news` puts it there. On a 2-core machine: demo ~1-2 min, Optuna ~2 min,
# AG News (TF-IDF, 20 rounds, 3 seeds) ~5 min.
set -euo pipefail
usage="usage: docs/figure_check.sh OUT_DIR [DATA_DIR]"
out=${1:?$usage}
data=${2:-data}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
mkdir -p "$out/sweeps"
out=$(cd "$out" && pwd)

failed=()
# sweep SCRIPT NAME ARGS...: run (or resume, or reuse) one sweep into $out/sweeps/NAME; a sweep
# that fails is named at the end, and the other reports are still built.
sweep() {
  local script=$1 name=$2
  shift 2
  if [ -f "$out/sweeps/$name/sweep_summary.json" ]; then
    echo "== $name: finished sweep found, reused"
    return
  fi
  local resume=()
  # eps_k_grid resumes an interrupted sweep; optuna_pareto has no --resume: it starts over.
  if [ -d "$out/sweeps/$name" ] && [ "$script" = sweeps/eps_k_grid.py ]; then
    resume=(--resume)
  else
    rm -rf "${out:?}/sweeps/$name"
  fi
  echo "== $name: python $script $*"
  if ! python "$script" --name "$name" --storage-path "$out/sweeps" "${resume[@]}" "$@" >"$out/$name.sweep.log" 2>&1; then
    tail -5 "$out/$name.sweep.log" >&2
    echo "== $name: the sweep failed (log: $out/$name.sweep.log)" >&2
    failed+=("$name")
  fi
}

sweep sweeps/eps_k_grid.py demo
sweep sweeps/optuna_pareto.py optuna --num-samples 40
if [ -f "$data/ag_news/train.parquet" ]; then
  sweep sweeps/eps_k_grid.py agnews --dataset ag_news --data-dir "$data" --rounds 20 --seeds 0,1,2
else
  echo "== agnews: skipped, no $data/ag_news/train.parquet (python data/prepare.py ag_news, or pass DATA_DIR)"
fi

names=()
for name in demo optuna agnews; do
  [ -f "$out/sweeps/$name/sweep_summary.json" ] || continue
  python -m analysis.report "$out/sweeps/$name" --out "$out/$name" >"$out/$name.report.log"
  names+=("$name")
done
python - "$out" "${names[@]}" <<'EOF'
import sys
from pathlib import Path

import matplotlib.image

root = Path(sys.argv[1])
for name in sys.argv[2:]:
    for png in sorted((root / name).glob("*.png")):
        height, width = matplotlib.image.imread(png).shape[:2]
        print(f"{png}  {width} x {height} px")
    skipped = [line for line in (root / f"{name}.report.log").read_text().splitlines() if line.startswith("skipped")]
    for line in skipped:
        print(f"  {name}: {line}")
EOF
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed sweeps: ${failed[*]}" >&2
  exit 1
fi
