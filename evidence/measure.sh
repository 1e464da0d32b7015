#!/usr/bin/env bash
# Re-measures every figure README.md and docs/ quote, on this machine, then trims the result files into
# evidence/ (python -m scripts.evidence trim) and rewrites the generated blocks of README.md and docs/ from them
# (python -m scripts.evidence write). Keep the machine otherwise idle while it runs: about 50
# minutes on a 2-core VM (topic dask: about 10). Needs .venv (README.md, "Two commands") and, for
# the container matrix, a Docker engine (scripts/docker-engine.sh starts one on a Debian host as root).
#
#   bash evidence/measure.sh            # everything
#   ONLY="crash faults" bash evidence/measure.sh    # some topics (see the case below)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RAW=${RAW:-/tmp/poolbench-evidence}
ONLY=${ONLY:-"frontpage phases growth gate denied ab limits stack reference dask crash faults interrupts matrix cluster builds freethreaded"}
# The commit before the warm reference (issue #30): topic reference runs its main job beside this one's.
OLD_COMMIT=${OLD_COMMIT:-b41c88a}
mkdir -p "$RAW"

# run NAME [taskset args --] pytest-bench-args...: one `pytest bench` run saved as $RAW/NAME.json; with
# CACHE=DIR, pytest's cache in DIR (a calibration kept from run to run), else none
run() {
  local name=$1; shift
  local prefix=()
  if [ "${1:-}" = "taskset" ]; then prefix=(taskset -c "$2"); shift 3; fi
  local cache=(-p no:cacheprovider)
  if [ -n "${CACHE:-}" ]; then cache=(-o cache_dir="$CACHE"); fi
  echo "== $name ($(date -u +%T))"
  if ! "${prefix[@]}" $PY -m pytest bench -q "${cache[@]}" --benchmark-json "$RAW/$name.json" "$@" \
      > "$RAW/$name.log" 2>&1; then
    echo "failed: $name (log: $RAW/$name.log)"; tail -5 "$RAW/$name.log"; exit 1
  fi
}

