"""Step 112: the SQS container reaches the queue through AWS_ENDPOINT_URL, logs "Received job: {job_id}",
rejects a malformed message without dying, and exits 0 soon after `docker stop`, even mid long-poll."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from fleet.containers import wait_for_log
from fleet.images import repo_path

HERE = repo_path("docker", "whisperx-sqs")
STOP_GRACE_S = 10  # docker stop's default; a poller still running then is SIGKILLed (exit 137)


def start_poller(containers, image: str, cloud, queue_url: str, wait_seconds: int):
    env = {**cloud.environ(), "QUEUE_URL": queue_url, "RECEIVE_WAIT_SECONDS": str(wait_seconds)}
    container = containers.run(image, environment=env, network_mode="host", read_only=True,
                               tmpfs={"/tmp": "size=64m"}, cap_drop=["ALL"])
    wait_for_log(container, "Polling ", timeout_s=60)
    return container


def job(job_id: str) -> dict:
    return {"job_id": job_id, "audio": f"s3://spotscribe-audio/{job_id}.wav"}


@pytest.mark.smoke
def test_receives_a_job_and_logs_it(whisperx_sqs_image, catalog_images, containers, cloud, job_client, step):
    step.log("image", catalog_images.chain("whisperx-sqs"))
    container = start_poller(containers, whisperx_sqs_image.tag, cloud, job_client.queues.queue_url, 1)
    job_id = f"sqs-{uuid.uuid4().hex[:8]}"
    job_client.send(job(job_id))
    logs = wait_for_log(container, f"Received job: {job_id}", timeout_s=60)
    step.log("container log", logs)
    deadline = time.monotonic() + 30
    while not job_client.queues.drained() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_client.queues.drained(), "the received job was not acknowledged"
    step.note(f"Received job: {job_id}")


def test_malformed_message_is_rejected_and_polling_goes_on(whisperx_sqs_image, containers, cloud, job_client):
    container = start_poller(containers, whisperx_sqs_image.tag, cloud, job_client.queues.queue_url, 1)
    job_client.send("this is not json")
    wait_for_log(container, "Rejected message", timeout_s=60)
    job_client.send(job("after-the-bad-one"))
    wait_for_log(container, "Received job: after-the-bad-one", timeout_s=60)


def test_docker_stop_mid_long_poll_exits_zero(whisperx_sqs_image, containers, cloud, job_client, step):
    container = start_poller(containers, whisperx_sqs_image.tag, cloud, job_client.queues.queue_url, 20)
    time.sleep(1)  # inside a 20 s long poll now
    started = time.monotonic()
    container.stop(timeout=STOP_GRACE_S)
    seconds = time.monotonic() - started
    container.reload()
    exit_code = container.attrs["State"]["ExitCode"]
    logs = container.logs().decode()
    step.log("docker stop", f"exit {exit_code} after {seconds:.1f} s\n{logs}")
    assert exit_code == 0, f"exit code {exit_code} (137: killed after the grace period)"
    assert "Stopping on SIGTERM" in logs and "SQS poller stopped" in logs
    step.note(f"docker stop mid long-poll: exit 0 in {seconds:.1f} s")


def test_integration_script_passes(whisperx_sqs_image, cloud, job_client, spotscribe, step):
    env = {**os.environ, **cloud.environ(), "IMAGE": whisperx_sqs_image.tag,
           "QUEUE_URL": job_client.queues.queue_url, "RUN_ID": spotscribe.run_id, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(HERE / "test-sqs-integration.sh")], env=env, capture_output=True,
                            text=True, timeout=180)
    step.log("test-sqs-integration.sh", result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS: SQS container received the job and exited cleanly" in result.stdout


def test_integration_script_fails_when_no_job_arrives(local_base_image, cloud, job_client, spotscribe):
    """The script's check can fail: an image that never logs the job is caught within WAIT_S."""
    env = {**os.environ, **cloud.environ(), "IMAGE": local_base_image, "QUEUE_URL": job_client.queues.queue_url,
           "RUN_ID": spotscribe.run_id, "PYTHON": sys.executable, "WAIT_S": "5"}
    result = subprocess.run(["bash", str(HERE / "test-sqs-integration.sh")], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "FAIL: no 'Received job:" in result.stderr
