#!/usr/bin/env bash
# Prints the name of a base image with the Python build BUILD, making it first if needed.
#
#   BASE_IMAGE=$(bash docker/python-image.sh 3.14) && docker compose -f docker/compose.yaml build
#
# BUILD is 3.11, 3.13, 3.14, 3.15 (Debian's packages: bookworm, trixie, sid, and sid's python3.15
# beside its default 3.14, via docker/base-image.sh, unless the public python:BUILD-slim image is
# already here) or a free-threaded build: 3.13t is
# compiled from Debian trixie's CPython source with --disable-gil (docker/free-threaded.Dockerfile,
# about 3 minutes on 2 cores, then cached as an image); any other X.Yt needs PYTHON_SOURCE, a
# CPython X.Y source tarball's URL or a file name in docker/python-source/.
# Progress goes to stderr; stdout holds only the name. One line and exit 1 when it cannot be had.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "python-image.sh: $*" >&2; exit 1; }

build=${1:-}
case "$build" in
  3.11) suite=bookworm ;;
  3.13|3.13t) suite=trixie ;;
  3.14|3.14t|3.15|3.15t) suite=sid ;;
  *) die "no recipe for Python '$build'; choose 3.11, 3.13, 3.13t, 3.14, 3.14t, 3.15 or 3.15t" ;;
esac

if [ "${build%t}" = "$build" ]; then
  if docker image inspect "python:$build-slim" >/dev/null 2>&1; then
    echo "python:$build-slim"
    exit 0
  fi
  if [ "$build" = 3.15 ]; then  # sid's default python3 is 3.14; 3.15 is a package beside it
    SUITE=$suite PYTHON_PACKAGE=python3.15 BASE_NAME=${BASE_NAME:-poolbench-base:sid-py3.15} bash "$here/base-image.sh"
    exit 0
  fi
  SUITE=$suite bash "$here/base-image.sh"
  exit 0
fi

name=${BASE_NAME:-poolbench-base:$build}
if docker image inspect "$name" >/dev/null 2>&1; then
  echo "$name"
  exit 0
fi
source=${PYTHON_SOURCE:-}
if [ -z "$source" ]; then
  [ "$build" = 3.13t ] || die "$build: Debian serves no CPython ${build%t} source here (only binaries); run the GIL build ${build%t}, or set PYTHON_SOURCE to a CPython ${build%t} source tarball (a python.org URL, or a file you put in docker/python-source/) to compile $build"
  source=debian:python3.13
fi
base=$(SUITE=$suite bash "$here/base-image.sh")
echo "python-image.sh: building $build from $source with --disable-gil (about 3 minutes on 2 cores)" >&2
start=$(date +%s)
docker build --network host -f "$here/free-threaded.Dockerfile" --build-arg "BASE_IMAGE=$base" \
  --build-arg "PYTHON_SOURCE=$source" -t "$name" "$here/.." >&2 \
  || die "building $build failed (see above); check PYTHON_SOURCE=$source"
echo "python-image.sh: $name built in $(( $(date +%s) - start )) s" >&2
echo "$name"
