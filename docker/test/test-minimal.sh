#!/usr/bin/env bash
# Step 101: build the minimal image (unless IMAGE already exists) and run it; output is kept under logs/.
# Environment: IMAGE (tag), BASE_IMAGE (build arg), LOG_DIR (default: logs/ beside this script), RUN_ID (label).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${IMAGE:-spotscribe/test-minimal:latest}"
BASE_IMAGE="${BASE_IMAGE:-ubuntu:22.04}"
LOG_DIR="${LOG_DIR:-$HERE/logs}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/test-minimal-$(date -u +%Y%m%dT%H%M%SZ).log"

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "building $IMAGE from $BASE_IMAGE" | tee -a "$LOG"
  docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$HERE/Dockerfile.minimal" -t "$IMAGE" "$HERE" >>"$LOG" 2>&1
fi

output="$(docker run --rm --read-only --label "spotscribe.run-id=${RUN_ID:-manual}" "$IMAGE")"
echo "$output" | tee -a "$LOG"
if ! grep -Eq '^Hello from Docker - [0-9]{4}-[0-9]{2}-[0-9]{2}T' <<<"$output"; then
  echo "FAIL: the container did not greet as expected" | tee -a "$LOG" >&2
  exit 1
fi
echo "PASS: minimal container ran; log: $LOG" | tee -a "$LOG"
