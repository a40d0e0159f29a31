#!/usr/bin/env bash
# Make a Docker engine and a local Python base image available on a Debian machine that
# reaches only package registries (no Docker Hub). Idempotent: each part is skipped when
# already done. .ci/run calls it before the docker-marked tests.
#   1. docker.io + debootstrap from Debian, and skopeo + docker-registry + apache2-utils for the
#      tag-mover tests (a private registry on loopback) (if missing)
#   2. dockerd in the background (if no engine answers); its pid and log are in $ML_CICD_DOCKER_STATE
#   3. local/debian:trixie from debootstrap (if missing)
#   4. local/python:3.13-trixie: the stand-in for the pinned official python:3.13.x-slim-trixie
#      (src/ml_cicd/spec.py): Debian trixie's python3 (3.13), with pip in a venv at /opt/python first
#      on PATH, so `python -m pip install` works as in the official image (if missing)
# The two base images are saved to $ML_CICD_CACHE/base-images.tar after they are built and
# loaded from there when the engine lost them (a wiped /var/lib/docker, a CI cache restore).
#   bash scripts/docker-engine.sh && export ML_CICD_BASE_IMAGE=local/python:3.13-trixie
set -euo pipefail

DOCKER=/usr/bin/docker            # Debian's client: BuildKit through the daemon (no buildx needed)
RELEASE=trixie                    # the Debian release of the pinned official image
DEBIAN_IMAGE=${ML_CICD_DEBIAN_IMAGE:-local/debian:$RELEASE}
PYTHON_BASE=${ML_CICD_PYTHON_BASE:-local/python:3.13-$RELEASE}
STATE=${ML_CICD_DOCKER_STATE:-/tmp/ml-cicd-docker}
CACHE=${ML_CICD_CACHE:-$HOME/.cache/ml-cicd}
SAVED="$CACHE/base-images.tar"
export DOCKER_BUILDKIT=1
mkdir -p "$STATE"
say() { echo "docker-engine: $*" >&2; }
have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

missing=0
for tool in dockerd debootstrap skopeo docker-registry htpasswd; do command -v "$tool" >/dev/null || missing=1; done
if [ ! -x "$DOCKER" ] || [ "$missing" = 1 ]; then
  say "installing docker.io, debootstrap, skopeo, docker-registry and apache2-utils from Debian (about 40 s)..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    docker.io debootstrap skopeo docker-registry apache2-utils >/dev/null
fi

if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd (log: $STATE/dockerd.log)..."
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 1 120); do            # at most 60 s; it usually answers within 2 s
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -5 "$STATE/dockerd.log" >&2; say "dockerd did not start"; exit 1; }
  say "dockerd answers (pid $(cat "$STATE/dockerd.pid"); stop it with: kill \$(cat $STATE/dockerd.pid))"
fi

if ! have_image "$PYTHON_BASE" && [ -s "$SAVED" ]; then
  say "loading the base images from $SAVED..."
  "$DOCKER" load -q -i "$SAVED" >/dev/null || say "could not load $SAVED; rebuilding"
fi

built=0
if ! have_image "$PYTHON_BASE" && ! have_image "$DEBIAN_IMAGE"; then
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  say "building $DEBIAN_IMAGE with debootstrap from $mirror (about a minute)..."
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase "$RELEASE" "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1 \
    || { tail -5 "$STATE/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
  # like the official slim images: no package cache, lists, docs or man pages
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" --numeric-owner -c . | "$DOCKER" import -c 'CMD ["/bin/bash"]' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  built=1
fi

if ! have_image "$PYTHON_BASE"; then
  say "building $PYTHON_BASE (Debian's python3, pip in a venv first on PATH, on $DEBIAN_IMAGE)..."
  "$DOCKER" build -q -t "$PYTHON_BASE" - >/dev/null <<DOCKERFILE
FROM $DEBIAN_IMAGE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
    && python3 -m venv /opt/python
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["python3"]
DOCKERFILE
  built=1
fi

if [ "$built" = 1 ] || [ ! -s "$SAVED" ]; then
  mkdir -p "$CACHE"
  images=("$PYTHON_BASE")
  have_image "$DEBIAN_IMAGE" && images+=("$DEBIAN_IMAGE")
  "$DOCKER" save -o "$SAVED.tmp" "${images[@]}" && mv "$SAVED.tmp" "$SAVED"
  say "saved ${images[*]} to $SAVED ($(du -h "$SAVED" | cut -f1))"
fi
say "ready: engine $("$DOCKER" version --format '{{.Server.Version}}'), base image $PYTHON_BASE"
