"""ECR: the deployment's repository (lifecycle, scan on push, immutable tags), login, push/pull, lifecycle evaluation.

On the local target moto holds the repository (the control plane) and a local registry holds the layers (the
data plane); `record_push` mirrors each push into moto so that describe_images and the registry agree.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

import docker
from botocore.exceptions import ClientError

from fleet.aws import RUN_ID_TAG
from fleet.registry import Credentials

log = logging.getLogger(__name__)

KEEP_LAST = 10
LIFECYCLE_POLICY = {
    "rules": [{
        "rulePriority": 1,
        "description": f"keep last {KEEP_LAST} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_LAST},
        "action": {"type": "expire"},
    }]
}


@dataclass(frozen=True)
class Repository:
    """An ECR repository and where Docker pushes to it (`push_uri`: the local registry on the local target)."""

    name: str
    arn: str
    registry_id: str
    api_uri: str
    push_uri: str

    @property
    def registry_host(self) -> str:
        return self.push_uri.split("/", 1)[0]

    def reference(self, tag_or_digest: str) -> str:
        separator = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.push_uri}{separator}{tag_or_digest}"


def ensure_repository(ecr, name: str, run_id: str, push_host: str | None = None) -> tuple[Repository, bool]:
    """Create or reconcile the repository (scan on push, IMMUTABLE tags, keep-last-10); (repository, created)."""
    try:
        raw = ecr.create_repository(
            repositoryName=name, imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            tags=[{"Key": RUN_ID_TAG, "Value": run_id}],
        )["repository"]
        created = True
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "RepositoryAlreadyExistsException":
            raise
        raw = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        created = False
        reconcile_settings(ecr, raw)
    put_lifecycle_policy_if_changed(ecr, name)
    api_uri = raw["repositoryUri"]
    push_uri = f"{push_host}/{name}" if push_host else api_uri
    log.info("ECR repository %s %s (push to %s)", name, "created" if created else "exists", push_uri)
    return Repository(name, raw["repositoryArn"], raw["registryId"], api_uri, push_uri), created


def reconcile_settings(ecr, raw: dict) -> None:
    """An existing repository gets the settings the plan requires (changed only when they differ)."""
    name = raw["repositoryName"]
    if raw.get("imageTagMutability") != "IMMUTABLE":
        ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
    if not raw.get("imageScanningConfiguration", {}).get("scanOnPush"):
        ecr.put_image_scanning_configuration(repositoryName=name, imageScanningConfiguration={"scanOnPush": True})


def current_lifecycle_policy(ecr, name: str) -> dict | None:
    try:
        return json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "LifecyclePolicyNotFoundException":
            return None
        raise


def put_lifecycle_policy_if_changed(ecr, name: str, policy: dict = LIFECYCLE_POLICY) -> bool:
    if current_lifecycle_policy(ecr, name) == policy:
        return False
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(policy))
    return True


def repository_settings(ecr, name: str) -> dict:
    """What the plan checks, read back through the ECR API."""
    raw = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    return {
        "imageTagMutability": raw["imageTagMutability"],
        "scanOnPush": raw["imageScanningConfiguration"]["scanOnPush"],
        "lifecyclePolicy": current_lifecycle_policy(ecr, name),
    }


def login_credentials(ecr, registry_id: str | None = None) -> Credentials:
    """`aws ecr get-login-password`: the token decodes to AWS:<password>."""
    kwargs = {"registryIds": [registry_id]} if registry_id else {}
    token = ecr.get_authorization_token(**kwargs)["authorizationData"][0]["authorizationToken"]
    username, password = base64.b64decode(token).decode().split(":", 1)
    return Credentials(username, password)


def docker_login(client: docker.DockerClient, registry_host: str, credentials: Credentials) -> dict:
    """`docker login` through the engine (the SDK keeps the credentials in memory, nothing on disk)."""
    return client.login(username=credentials.username, password=credentials.password, registry=registry_host,
                        reauth=True)


class PushFailed(RuntimeError):
    """The engine reported an error while pushing."""


class TagImmutable(PushFailed):
    """The repository has IMMUTABLE tags and already holds this tag."""


def tag_in_repository(ecr, name: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            return False
        raise


def push_image(client: docker.DockerClient, image: str, repository: Repository, tag: str,
               credentials: Credentials) -> str:
    """Tag `image` as repository:tag, push it and return the manifest digest the registry reported."""
    client.images.get(image).tag(repository.push_uri, tag)
    auth = {"username": credentials.username, "password": credentials.password}
    digest = None
    try:
        for event in client.api.push(repository.push_uri, tag, auth_config=auth, stream=True, decode=True):
            if "error" in event:
                raise PushFailed(f"push {repository.push_uri}:{tag}: {event['error']}")
            digest = event.get("aux", {}).get("Digest", digest)
    finally:
        client.api.remove_image(f"{repository.push_uri}:{tag}", noprune=True)
    if digest is None:
        raise PushFailed(f"push {repository.push_uri}:{tag}: the engine reported no digest")
    return digest


def pull_by_digest(client: docker.DockerClient, repository: Repository, digest: str, credentials: Credentials):
    """Pull repository@digest; the caller removes the returned image when done."""
    auth = {"username": credentials.username, "password": credentials.password}
    return client.images.pull(repository.push_uri, tag=digest, auth_config=auth)


def record_push(ecr, registry, repository: Repository, tag: str) -> str:
    """Mirror a push to the local registry into moto (put_image with the registry's manifest); returns the digest."""
    manifest, media_type, digest = registry.manifest(repository.name, tag)
    ecr.put_image(repositoryName=repository.name, imageManifest=manifest, imageManifestMediaType=media_type,
                  imageTag=tag, imageDigest=digest)
    return digest


# --- lifecycle policy evaluation --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRecord:
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    order: int = 0  # listing position: breaks ties between equal push times (older first)

    @property
    def tagged(self) -> bool:
        return bool(self.tags)


@dataclass
class LifecycleRule:
    priority: int
    tag_status: str
    count_type: str
    count_number: int
    count_unit: str | None = None
    prefixes: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    description: str = field(default="", compare=False)

    @classmethod
    def parse(cls, raw: dict) -> "LifecycleRule":
        selection = raw["selection"]
        if raw.get("action", {}).get("type") != "expire":
            raise ValueError(f"rule {raw.get('rulePriority')}: only the 'expire' action exists")
        return cls(int(raw["rulePriority"]), selection["tagStatus"], selection["countType"],
                   int(selection["countNumber"]), selection.get("countUnit"),
                   tuple(selection.get("tagPrefixList", ())), tuple(selection.get("tagPatternList", ())),
                   raw.get("description", ""))

    def selects(self, image: ImageRecord) -> bool:
        """Whether the image falls under this rule's selection (tag status and tag filters)."""
        if self.tag_status == "untagged":
            return not image.tagged
        if self.tag_status == "any":
            return True
        if not image.tagged:
            return False
        if self.prefixes:
            return any(tag.startswith(p) for tag in image.tags for p in self.prefixes)
        if self.patterns:
            return any(fnmatch.fnmatchcase(tag, p) for tag in image.tags for p in self.patterns)
        return True

    def expires(self, images: list[ImageRecord], now: datetime) -> list[ImageRecord]:
        """Of the images this rule selected, those it expires."""
        newest_first = sorted(images, key=lambda i: (i.pushed_at, i.order), reverse=True)
        if self.count_type == "imageCountMoreThan":
            return newest_first[self.count_number:]
        if self.count_type == "sinceImagePushed":
            if self.count_unit != "days":
                raise ValueError(f"rule {self.priority}: sinceImagePushed counts in days")
            limit = now - timedelta(days=self.count_number)
            return [i for i in newest_first if i.pushed_at < limit]
        raise ValueError(f"rule {self.priority}: unknown countType {self.count_type!r}")


def parse_policy(policy: dict) -> list[LifecycleRule]:
    rules = sorted((LifecycleRule.parse(r) for r in policy["rules"]), key=lambda r: r.priority)
    if len({r.priority for r in rules}) != len(rules):
        raise ValueError("rule priorities must be unique")
    if any(r.tag_status == "any" for r in rules[:-1]):
        raise ValueError("a tagStatus 'any' rule must have the highest rulePriority number")
    return rules


def images_to_expire(policy: dict, images: Iterable[ImageRecord], now: datetime | None = None) -> list[ImageRecord]:
    """What ECR's lifecycle would expire: each image is judged by the first rule (lowest priority) selecting it."""
    now = now or datetime.now(timezone.utc)
    remaining = list(images)
    expired: list[ImageRecord] = []
    for rule in parse_policy(policy):
        selected = [i for i in remaining if rule.selects(i)]
        expired += rule.expires(selected, now)
        remaining = [i for i in remaining if i not in selected]
    return sorted(expired, key=lambda i: (i.pushed_at, i.order))


def image_records(ecr, name: str) -> list[ImageRecord]:
    """The repository's images as describe_images lists them (listing order kept for equal push times)."""
    records = []
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=name):
        for raw in page["imageDetails"]:
            pushed = raw["imagePushedAt"]
            pushed = pushed if isinstance(pushed, datetime) else datetime.fromtimestamp(pushed, timezone.utc)
            records.append(ImageRecord(raw["imageDigest"], tuple(raw.get("imageTags", ())), pushed, len(records)))
    return records


