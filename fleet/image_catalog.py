"""The project's images, how they stack, and one call that builds any of them (parents first, all cached).

whisperx-cpu carries the heavy WhisperX layer; the GPU and full worker images are built FROM it and the SQS image
FROM the worker (each BASE_IMAGE is its parent's tag, so a new parent gives the children a new digest too). The
lean worker is the same Dockerfile.worker on the torch-free worker-runtime-lean.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import docker

from fleet.images import BuildResult, build_cached, ensure_local_base, repo_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSpec:
    name: str
    context: str
    dockerfile: str
    parent: str | None = None  # another image of the catalogue, passed as BASE_IMAGE
    requirements: str | None = None  # served as a wheelhouse during the build (host network)
    args: tuple[tuple[str, str], ...] = ()  # further build args (part of the context digest)

    @property
    def dockerfile_path(self):
        return repo_path(self.context, self.dockerfile)


CATALOG = {spec.name: spec for spec in (
    ImageSpec("whisperx-cpu", "docker/whisperx-base", "Dockerfile.cpu",
              requirements="docker/whisperx-base/requirements.txt"),
    ImageSpec("whisperx-gpu", "docker/whisperx-gpu", "Dockerfile.gpu", parent="whisperx-cpu"),
    ImageSpec("worker", "docker/whisperx-worker", "Dockerfile.worker", parent="whisperx-cpu",
              args=(("TRANSCRIBE_ENGINE", "whisperx"),)),
    ImageSpec("whisperx-sqs", "docker/whisperx-sqs", "Dockerfile.sqs", parent="worker"),
    ImageSpec("worker-runtime-lean", "docker/whisperx-worker/runtime-lean", "Dockerfile.runtime-lean",
              requirements="docker/whisperx-worker/runtime-lean/requirements.txt"),
    ImageSpec("worker-lean", "docker/whisperx-worker", "Dockerfile.worker", parent="worker-runtime-lean",
              args=(("TRANSCRIBE_ENGINE", "faster-whisper"),)),
)}


def wheelhouse_preparer(requirements: str):
    from fleet.wheelhouse import wheelhouse_buildargs  # imports fleet.images: no cycle at module level

    return functools.partial(wheelhouse_buildargs, repo_path(requirements))


def build_image(name: str, client: docker.DockerClient, base_image: str | None,
                results: dict[str, BuildResult] | None = None) -> BuildResult:
    """Build `name` and its parents (each at most once per `results`); base_image None: the Dockerfile's default."""
    results = {} if results is None else results
    if name in results:
        return results[name]
    spec = CATALOG[name]
    args = dict(spec.args)
    if spec.parent:
        args["BASE_IMAGE"] = build_image(spec.parent, client, base_image, results).tag
    elif base_image:
        args["BASE_IMAGE"] = base_image
    prepare = wheelhouse_preparer(spec.requirements) if spec.requirements else None
    result = build_cached(spec.name, repo_path(spec.context), spec.dockerfile, args, client=client,
                          network_mode="host" if prepare else None, prepare=prepare)
    log.info("image %s", result.describe())
    results[name] = result
    return result


def build_for_local_target(name: str, client: docker.DockerClient,
                           results: dict[str, BuildResult] | None = None) -> BuildResult:
    """Build on the local target: the root images start from the local debootstrap base."""
    return build_image(name, client, ensure_local_base(client).tag, results)
