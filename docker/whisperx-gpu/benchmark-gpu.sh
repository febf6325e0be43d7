#!/usr/bin/env bash
# Step 120 benchmark: run the GPU image with --gpus all, RUNS transcriptions of the test audio, and write the
# result (real-time factor per run, peak GPU memory, GPU, engine, model, compute type, batch size) to
# OUT_DIR/gpu-benchmark-<UTC time>.json. Without a GPU it fails, unless ALLOW_CPU=1 (then it measures CPU).
# Environment: IMAGE, RUNS (default 5), BATCH_SIZE (default 16), OUT_DIR (default reports/benchmarks), RUN_ID.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${IMAGE:-spotscribe/whisperx-gpu:latest}"
RUNS="${RUNS:-5}"
BATCH_SIZE="${BATCH_SIZE:-16}"
OUT_DIR="${OUT_DIR:-$HERE/../../reports/benchmarks}"
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/gpu-benchmark-$(date -u +%Y%m%dT%H%M%SZ).json"

run=(docker run --rm --read-only --tmpfs /tmp --cap-drop ALL --label "spotscribe.run-id=${RUN_ID:-manual}")
if [ "${ALLOW_CPU:-0}" = 1 ]; then
  args=(--runs "$RUNS" --batch-size "$BATCH_SIZE")
else
  run+=(--gpus all)
  args=(--runs "$RUNS" --batch-size "$BATCH_SIZE" --require-gpu)
fi

output="$("${run[@]}" "$IMAGE" "${args[@]}" 2>&1)" || { echo "$output" | tail -n 30 >&2; echo "FAIL: benchmark run failed" >&2; exit 1; }
result="$(grep '^RESULT ' <<<"$output" | tail -n 1 | cut -d' ' -f2-)"
if [ -z "$result" ]; then
  echo "FAIL: no RESULT line in the output" >&2
  exit 1
fi
printf '{"image": "%s", "recorded_at": "%s", "result": %s}\n' "$IMAGE" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$result" >"$OUT"
grep -E '^(GPU Available|WhisperX GPU test)' <<<"$output"
echo "benchmark written to $OUT"
