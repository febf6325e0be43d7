#!/bin/sh
# Worker container entrypoint: checks what the worker cannot start without, then becomes the worker (exec),
# so SIGTERM from `docker stop` reaches Python directly. Arguments go to `python -m worker`.
set -eu

for name in QUEUE_URL OUTPUT_URI; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "entrypoint: $name is not set (see /opt/worker/config/worker-config.yaml)" >&2
    exit 2
  fi
done

# Scratch space: the root filesystem may be read-only; /tmp is expected to be a tmpfs (docker run --tmpfs /tmp).
export TMPDIR="${SCRATCH_DIR:-${TMPDIR:-/tmp}}"
if ! touch "$TMPDIR/.writable" 2>/dev/null; then
  echo "entrypoint: $TMPDIR is not writable; run with --tmpfs /tmp (or set SCRATCH_DIR to a writable mount)" >&2
  exit 2
fi
rm -f "$TMPDIR/.writable"

exec python3 -m worker "$@"
