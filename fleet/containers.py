"""Containers owned by a run: labelled with its run id, removed on exit even when start fails."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Iterator

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from fleet.docker_engine import RUN_ID_LABEL, SESSION_LABEL

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


def wait_for_exit(container: Container, timeout_s: float) -> int:
    """The container's exit code, waiting at most `timeout_s`."""
    result = container.wait(timeout=timeout_s)
    return int(result["StatusCode"])


def wait_for_log(container: Container, needle: str, timeout_s: float, interval_s: float = 0.25) -> str:
    """Poll the container's logs until `needle` appears; raises TimeoutError with the last output."""
    deadline = time.monotonic() + timeout_s
    logs = ""
    while time.monotonic() < deadline:
        logs = container.logs().decode(errors="replace")
        if needle in logs:
            return logs
        container.reload()
        if container.status in ("exited", "dead"):
            break
        time.sleep(interval_s)
    raise TimeoutError(f"{needle!r} not in {container.name}'s logs after {timeout_s:.0f} s; last output:\n{logs[-2000:]}")


def sweep_by_label(client: docker.DockerClient, label: str, value: str) -> int:
    """Remove every container whose `label` is `value`; returns how many there were."""
    leftovers = client.containers.list(all=True, filters={"label": f"{label}={value}"})
    for container in leftovers:
        remove_quietly(container)
    return len(leftovers)


def sweep_session(client: docker.DockerClient, session: str) -> int:
    """Leftovers of one test session (one xdist worker of a run); its siblings' containers stay."""
    return sweep_by_label(client, SESSION_LABEL, session)


def sweep_run(client: docker.DockerClient, run_id: str) -> int:
    """Leftovers of a whole run (all its sessions), e.g. after a crash: `fleet sweep --run-id`."""
    return sweep_by_label(client, RUN_ID_LABEL, run_id)
