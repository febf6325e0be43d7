"""A local image registry: Debian's `docker-registry` (distribution v2) on 127.0.0.1, ECR's data plane locally.

Basic auth (htpasswd, bcrypt) is on when credentials are given, so `docker login` with the ECR token is a
real check: a wrong password is refused, as ECR refuses it.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import tempfile
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import requests

from fleet.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

REGISTRY_BINARY = "docker-registry"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = ", ".join((MANIFEST_V2, "application/vnd.oci.image.manifest.v1+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json"))


class RegistryUnavailable(RuntimeError):
    """The registry binary is missing or did not answer in time."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def as_auth(self) -> tuple[str, str]:
        return self.username, self.password


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def htpasswd_line(credentials: Credentials) -> str:
    import bcrypt

    hashed = bcrypt.hashpw(credentials.password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return f"{credentials.username}:{hashed}\n"


def registry_config(root: Path, addr: str, htpasswd: Path | None) -> str:
    """distribution v2 configuration (YAML is a superset of JSON, so JSON keeps it dependency-free)."""
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": addr, "secret": "spotscribe-local-registry"},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "spotscribe", "path": str(htpasswd)}}
    return json.dumps(config, indent=2)


class LocalRegistry(AbstractContextManager):
    """`docker-registry serve` on 127.0.0.1:<free port> with its storage in a temporary directory.

    start() cleans up after itself when the registry does not come up; stop() is idempotent.
    """

    def __init__(self, credentials: Credentials | None = None, host: str = "127.0.0.1", port: int = 0,
                 start_timeout_s: float = 30.0):
        self.credentials, self.host = credentials, host
        self.port = port or free_port(host)
        self.start_timeout_s = start_timeout_s
        self.root: Path | None = None
        self.process: subprocess.Popen | None = None

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    @property
    def log_path(self) -> Path | None:
        return self.root / "registry.log" if self.root else None

    def start(self) -> "LocalRegistry":
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RegistryUnavailable(f"{REGISTRY_BINARY} not found (Debian package docker-registry)")
        try:
            self.root = Path(tempfile.mkdtemp(prefix="spotscribe-registry-"))
            htpasswd = None
            if self.credentials is not None:
                htpasswd = self.root / "htpasswd"
                htpasswd.write_text(htpasswd_line(self.credentials))
            config = self.root / "config.yml"
            config.write_text(registry_config(self.root, self.host_port, htpasswd))
            with open(self.log_path, "wb") as out:
                self.process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
            self.wait_until_up()
        except BaseException:
            self.stop()
            raise
        log.info("registry on %s (auth %s)", self.url, "on" if self.credentials else "off")
        return self

    def answers(self) -> bool:
        """The v2 API answers (401 counts: auth is on); a registry process that exited raises."""
        if self.process.poll() is not None:
            raise RegistryUnavailable(f"registry exited with {self.process.returncode}: {self.log_tail()}")
        try:
            return requests.get(f"{self.url}/v2/", timeout=2).status_code in (200, 401)
        except requests.RequestException:
            return False

    def wait_until_up(self) -> None:
        try:
            wait_until(self.answers, self.start_timeout_s, f"the registry on {self.url}", interval=0.2)
        except WaitTimeout as exc:
            raise RegistryUnavailable(str(exc)) from None

    def log_tail(self, chars: int = 2000) -> str:
        path = self.log_path
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        root, self.root = self.root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> "LocalRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the registry's HTTP API (what ECR's data plane answers) ----------------------------------------

    def _auth(self):
        return self.credentials.as_auth() if self.credentials else None

    def manifest(self, repository: str, reference: str) -> tuple[str, str, str]:
        """(manifest text, media type, digest) of `repository:reference` (a tag or a digest)."""
        reply = requests.get(f"{self.url}/v2/{repository}/manifests/{reference}", auth=self._auth(),
                             headers={"Accept": MANIFEST_TYPES}, timeout=30)
        reply.raise_for_status()
        return reply.text, reply.headers["Content-Type"], reply.headers["Docker-Content-Digest"]

    def tags(self, repository: str) -> list[str]:
        reply = requests.get(f"{self.url}/v2/{repository}/tags/list", auth=self._auth(), timeout=30)
        if reply.status_code == 404:
            return []
        reply.raise_for_status()
        return sorted(reply.json().get("tags") or [])

    def delete_manifest(self, repository: str, digest: str) -> None:
        reply = requests.delete(f"{self.url}/v2/{repository}/manifests/{digest}", auth=self._auth(), timeout=30)
        if reply.status_code not in (202, 404):
            reply.raise_for_status()
