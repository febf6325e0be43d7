#!/usr/bin/env bash
# Step 102: build the GPU-detect image (unless IMAGE exists) and run it; with a GPU on the host
# (or GPU=1) it is started with --gpus all and must say "GPU Available: Yes".
# Environment: IMAGE, BASE_IMAGE, GPU (auto|0|1), RUN_ID.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${IMAGE:-spotscribe/gpu-detect:latest}"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
GPU="${GPU:-auto}"
if [ "$GPU" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then GPU=1; else GPU=0; fi
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$HERE/Dockerfile.gpu-detect" -t "$IMAGE" "$HERE"
fi

run=(docker run --rm --read-only --label "spotscribe.run-id=${RUN_ID:-manual}")
if [ "$GPU" = 1 ]; then
  output="$("${run[@]}" --gpus all "$IMAGE" --require)"
  expected="GPU Available: Yes"
else
  output="$("${run[@]}" "$IMAGE")"
  expected="GPU Available: No"
fi
echo "$output"
if ! grep -qx "$expected" <<<"$output"; then
  echo "FAIL: expected '$expected'" >&2
  exit 1
fi
echo "PASS: $expected"
