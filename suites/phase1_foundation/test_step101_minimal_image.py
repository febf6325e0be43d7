"""Step 101: the minimal image builds, greets with the date, runs as non-root, and its logs land in docker/test/logs."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fleet.images import LOCAL_BASE, repo_path

HERE = repo_path("docker", "test")
GREETING = re.compile(r"^Hello from Docker - (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$", re.M)


@pytest.fixture(scope="module")
def minimal_image(image_builder):
    return image_builder.build("test-minimal", HERE, "Dockerfile.minimal")


@pytest.fixture
def run_script(minimal_image, spotscribe):
    def run(log_dir: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "IMAGE": minimal_image.tag, "BASE_IMAGE": LOCAL_BASE, "LOG_DIR": str(log_dir),
               "RUN_ID": spotscribe.run_id}
        return subprocess.run(["bash", str(HERE / "test-minimal.sh")], env=env, capture_output=True, text=True,
                              timeout=180)

    return run


@pytest.mark.smoke
def test_container_greets_with_current_time(minimal_image, containers, step):
    step.log("image", minimal_image.describe())
    container = containers.run(minimal_image.tag, read_only=True)
    assert container.wait(timeout=60)["StatusCode"] == 0
    output = container.logs().decode()
    step.log("container output", output)
    match = GREETING.search(output)
    assert match, f"no greeting in {output!r}"
    said = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - said) < timedelta(minutes=2)


def test_image_runs_as_non_root(minimal_image, docker_engine):
    user = docker_engine.images.get(minimal_image.tag).attrs["Config"]["User"]
    assert user not in ("", "0", "root"), f"image user is {user!r}"


def test_script_passes_and_logs_under_docker_test_logs(run_script, step):
    log_dir = HERE / "logs"
    before = set(log_dir.glob("test-minimal-*.log")) if log_dir.exists() else set()
    result = run_script(log_dir)
    step.log("test-minimal.sh", result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr
    assert "PASS: minimal container ran" in result.stdout
    new_logs = set(log_dir.glob("test-minimal-*.log")) - before
    assert len(new_logs) == 1
    assert GREETING.search(new_logs.pop().read_text())


def test_script_fails_when_image_does_not_greet(spotscribe, tmp_path, local_base_image):
    """The script's check can fail: an image whose entrypoint prints something else is caught."""
    env = {**os.environ, "IMAGE": local_base_image, "LOG_DIR": str(tmp_path), "RUN_ID": spotscribe.run_id}
    result = subprocess.run(["bash", str(HERE / "test-minimal.sh")], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "FAIL" in result.stderr