def expire_images(ecr, registry, repository: Repository, expired: Iterable[ImageRecord]) -> None:
    """Carry out an evaluation: delete the images from the repository (and, locally, from the registry)."""
    expired = list(expired)
    if not expired:
        return
    ecr.batch_delete_image(repositoryName=repository.name, imageIds=[{"imageDigest": i.digest} for i in expired])
    if registry is not None:
        for image in expired:
            registry.delete_manifest(repository.name, image.digest)


def delete_repository(ecr, name: str) -> None:
    """Delete the repository and its images; already gone is fine."""
    try:
        ecr.delete_repository(repositoryName=name, force=True)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "RepositoryNotFoundException":
            raise


class RepositoryClient:
    """One repository as a deployment uses it: login, push (mirrored into moto locally), pull by digest."""

    def __init__(self, ecr, client: docker.DockerClient, repository: Repository, credentials: Credentials,
                 registry=None):
        self.ecr, self.client, self.repository = ecr, client, repository
        self.credentials, self.registry = credentials, registry

    def login(self) -> dict:
        return docker_login(self.client, self.repository.registry_host, self.credentials)

    def push(self, image: str, tag: str) -> str:
        """Push image as repository:tag; locally the registry is not asked unless ECR would accept the tag."""
        if self.registry is not None and tag_in_repository(self.ecr, self.repository.name, tag):
            raise TagImmutable(f"{self.repository.name}:{tag} exists and the repository's tags are IMMUTABLE")
        digest = push_image(self.client, image, self.repository, tag, self.credentials)
        if self.registry is not None:
            recorded = record_push(self.ecr, self.registry, self.repository, tag)
            if recorded != digest:
                raise PushFailed(f"registry reports {recorded} for {tag}, the engine pushed {digest}")
        return digest

    def pull(self, digest: str):
        return pull_by_digest(self.client, self.repository, digest, self.credentials)

    def images(self) -> list[ImageRecord]:
        return image_records(self.ecr, self.repository.name)

    def expire(self, expired: Iterable[ImageRecord]) -> None:
        expire_images(self.ecr, self.registry, self.repository, expired)


def env_values(repository: Repository) -> dict[str, str]:
    """What step 110 writes to `.env`: where Docker logs in and pushes."""
    return {"ECR_REGISTRY": repository.registry_host, "ECR_REPOSITORY_URI": repository.push_uri}
