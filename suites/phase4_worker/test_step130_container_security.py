"""Security across the plan's images (CPU, SQS, GPU, worker full and lean): no AWS key pattern, credential file
or `.env` value in any layer (files a later layer deleted included) or in the build history; the final user is
not root; a health check is declared where a process serves. A planted canary proves the audit can fail."""

from __future__ import annotations

import random
import re
import string

import pytest

from fleet.envfile import read_env
from fleet.image_audit import LayerAuditor, secret_pattern
from fleet.images import repo_path

IMAGES = ("whisperx-cpu", "whisperx-sqs", "whisperx-gpu", "worker", "worker-lean")
SERVING = {"worker", "worker-lean"}  # images whose process serves HTTP (/health on HEALTH_PORT)
SECRET_KEY = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.I)


def env_needles(*paths) -> list[str]:
    """Values of `.env` files worth searching for: secret-named keys, and any value long enough to be unique."""
    needles = set()
    for path in paths:
        if path.exists():
            for key, value in read_env(path).items():
                if len(value) >= 16 or (SECRET_KEY.search(key) and len(value) >= 8):
                    needles.add(value)
    return sorted(needles)


@pytest.fixture(scope="module")
def auditor(docker_engine, env_file) -> LayerAuditor:
    return LayerAuditor(docker_engine, secret_pattern(env_needles(env_file, repo_path(".env"))))


@pytest.fixture(scope="module", params=IMAGES)
def image(request, catalog_images) -> tuple[str, str]:
    return request.param, catalog_images.build(request.param).tag


def test_no_credentials_in_layers_or_history(image, auditor, step):
    name, tag = image
    scanned, findings = auditor.audit(tag)
    step.log(f"audit {name}", f"{tag}: {scanned} files scanned, {len(findings)} finding(s)\n"
             + "\n".join(map(str, findings)))
    assert scanned > 1000, "the audit saw almost nothing: wrong layer directories?"
    assert findings == []


def test_final_user_is_not_root(image, docker_engine):
    _, tag = image
    user = docker_engine.images.get(tag).attrs["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root"), user


def test_health_check_is_declared_where_a_process_serves(image, docker_engine):
    name, tag = image
    config = docker_engine.images.get(tag).attrs["Config"]
    test = (config.get("Healthcheck") or {}).get("Test") or ["NONE"]
    if name in SERVING:
        assert test[0] == "CMD" and test[1].endswith("health-check.sh"), test
        assert "8080/tcp" in (config.get("ExposedPorts") or {})
    else:  # one-shot or polling only (the SQS image inherits the worker's EXPOSE, but nothing listens there)
        assert test == ["NONE"], (name, test)


@pytest.fixture
def canary_image(docker_engine, local_base_image, tmp_path):
    """An image that wrote a fake access key and a .env in one layer and deleted both in the next."""
    key = "AKIA" + "".join(random.choices(string.ascii_uppercase + string.digits, k=16))
    (tmp_path / "Dockerfile").write_text(
        f"FROM {local_base_image}\n"
        f"RUN echo 'aws_access_key_id = {key}' > /opt/leak.conf && echo 'X=1' > /opt/.env\n"
        "RUN rm /opt/leak.conf /opt/.env\n"
    )
    image, _ = docker_engine.images.build(path=str(tmp_path), rm=True, forcerm=True)
    yield image.id, key
    docker_engine.images.remove(image.id, force=True)


def test_the_audit_finds_a_planted_key_and_env_file_deleted_later(canary_image, docker_engine):
    image_id, key = canary_image
    scanned, findings = LayerAuditor(docker_engine, secret_pattern()).audit(image_id)
    text = "\n".join(map(str, findings))
    assert f"/opt/leak.conf: matches {key!r}" in text
    assert "/opt/.env: credential file" in text
    assert "history" in text, "the key in the RUN line was not found in the history"
