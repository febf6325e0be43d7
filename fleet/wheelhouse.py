"""A host-built wheelhouse served on 127.0.0.1 for image builds.

The host's pip reaches PyPI (through whatever proxy and CA bundle the host is configured with); a build run
with host networking installs with `--no-index --find-links <url>`. No CA bundle, index credential or
wheel file ever becomes part of an image layer, and a rebuild is offline and fast.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from fleet.images import LOCK_DIR, ROOT

log = logging.getLogger(__name__)

WHEELHOUSE_DIR = ROOT / ".spotscribe" / "wheelhouse"
PIP_VERSION = "25.3"  # bootstraps the image's venv from the wheelhouse (Dockerfiles: ARG PIP_VERSION)
# A fixed port keeps WHEELHOUSE_URL, and with it Docker's layer cache for the install step, the same from one
# build to the next; builds that serve it take turns (a lock), and a busy port falls back to a free one.
WHEELHOUSE_PORT = int(os.environ.get("SPOTSCRIBE_WHEELHOUSE_PORT", "38517"))


def requirements_digest(requirements: Path) -> str:
    return hashlib.sha256(Path(requirements).read_bytes() + PIP_VERSION.encode()).hexdigest()[:16]


def ensure_wheelhouse(requirements: Path, directory: Path = WHEELHOUSE_DIR, timeout_s: int = 1800) -> Path:
    """Make sure `directory` holds a wheel for every pinned requirement (plus pip); a stamp skips repeats."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f".complete-{requirements_digest(requirements)}"
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(LOCK_DIR / "wheelhouse.lock"), timeout=timeout_s):
        if stamp.exists():
            return directory
        started = time.monotonic()
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(directory),
                   "--find-links", str(directory), "--requirement", str(requirements), f"pip=={PIP_VERSION}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0:
            raise RuntimeError(f"pip wheel for {requirements} failed:\n{result.stderr[-3000:]}")
        stamp.write_text(Path(requirements).read_text())
        log.info("wheelhouse for %s ready in %.0f s", requirements, time.monotonic() - started)
    return directory


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        """A build fetches hundreds of files; their access lines are noise."""


def bind_server(directory: Path, host: str, port: int) -> ThreadingHTTPServer:
    handler = functools.partial(QuietHandler, directory=str(directory))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError:
        log.warning("port %d is busy; serving the wheelhouse on a free port (Docker's layer cache will miss)", port)
        return ThreadingHTTPServer((host, 0), handler)


@contextlib.contextmanager
def serve_directory(directory: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `directory` read-only over HTTP on host:port (0: a free one); yields the base URL."""
    server = bind_server(directory, host, port)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="wheelhouse", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def wheelhouse_buildargs(requirements: Path, timeout_s: int = 3600) -> Iterator[dict[str, str]]:
    """Build args that point a host-network build at a served wheelhouse for `requirements`."""
    directory = ensure_wheelhouse(requirements)
    with FileLock(str(LOCK_DIR / "wheelhouse-serve.lock"), timeout=timeout_s):
        with serve_directory(directory, port=WHEELHOUSE_PORT) as url:
            yield {"WHEELHOUSE_URL": url}
