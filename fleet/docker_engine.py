"""The Docker engine: a client, whether one answers, and its version."""

from __future__ import annotations

import functools

import docker
from docker.errors import DockerException

RUN_ID_LABEL = "spotscribe.run-id"
# run id + xdist worker: what one session may sweep without touching its sibling workers' containers
SESSION_LABEL = "spotscribe.session"


class EngineUnavailable(RuntimeError):
    """No Docker engine answers; the message says why and how to start one."""


@functools.lru_cache(maxsize=1)
def engine_client(timeout_s: int = 300) -> docker.DockerClient:
    """A client for the local engine (DOCKER_HOST or the default socket); raises EngineUnavailable."""
    try:
        client = docker.from_env(timeout=timeout_s)
        client.ping()
    except (DockerException, OSError) as exc:
        raise EngineUnavailable(
            f"no Docker engine answers ({exc.__class__.__name__}: {str(exc)[:160]}); "
            "run scripts/setup.sh, which installs docker.io and starts dockerd"
        ) from exc
    return client


def engine_summary() -> str:
    try:
        version = engine_client().version()
    except EngineUnavailable as exc:
        return f"unavailable: {exc}"
    return f"engine {version.get('Version')} (API {version.get('ApiVersion')}, {version.get('Os')}/{version.get('Arch')})"
