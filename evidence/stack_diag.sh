#!/usr/bin/env bash
# The loops behind docs/guide.md's figures on the lone thread's slow runs (2026-12-07, 09:22-09:59), each run a
# `pytest bench` of evidence/stack_diag.py's workload, its per-task log kept in a folder of its own:
#   bash evidence/stack_diag.sh suite N    # --task-stack fixed and rotate alternating (the suite moves the stack)
#   bash evidence/stack_diag.sh task N     # ROTATE=0 and 1 alternating under --task-stack fixed (the task moves it)
# each run prints the worker thread's median CPU per task over the suite's thread's.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${STACKDIAG_OUT:-/tmp/stackdiag}
for i in $(seq "$2"); do
  for arm in a b; do
    dir="$out/$1-$arm-$i"; mkdir -p "$dir"
    if [ "$1" = suite ]; then mode=$([ $arm = a ] && echo fixed || echo rotate); rot=0
    else mode=fixed; rot=$([ $arm = a ] && echo 0 || echo 1); fi
    STACKDIAG_DIR="$dir" ROTATE=$rot .venv/bin/python -m pytest bench -q -p no:cacheprovider \
      --workload-file evidence/stack_diag.py --workloads primelog --cases scaling --workers 1 \
      --executors serial,thread --passes 6 --task-stack "$mode" --benchmark-json "$dir/run.json" > "$dir/run.log" 2>&1
    awk '$4 == "MainThread" {print $7 > "'"$dir"'/main.txt"} $4 != "MainThread" {print $7 > "'"$dir"'/worker.txt"}' "$dir"/log-*.txt
    echo "$1 $arm $i worker/main CPU per task: $(python3 -c "
import statistics as s; m=s.median(map(float,open('$dir/main.txt'))); w=s.median(map(float,open('$dir/worker.txt'))); print(round(w/m,3))")"
  done
done
