"""Containers owned by a run: labelled with its run id, removed on exit even when start fails."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from fleet.docker_engine import RUN_ID_LABEL, SESSION_LABEL
from fleet.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)


def remove_quietly(container: Container) -> None:
    """Force-remove a container; already gone is fine (idempotent teardown)."""
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409:  # 409: removal already in progress
            raise


@contextmanager
def run_container(client: docker.DockerClient, image: str, run_id: str, **kwargs) -> Iterator[Container]:
    """Create and start `image` (detached) with the run-id label; always removed afterwards."""
    labels = {RUN_ID_LABEL: run_id, **kwargs.pop("labels", {})}
    container = client.containers.create(image, labels=labels, **kwargs)
    try:
        container.start()
        yield container
    finally:
        remove_quietly(container)


def wait_for_log(container: Container, needle: str, timeout_s: float, interval_s: float = 0.25) -> str:
    """Poll the container's logs until `needle` appears; raises TimeoutError with the last output."""
    seen = {"logs": ""}

    def needle_logged() -> str | None:
        seen["logs"] = container.logs().decode(errors="replace")
        if needle in seen["logs"]:
            return seen["logs"]
        container.reload()
        if container.status in ("exited", "dead"):
            raise TimeoutError(f"{container.name} {container.status} before logging {needle!r}; last output:\n"
                               f"{seen['logs'][-2000:]}")
        return None

    try:
        return wait_until(needle_logged, timeout_s, f"{needle!r} in {container.name}'s logs", interval_s)
    except WaitTimeout as exc:
        raise TimeoutError(f"{exc}; last output:\n{seen['logs'][-2000:]}") from None


def sweep_session(client: docker.DockerClient, session: str) -> int:
    """Remove the leftovers of one test session (one xdist worker of a run); its siblings' containers stay."""
    leftovers = client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={session}"})
    for container in leftovers:
        remove_quietly(container)
    return len(leftovers)
