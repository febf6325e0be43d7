#!/usr/bin/env bash
# Idempotent set-up of a machine for spotscribe's local target:
# Debian packages, a running Docker engine, the pinned virtual environment and the local base image.
# Each step is skipped when its result is already there; every wait is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPOTSCRIBE_VENV:-$ROOT/.venv}"
DOCKER_WAIT_S="${SPOTSCRIBE_DOCKER_WAIT_S:-90}"
APT_PACKAGES=(docker.io containerd docker-registry debootstrap ffmpeg espeak-ng sox socat iproute2
              openssh-client openssh-server ca-certificates make)

log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }
timed() { local t0=$SECONDS; "$@"; log "$1 done in $((SECONDS - t0)) s"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "Debian packages present"; return; fi
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_docker() {
  if docker info >/dev/null 2>&1; then log "Docker engine answers"; return; fi
  log "starting containerd and dockerd"
  mkdir -p /var/log/spotscribe
  if ! pgrep -x containerd >/dev/null; then
    as_root nohup containerd >/var/log/spotscribe/containerd.log 2>&1 &
  fi
  for _ in $(seq 1 20); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.5; done
  if ! pgrep -x dockerd >/dev/null; then
    as_root nohup dockerd --containerd=/run/containerd/containerd.sock >/var/log/spotscribe/dockerd.log 2>&1 &
  fi
  local deadline=$((SECONDS + DOCKER_WAIT_S))
  until docker info >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "dockerd did not answer within ${DOCKER_WAIT_S} s; last lines of its log:"
      tail -n 20 /var/log/spotscribe/dockerd.log >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "Docker engine $(docker version --format '{{.Server.Version}}') answers"
}

install_python() {
  local stamp="$VENV/.requirements.sha256"
  local digest
  digest="$(cat "$ROOT"/requirements/*.txt "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then log "virtual environment up to date"; return; fi
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  log "installing pinned Python packages into $VENV"
  local pip_log="$VENV/pip-install.log"
  if ! { "$VENV/bin/pip" install --upgrade pip==25.3 &&
         "$VENV/bin/pip" install -c "$ROOT/requirements/constraints.txt" \
           -r "$ROOT/requirements/test.txt" -r "$ROOT/requirements/whisperx.txt" &&
         "$VENV/bin/pip" install --no-deps -e "$ROOT"; } >"$pip_log" 2>&1; then
    log "pip failed; last lines of $pip_log:"
    grep -v '^WARNING: Location' "$pip_log" | tail -n 40 >&2
    exit 1
  fi
  echo "$digest" >"$stamp"
}

build_base_image() {
  "$VENV/bin/python" -m fleet images ensure-base
}

prune_stale_images() {
  # cached builds are tagged by context digest; keep the newest two of each so the disk does not fill up
  "$VENV/bin/python" -m fleet images prune --keep 2 >/dev/null
}

main() {
  local t0=$SECONDS
  timed install_packages
  timed start_docker
  timed install_python
  timed build_base_image
  timed prune_stale_images
  log "set-up complete in $((SECONDS - t0)) s"
}

main "$@"
