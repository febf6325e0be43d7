#!/bin/sh
# Docker HEALTHCHECK: GET http://127.0.0.1:$HEALTH_PORT/<path> (default health; "ready" checks readiness).
# The image has no curl: python3 is there anyway. Exit 0 on HTTP 200, 1 otherwise (Docker's contract).
exec python3 - "${HEALTH_PORT:-8080}" "${1:-health}" <<'PY'
import sys
import urllib.request

port, path = sys.argv[1], sys.argv[2]
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=4) as reply:
        sys.exit(0 if reply.status == 200 else 1)
except Exception as exc:  # refused, timed out, 503 while not ready: all mean "not healthy"
    print(f"health check failed: {exc}", file=sys.stderr)
    sys.exit(1)
PY
