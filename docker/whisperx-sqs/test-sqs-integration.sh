#!/usr/bin/env bash
# Step 112: run the SQS container against a queue, send a test job, expect "Received job: <id>" in its log,
# then `docker stop` it and expect exit code 0 within STOP_TIMEOUT seconds.
# Environment: IMAGE, QUEUE_URL, AWS_ENDPOINT_URL (optional; a local cloud on 127.0.0.1), AWS_REGION,
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (passed through, never printed), RUN_ID (label), WAIT_S (default 60),
# PYTHON (a python3 with boto3, to send the test job).
set -euo pipefail

IMAGE="${IMAGE:-spotscribe/whisperx-sqs:latest}"
: "${QUEUE_URL:?QUEUE_URL is required}"
WAIT_S="${WAIT_S:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"
JOB_ID="sqs-test-$(date -u +%Y%m%dT%H%M%S)-$RANDOM"
NAME="spotscribe-sqs-test-$JOB_ID"

aws_sqs() { "${PYTHON:-python3}" - "$@" <<'PY'
import sys, boto3
sqs = boto3.client("sqs")
sqs.send_message(QueueUrl=sys.argv[1], MessageBody=sys.argv[2])
PY
}

cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT

env_args=(-e QUEUE_URL -e AWS_REGION -e AWS_DEFAULT_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY
          -e AWS_SESSION_TOKEN -e AWS_ENDPOINT_URL -e RECEIVE_WAIT_SECONDS=2)
docker run -d --name "$NAME" --network host --read-only --cap-drop ALL --tmpfs /tmp \
  --label "spotscribe.run-id=${RUN_ID:-manual}" "${env_args[@]}" "$IMAGE" >/dev/null

aws_sqs "$QUEUE_URL" "{\"job_id\": \"$JOB_ID\", \"audio\": \"s3://spotscribe-test/audio/$JOB_ID.wav\"}"
echo "sent job $JOB_ID"

deadline=$((SECONDS + WAIT_S))
until docker logs "$NAME" 2>&1 | grep -q "Received job: $JOB_ID"; do
  if [ $SECONDS -ge $deadline ]; then
    echo "FAIL: no 'Received job: $JOB_ID' within ${WAIT_S} s" >&2
    docker logs "$NAME" 2>&1 | tail -n 20 >&2
    exit 1
  fi
  sleep 1
done
echo "Received job: $JOB_ID"

started=$SECONDS
docker stop -t "$STOP_TIMEOUT" "$NAME" >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
echo "stopped in $((SECONDS - started)) s with exit code $code"
if [ "$code" != 0 ]; then
  echo "FAIL: exit code $code after docker stop" >&2
  exit 1
fi
echo "PASS: SQS container received the job and exited cleanly"
