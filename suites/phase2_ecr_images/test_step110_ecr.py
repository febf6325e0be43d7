"""Step 110: the ECR repository `whisper-docker-{env}`: keep-last-10 lifecycle, scan on push, immutable tags;
login with the ECR token; push/pull round trip by digest; the URI in `.env`; a second run changes nothing.

Local target: moto holds the repository (control plane), the local registry holds the layers (data plane);
every push is mirrored into moto, and the suite checks both sides.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from botocore.exceptions import ClientError
from docker.errors import APIError, ImageNotFound

from fleet.ecr import (LIFECYCLE_POLICY, TagImmutable, ensure_repository, env_values, images_to_expire,
                       put_lifecycle_policy_if_changed, repository_settings)
from fleet.envfile import read_env, write_env
from fleet.images import repo_path
from fleet.registry import Credentials

PUSHED_FOR_LIFECYCLE = 12


@pytest.fixture(scope="module")
def minimal_image(image_builder):
    """The step 101 image: small, and already built by phase 1."""
    return image_builder.build("test-minimal", repo_path("docker", "test"), "Dockerfile.minimal")


@pytest.fixture
def tiny_images(docker_engine, spotscribe):
    """`make(n)`: a distinct one-file image per n (a few bytes each), removed afterwards."""
    made: list[str] = []

    def make(n: int) -> str:
        payload = f"lifecycle probe {n} of run {spotscribe.run_id}\n".encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(f"probe-{n}.txt")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        tag = f"spotscribe/lifecycle-probe:{spotscribe.run_id}-{n}"
        docker_engine.api.import_image_from_data(buffer.getvalue(), repository=tag.split(":")[0],
                                                 tag=tag.split(":")[1])
        made.append(tag)
        return tag

    yield make
    for tag in made:
        try:
            docker_engine.images.remove(tag, noprune=False)
        except ImageNotFound:
            pass


@pytest.mark.smoke
def test_repository_has_the_plans_settings(ecr_repository, cloud, step):
    settings = repository_settings(cloud.client("ecr"), ecr_repository.repository.name)
    step.log("repository", f"{ecr_repository.repository}\n{settings}")
    assert settings == {"imageTagMutability": "IMMUTABLE", "scanOnPush": True, "lifecyclePolicy": LIFECYCLE_POLICY}
    step.note(f"{ecr_repository.repository.name}: IMMUTABLE, scan on push, keep last 10")


def test_second_run_changes_nothing(ecr_repository, cloud, deployment):
    ecr = cloud.client("ecr")
    before = repository_settings(ecr, deployment.ecr_repo)
    again, created = ensure_repository(ecr, deployment.ecr_repo, cloud.run_id,
                                       push_host=ecr_repository.repository.registry_host)
    assert not created
    assert again == ecr_repository.repository
    assert not put_lifecycle_policy_if_changed(ecr, deployment.ecr_repo), "the policy was rewritten"
    assert repository_settings(ecr, deployment.ecr_repo) == before
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert names.count(deployment.ecr_repo) == 1


def test_existing_repository_is_brought_to_the_plans_settings(scratch_repository, cloud):
    """A repository someone made by hand (mutable, no scan, no policy) is reconciled, not left as it is."""
    ecr, name = cloud.client("ecr"), scratch_repository.repository.name
    ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE")
    ecr.put_image_scanning_configuration(repositoryName=name, imageScanningConfiguration={"scanOnPush": False})
    ecr.delete_lifecycle_policy(repositoryName=name)
    _, created = ensure_repository(ecr, name, cloud.run_id)
    assert not created
    assert repository_settings(ecr, name) == {"imageTagMutability": "IMMUTABLE", "scanOnPush": True,
                                              "lifecyclePolicy": LIFECYCLE_POLICY}


def test_login_with_the_ecr_token_and_not_without_it(ecr_repository, docker_engine, step):
    answer = ecr_repository.login()
    step.log("docker login", f"{ecr_repository.repository.registry_host}: {answer}")
    assert answer.get("Status") == "Login Succeeded"
    wrong = Credentials(ecr_repository.credentials.username, "not-the-token")
    with pytest.raises(APIError):
        docker_engine.login(username=wrong.username, password=wrong.password,
                            registry=ecr_repository.repository.registry_host, reauth=True)


def test_push_and_pull_round_trip_by_digest(ecr_repository, minimal_image, docker_engine, cloud, spotscribe, step):
    tag = f"roundtrip-{spotscribe.run_id}"
    digest = ecr_repository.push(minimal_image.tag, tag)
    listed = cloud.client("ecr").describe_images(repositoryName=ecr_repository.repository.name,
                                                 imageIds=[{"imageTag": tag}])["imageDetails"]
    assert [d["imageDigest"] for d in listed] == [digest], "ECR does not list the pushed digest under the tag"
    reference = ecr_repository.repository.reference(digest)
    pulled = ecr_repository.pull(digest)
    try:
        step.log("round trip", f"pushed {minimal_image.tag} as {tag} -> {digest}\npulled {reference} -> {pulled.id}")
        assert pulled.id == docker_engine.images.get(minimal_image.tag).id
    finally:
        docker_engine.images.remove(reference, noprune=True)
    step.note(f"push/pull round trip by digest {digest[:19]}…")


def test_a_pushed_tag_cannot_be_pushed_again(ecr_repository, tiny_images, cloud, spotscribe):
    tag = f"immutable-{spotscribe.run_id}"
    first = ecr_repository.push(tiny_images(1), tag)
    with pytest.raises(TagImmutable):
        ecr_repository.push(tiny_images(2), tag)
    ecr = cloud.client("ecr")
    other = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "layers": [{"digest": "sha256:" + "0" * 64, "size": 1}]})
    with pytest.raises(ClientError, match="AlreadyExists"):  # ECR: ImageTagAlreadyExistsException
        ecr.put_image(repositoryName=ecr_repository.repository.name, imageTag=tag, imageManifest=other)
    listed = ecr.describe_images(repositoryName=ecr_repository.repository.name, imageIds=[{"imageTag": tag}])
    assert [d["imageDigest"] for d in listed["imageDetails"]] == [first]
    if ecr_repository.registry is not None:
        assert ecr_repository.registry.manifest(ecr_repository.repository.name, tag)[2] == first


def test_registry_uri_is_written_to_env(ecr_repository, env_file, step):
    values = env_values(ecr_repository.repository)
    write_env(env_file, values)
    first = env_file.read_text()
    write_env(env_file, values)
    assert env_file.read_text() == first, "writing the same values twice changed .env"
    env = read_env(env_file)
    assert env["ECR_REPOSITORY_URI"] == ecr_repository.repository.push_uri
    assert env["ECR_REPOSITORY_URI"].endswith("/whisper-docker-" + env["ENVIRONMENT"])
    assert env["ECR_REGISTRY"] == ecr_repository.repository.registry_host
    step.log(".env", first)


def test_lifecycle_policy_expires_the_two_oldest_of_twelve(scratch_repository, tiny_images, step):
    tags = [f"build-{n:02d}" for n in range(1, PUSHED_FOR_LIFECYCLE + 1)]
    digests = {tag: scratch_repository.push(tiny_images(n), tag) for n, tag in enumerate(tags, 1)}
    records = scratch_repository.images()
    assert len(records) == PUSHED_FOR_LIFECYCLE
    expired = images_to_expire(LIFECYCLE_POLICY, records)
    step.log("lifecycle evaluation", "\n".join(f"{r.tags} {r.digest} pushed {r.pushed_at}" for r in expired))
    assert [r.tags for r in expired] == [(tags[0],), (tags[1],)]
    scratch_repository.expire(expired)
    remaining = {tag for r in scratch_repository.images() for tag in r.tags}
    assert remaining == set(tags[2:])
    if scratch_repository.registry is not None:
        name = scratch_repository.repository.name
        for tag in tags[:2]:
            with pytest.raises(Exception, match="404"):
                scratch_repository.registry.manifest(name, digests[tag])
        assert scratch_repository.registry.manifest(name, tags[2])[2] == digests[tags[2]]
    step.note("lifecycle: of 12 pushed images the 2 oldest expire")
