#!/usr/bin/env bash
# Builds a local base image for hosts that reach no container registry, and prints its name.
#
#   BASE_IMAGE=$(bash docker/base-image.sh) && docker compose -f docker/compose.yaml build
#
# debootstrap makes a minimal Debian (Python 3.11 on bookworm; SUITE=trixie gives 3.13) with python3,
# venv and pip, then `docker import` turns the folder into an image. The host's CA bundle is copied
# in, so that pip inside the build trusts whatever TLS proxy the host trusts. Does nothing but print
# the name when the image already exists. Progress goes to stderr; stdout holds only the name.
set -euo pipefail

SUITE=${SUITE:-bookworm}
NAME=${BASE_NAME:-poolbench-base:$SUITE}
MIRROR=${DEBIAN_MIRROR:-}
# PYTHON_PACKAGE=python3.15: that Debian package (and its venv module) too, as the `python3` on PATH
# (/usr/local/bin, ahead of Debian's own /usr/bin/python3, which Debian's tools keep using).
PYTHON_PACKAGE=${PYTHON_PACKAGE:-}

die() { echo "base-image.sh: $*" >&2; exit 1; }

command -v docker >/dev/null || die "no docker command; run scripts/docker-engine.sh first"
docker info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/docker-engine.sh first"
if docker image inspect "$NAME" >/dev/null 2>&1; then
  echo "$NAME"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root; re-run as root or set BASE_IMAGE to a pullable image"
command -v debootstrap >/dev/null || die "debootstrap is missing; apt-get install debootstrap (scripts/docker-engine.sh does)"

root=$(mktemp -d /tmp/poolbench-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image.sh: debootstrap $SUITE into $root (about a minute)" >&2
extra=()
[ "$SUITE" = sid ] && extra+=(--no-check-gpg)
include=python3,python3-venv,python3-pip,ca-certificates${PYTHON_PACKAGE:+,$PYTHON_PACKAGE,$PYTHON_PACKAGE-venv}
debootstrap --variant=minbase --include="$include" \
  "${extra[@]}" "$SUITE" "$root" ${MIRROR:+"$MIRROR"} >&2 \
  || die "debootstrap of $SUITE failed (see above); check the Debian mirror or set DEBIAN_MIRROR"
if [ -n "$PYTHON_PACKAGE" ]; then
  [ -x "$root/usr/bin/$PYTHON_PACKAGE" ] || die "$SUITE has no /usr/bin/$PYTHON_PACKAGE after debootstrap"
  ln -sf "/usr/bin/$PYTHON_PACKAGE" "$root/usr/local/bin/python3"
fi
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "base-image.sh: importing as $NAME" >&2
tar -C "$root" -c . | docker import - "$NAME" >/dev/null
echo "$NAME"
