"""/health, /ready and /metrics over HTTP, from a daemon thread; responses never carry settings or secrets."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.metrics import WorkerMetrics


class WorkerStatus:
    """The lifecycle phase the health endpoints report: starting → ready → draining → stopped."""

    def __init__(self):
        self._lock = threading.Lock()
        self.phase = "starting"
        self.engine: dict = {}

    def set(self, phase: str, engine: dict | None = None) -> None:
        with self._lock:
            self.phase = phase
            if engine is not None:
                self.engine = dict(engine)

    def readiness(self) -> tuple[bool, dict]:
        with self._lock:
            ready = self.phase == "ready"
            return ready, {"ready": ready, "status": self.phase, **self.engine}


def make_handler(status: WorkerStatus, metrics: WorkerMetrics) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            route = {"/health": self.health, "/ready": self.ready, "/metrics": self.metrics}.get(self.path)
            if route is None:
                self.reply(HTTPStatus.NOT_FOUND, b'{"error": "not found"}\n', "application/json")
            else:
                route()

        def health(self) -> None:
            self.reply_json(HTTPStatus.OK, {"status": "alive"})

        def ready(self) -> None:
            ready, body = status.readiness()
            self.reply_json(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, body)

        def metrics(self) -> None:
            self.reply(HTTPStatus.OK, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)

        def reply_json(self, code: HTTPStatus, body: dict) -> None:
            self.reply(code, (json.dumps(body) + "\n").encode(), "application/json")

        def reply(self, code: HTTPStatus, payload: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def version_string(self) -> str:
            return "spotscribe-worker"

        def log_message(self, *args) -> None:
            """Probes every few seconds would drown the job log."""

    return HealthHandler


class HealthServer:
    """The endpoints on host:port (port 0 picks a free one; see `.port`)."""

    def __init__(self, host: str, port: int, status: WorkerStatus, metrics: WorkerMetrics):
        self.httpd = ThreadingHTTPServer((host, port), make_handler(status, metrics))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> "HealthServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
