"""Step 100: the plan's prerequisites — credentials, .env, SQS, S3, EC2 permissions, SSH key — green or red."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from fleet.envfile import read_env, write_env
from fleet.prereqs import check_prerequisites, prerequisites_table, write_docker_status

CHECKS = (".env", "AWS credentials", "SQS queues", "S3 buckets", "EC2 permissions", "SSH key")


def render(results) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None).print(prerequisites_table(results))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def prerequisites(env_file, cloud):
    return {r.name: r for r in check_prerequisites(env_file, cloud)}


@pytest.mark.smoke
@pytest.mark.parametrize("name", CHECKS)
def test_prerequisite_is_met(prerequisites, name, step):
    result = prerequisites[name]
    assert result.ok, f"{name}: {result.detail} — fix: {result.fix}"


@pytest.mark.smoke
def test_table_and_docker_status_are_written(prerequisites, pytestconfig, step):
    results = list(prerequisites.values())
    assert [r.name for r in results] == list(CHECKS)
    table = render(results)
    step.log("prerequisites table", table)
    for name in CHECKS:
        assert name in table
    path = write_docker_status(Path(pytestconfig.rootpath) / ".docker-status", results)
    status = read_env(path)
    verdict = "PASSED" if all(r.ok for r in results) else "FAILED"
    assert status["prerequisites"] == verdict
    assert len([k for k in status if k.startswith("check-")]) == len(CHECKS)
    step.note(f"all {len(CHECKS)} prerequisites verified" if verdict == "PASSED" else "prerequisites FAILED")


# --- the red paths: each broken prerequisite turns its own row red and says what to fix ---------------------


def broken_env(env_file: Path, tmp_path: Path, drop=(), **changes: str) -> Path:
    values = {k: v for k, v in read_env(env_file).items() if k not in drop}
    values.update(changes)
    return write_env(tmp_path / ".env", values)


def red_rows(env: Path, cloud) -> dict:
    return {r.name: r for r in check_prerequisites(env, cloud) if not r.ok}


def test_missing_env_key_turns_env_row_red(env_file, cloud, tmp_path, step):
    red = red_rows(broken_env(env_file, tmp_path, drop=("SQS_QUEUE_URL",)), cloud)
    step.log("red table (missing key)", render(list(red.values())))
    assert "SQS_QUEUE_URL" in red[".env"].detail
    assert "add SQS_QUEUE_URL" in red[".env"].fix


def test_unreachable_queue_turns_sqs_row_red(env_file, cloud, tmp_path):
    url = read_env(env_file)["SQS_QUEUE_URL"].rsplit("/", 1)[0] + "/no-such-queue"
    red = red_rows(broken_env(env_file, tmp_path, SQS_QUEUE_URL=url), cloud)
    assert set(red) == {"SQS queues"}
    assert "no-such-queue" in red["SQS queues"].detail
    assert "SQS_QUEUE_URL" in red["SQS queues"].fix


def test_missing_ssh_key_turns_ssh_row_red(env_file, cloud, tmp_path):
    missing_key = tmp_path / "absent.pem"
    red = red_rows(broken_env(env_file, tmp_path, SSH_KEY_PATH=str(missing_key)), cloud)
    assert set(red) == {"SSH key"}
    assert str(missing_key) in red["SSH key"].detail
    assert "chmod 600" in red["SSH key"].fix


def test_world_readable_ssh_key_turns_ssh_row_red(env_file, cloud, tmp_path):
    loose = tmp_path / "loose.pem"
    loose.write_bytes(Path(read_env(env_file)["SSH_KEY_PATH"]).read_bytes())
    os.chmod(loose, 0o644)
    red = red_rows(broken_env(env_file, tmp_path, SSH_KEY_PATH=str(loose)), cloud)
    assert "mode 644" in red["SSH key"].detail


def test_unknown_bucket_turns_s3_row_red(env_file, cloud, tmp_path):
    red = red_rows(broken_env(env_file, tmp_path, S3_OUTPUT_BUCKET="spotscribe-no-such-bucket"), cloud)
    assert set(red) == {"S3 buckets"}
    assert "spotscribe-no-such-bucket" in red["S3 buckets"].detail


def test_red_run_writes_failed_docker_status(env_file, cloud, tmp_path):
    results = check_prerequisites(broken_env(env_file, tmp_path, drop=("KEY_NAME",)), cloud)
    status = read_env(write_docker_status(tmp_path / ".docker-status", results))
    assert status["prerequisites"] == "FAILED"
    assert "KEY_NAME" in status["check-env"]
