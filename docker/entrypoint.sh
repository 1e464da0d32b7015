#!/bin/sh
# Runs the suite inside the container and writes /results/<label>/<run id>.json (run id: the
# matrix driver's timestamp, or "latest").
# The label names the limit (the compose service: cpus-1, cpuset-0, ...); it is recorded in
# machine_info["poolbench"]["label"]. Extra arguments go to `pytest bench`.
set -eu
label="${POOLBENCH_LABEL:-container}"
out="/results/$label"
mkdir -p "$out"
exec python -m pytest bench -p no:cacheprovider -q \
  --profile "${POOLBENCH_PROFILE:-default}" \
  --benchmark-json "$out/${POOLBENCH_RUN_ID:-latest}.json" "$@"
