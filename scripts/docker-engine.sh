#!/usr/bin/env bash
# Make a Docker engine and a local Python base image available on a Debian machine that
# reaches only package registries (no Docker Hub). Idempotent: each part is skipped when
# already done. Used by .ci/run before the docker-marked tests.
#   1. docker.io + debootstrap from Debian (if missing)
#   2. dockerd in the background (if not answering)
#   3. local/debian:bookworm from debootstrap (if missing)
#   4. local/python:3.11-bookworm: Debian's python3 + venv on top (if missing)
set -euo pipefail

DOCKER=/usr/bin/docker            # Debian's client: has BuildKit through the daemon
BASE=local/debian:bookworm
PYTHON_BASE=local/python:3.11-bookworm
STATE=${ML_CICD_DOCKER_STATE:-/tmp/ml-cicd-docker}
mkdir -p "$STATE"
say() { echo "docker-engine: $*" >&2; }

if [ ! -x "$DOCKER" ] || ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing docker.io and debootstrap from Debian..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd (log: $STATE/dockerd.log)..."
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { say "dockerd did not start; see $STATE/dockerd.log"; exit 1; }
fi

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  say "building $BASE with debootstrap (about a minute)..."
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >"$STATE/debootstrap.log" 2>&1
  # like the official slim images: no package cache, lists, docs or man pages
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" --numeric-owner -c . | "$DOCKER" import -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$rootfs"
fi

if ! "$DOCKER" image inspect "$PYTHON_BASE" >/dev/null 2>&1; then
  say "building $PYTHON_BASE (Debian python3 + venv)..."
  DOCKER_BUILDKIT=1 "$DOCKER" build -q -t "$PYTHON_BASE" - >/dev/null <<DOCKERFILE
FROM $BASE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python
DOCKERFILE
fi
say "ready: $("$DOCKER" version --format '{{.Server.Version}}') with $PYTHON_BASE"