for topic in $ONLY; do
  case $topic in
    frontpage)  # README's front page: the main job as a new user runs it (its end-of-run table, its summary plot)
      echo "== frontpage ($(date -u +%T))"
      rm -rf "$RAW/frontpage"; mkdir -p "$RAW/frontpage"
      # pytest's cache fresh, as in a new clone: a calibration kept from earlier runs here can run long (docs/guide.md)
      $PY -m pytest bench -o cache_dir="$RAW/frontpage/cache" --benchmark-json "$RAW/frontpage/main-job.json" \
        > "$RAW/frontpage/main-job.log" 2>&1
      $PY -m scripts.report "$RAW/frontpage/main-job.json" --out "$RAW/frontpage/report" > /dev/null ;;
    phases)  # "The sampling plan": the host's speed phases, by a plain loop (fresh processes, over time, each CPU at once)
      echo "== phases ($(date -u +%T))"
      $PY evidence/host_phases.py --json "$RAW/phases.json" > "$RAW/phases.log" ;;
    growth)  # "Profiles and what they cost": quick-profile sweeps, one axis varied at a time
      for w in 1 1,2 1,2,4 1,2,4,8; do run "growth-workers-$w" --profile quick --workers "$w"; done
      for wl in cpu_python cpu_python,io_sleep cpu_python,io_sleep,zlib,numpy_ufunc; do
        run "growth-workloads-$wl" --profile quick --workers 1,2,4,8 --workloads "$wl"
      done ;;
    gate)  # "Regression gate": six unchanged quick runs, then three confined to CPU 0, all with run 1's sizes
      run gate-run1 --profile quick
      for i in 2 3 4 5 6; do run "gate-run$i" --profile quick --sizes-from "$RAW/gate-run1.json"; done
      # the two-file gate's bars from these unchanged runs made apart (each against the first)
      $PY -m scripts.ab_noise --apart "$RAW"/gate-run[1-6].json --out "$RAW/two-file-bars.json" > "$RAW/two-file-bars.log"
      for i in 1 2 3; do
        run "gate-onecpu$i" taskset 0 -- --profile quick --sizes-from "$RAW/gate-run1.json"
      done ;;
    denied)  # "Regression gate": runs beside a busy loop, and a workload made 30 % slower on purpose
      for i in 1 2 3; do
        $PY -c "while True: pass" & busy=$!
        sleep 3
        run "gate-busy$i" --profile quick --sizes-from "$RAW/gate-run1.json"
        kill "$busy"; wait "$busy" 2>/dev/null || true
      done
      slow=(--profile quick --workload-file evidence/slowable.py --workloads cpu_python,numpy_ufunc,slowable)
      run gate-work-base "${slow[@]}"
      POOLBENCH_SLOWDOWN=1.3 run gate-work-slowed "${slow[@]}" --sizes-from "$RAW/gate-work-base.json" ;;
    limits)  # "Against the physical limits": three default runs, one after the other, with pytest's cache (the
      # later runs keep the first one's calibration, as a user's runs on one machine do)
      rm -rf "$RAW/cache"
      for i in 1 2 3; do CACHE="$RAW/cache" run "default-run$i"; done ;;
    stack)  # "Against the physical limits": one-worker pools with each thread's stack fixed, then rotated, alternating
      # (evidence/stacklog.py: count_primes writing each task's own thread CPU time, timing code of its own)
      rm -rf "$RAW/stack-cache" "$RAW/stacklog" "$RAW/stack-tasks.jsonl"
      for i in $(seq 1 16); do
        for mode in fixed rotate; do
          mkdir -p "$RAW/stacklog/$mode-$i"
          STACKLOG_DIR="$RAW/stacklog/$mode-$i" CACHE="$RAW/stack-cache" run "stack-$mode-$i" \
            --workload-file evidence/stacklog.py --workloads stacklog --executors serial,thread,process \
            --workers 1 --cases scaling --passes 6 --task-stack "$mode"
          PYTHONPATH=. $PY evidence/stacklog.py "$RAW/stacklog/$mode-$i" "$mode" "$i" >> "$RAW/stack-tasks.jsonl"
        done
      done ;;
    reference)  # "Against the physical limits": the reference checked other ways (after topic limits)
      # the main job of the code before the warm reference, on this machine, for what moved
      rm -rf "$RAW/old" && git worktree prune && git worktree add --detach --force "$RAW/old" "$OLD_COMMIT" > /dev/null
      echo "== old-reference ($OLD_COMMIT, $(date -u +%T))"
      (cd "$RAW/old" && "$OLDPWD/$PY" -m pytest bench -q -p no:cacheprovider \
        --benchmark-json "$RAW/old-reference.json" > "$RAW/old-reference.log" 2>&1)
      git worktree remove --force "$RAW/old"
      # many small objects per task: what a collection of the suite's heap did to a lone probe
      for i in 1 2 3; do
        run "containers-run$i" --workload-file examples/containers.py --workloads containers --cases scaling
      done
      # plain executors, warm serial tasks, timing code of its own, at run 1's task sizes
      echo "== independent ($(date -u +%T))"
      $PY evidence/independent.py "$RAW/default-run1.json" "$RAW/containers-run1.json" \
        > "$RAW/independent.jsonl" 2> "$RAW/independent.log" ;;
    dask)  # "dask: where a task's time goes": both configurations in three default runs, then by hand
      for i in 1 2 3; do
        run "dask-run$i" --cases scaling,dispatch --workloads cpu_python,numpy_ufunc --executors serial,process,dask
      done
      echo "== dask parts ($(date -u +%T))"
      $PY evidence/dask_parts.py --rounds 9 > "$RAW/dask-parts.jsonl" 2> "$RAW/dask-parts.log" ;;
    cluster)  # "dask: where a task's time goes": the same figures on a cluster of containers (2 workers of 1 CPU)
      bash scripts/docker-engine.sh
      echo "== cluster ($(date -u +%T))"
      rm -rf "$RAW/cluster"
      $PY -m scripts.matrix --cluster 2xcpus-1 --profile default --results "$RAW/cluster" --no-report \
        -- --cases scaling,dispatch --workloads cpu_python > "$RAW/cluster.log" 2>&1 ;;
    crash)  # "Faults": what a crash in a worker does, per executor and start method
      run crash --cases crash --start-methods fork,spawn ;;
    faults)  # "The allocator is a condition of the measurement": the three policies, every executor
      for m in neutral fixed dynamic; do
        run "malloc-$m" --cases scaling --workloads hash_alloc,numpy_ufunc --executors serial,thread,process,dask \
          --start-methods fork,forkserver,spawn --workers 1,2 --malloc "$m"
      done ;;
    interrupts)  # "Faults": from the stop signal to the end of the process, the whole sweep once
      echo "== interrupts ($(date -u +%T))"
      rm -f "$RAW/interrupt-times.jsonl"
      POOLBENCH_INTERRUPT_TIMES="$RAW/interrupt-times.jsonl" $PY -m pytest tests/test_interrupts.py \
        -m "interrupt_sweep or not interrupt_sweep" -q -p no:cacheprovider > "$RAW/interrupts.log" 2>&1 ;;
    matrix)  # "CPU limits": the quick matrix (CI's), then cpus-1 and cpus-0.5 at the default profile
      bash scripts/docker-engine.sh
      echo "== matrix quick ($(date -u +%T))"
      rm -rf "$RAW/matrix-quick" "$RAW/matrix-default"
      $PY -m scripts.matrix --backend docker --limits cpus-0.5,cpus-1,cpuset-0 --profile quick \
        --results "$RAW/matrix-quick" --no-report > "$RAW/matrix-quick.log" 2>&1
      echo "== matrix default ($(date -u +%T))"
      $PY -m scripts.matrix --backend docker --limits cpus-1,cpus-0.5 --profile default \
        --results "$RAW/matrix-default" --no-report > "$RAW/matrix-default.log" 2>&1 ;;
    builds)  # "Other Python builds": 3.11, 3.13, free-threaded 3.13t, 3.14 and 3.15, no CPU limit, one at a time
      # PYTHONS=3.14,3.15 re-measures some builds; scripts.evidence trim replaces only their files
      bash scripts/docker-engine.sh
      echo "== builds ${PYTHONS:-all} ($(date -u +%T))"
      rm -rf "$RAW/builds"
      $PY -m scripts.matrix --pythons "${PYTHONS:-3.11,3.13,3.13t,3.14,3.15}" --limits unlimited \
        --results "$RAW/builds" --no-report -- --cases scaling,memory,cold_start,payload,crash \
        --workloads cpu_python,io_sleep,numpy_ufunc --workers 1,2 > "$RAW/builds.log" 2>&1 ;;
    freethreaded)  # "Other Python builds": ftscalingbench's patterns on 3.13t, the suite's thread pool and raw threads
      bash scripts/docker-engine.sh
      echo "== freethreaded ($(date -u +%T))"
      # three fresh processes each way: on 3.13t a process settles into a state in which a pattern scales or
      # not (docs/builds.md), so one process is one draw; raw threads run at the first suite run's task sizes
      rm -rf "$RAW"/ftscaling "$RAW"/ftscaling-run*
      for i in 1 2 3; do
        $PY -m scripts.matrix --pythons 3.13t --limits unlimited --results "$RAW/ftscaling-run$i" --no-report \
          --workload-file evidence/ftscaling.py -- --cases scaling --executors serial,thread --workers 1,2 \
          --workloads ft_closure,ft_method,ft_dict,ft_string,ft_float > "$RAW/ftscaling-run$i.log" 2>&1
      done
      sized=$(ls "$RAW"/ftscaling-run1/unlimited-py3.13t/*.json | head -1)
      # raw threads with the file imported and loaded as the suite loads it, then a plain pool (a new one per try)
      for i in 1 2 3; do
        for way in "--load-as import" "--load-as suite" "--method pool --repeats 12"; do
          # shellcheck disable=SC2086  # $way: two or four words
          docker run --rm --network none -v "$PWD:/src:ro" -v "$sized:/tmp/sizes.json:ro" -w /src -e HOME=/tmp \
            --entrypoint python poolbench:py3.13t evidence/ftscaling_raw.py /tmp/sizes.json $way
        done
      done > "$RAW/ftscaling-raw.jsonl" ;;
    ab)  # "The A/B gate": the bars from A/A runs, then 10 A/A, 10 at 10 % slower, 10 at 5 % slower, 3 with a lock
      echo "== ab ($(date -u +%T))"
      # AB_REDERIVE=1: keep the A/A runs already in $RAW/ab/noise and derive the bars from them again (a change
      # of the gate's rules, not of what the suite measures); else measure them
      if [ -n "${AB_REDERIVE:-}" ] && [ -d "$RAW/ab/noise" ]; then
        find "$RAW/ab" -mindepth 1 -maxdepth 1 ! -name noise -exec rm -rf {} +
      else
        rm -rf "$RAW/ab"; mkdir -p "$RAW/ab"
      fi
      # an arm is a folder holding evidence/abwork.py as a checkout would, its knobs edited in the copy
      arm() {
        mkdir -p "$RAW/ab/arms/$1"
        sed -e "s/^SLOWDOWN = 1.0$/SLOWDOWN = $2/" -e "s/^LOCKED = 0.0$/LOCKED = $3/" evidence/abwork.py \
          > "$RAW/ab/arms/$1/abwork.py"
      }
      arm base 1.0 0.0; arm same 1.0 0.0; arm slow10 1.10 0.0; arm slow5 1.05 0.0; arm lock 1.0 0.75
      $PY -m scripts.ab_noise "$RAW/ab/arms/base" --workload-file abwork.py --runs 10 --out "$RAW/ab/bars.json" \
        --results "$RAW/ab/noise" ${AB_REDERIVE:+--rederive} > "$RAW/ab/noise.log" 2>&1
      for kind in same slow10 slow5 lock; do
        runs=10; [ "$kind" = lock ] && runs=3
        for i in $(seq 1 $runs); do
          echo "== ab $kind $i ($(date -u +%T))"
          rc=0
          $PY -m scripts.ab "$RAW/ab/arms/base" "$RAW/ab/arms/$kind" --workload-file abwork.py \
            --bars "$RAW/ab/bars.json" --out "$RAW/ab/$kind-$i" --format json > "$RAW/ab/$kind-$i.out" \
            2> "$RAW/ab/$kind-$i.log" || rc=$?
          if [ "$rc" != 0 ] && [ "$rc" != 1 ] && [ "$rc" != 3 ]; then
            echo "failed: ab $kind $i (exit $rc; log: $RAW/ab/$kind-$i.log)"; tail -3 "$RAW/ab/$kind-$i.log"; exit 1
          fi
        done
      done ;;
    *) echo "unknown topic $topic"; exit 2 ;;
  esac
done
echo "== done ($(date -u +%T)); trimming into evidence/"
$PY -m scripts.evidence trim "$RAW"
$PY -m scripts.evidence write  # README.md and docs/*.md
