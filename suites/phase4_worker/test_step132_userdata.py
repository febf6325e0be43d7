"""Step 132: the rendered user data turns a fresh instance into a running worker with no hands — run as root on
a fresh host exactly as cloud-init would, it installs what is missing, pulls the worker from the registry, starts
it (restart policy, host network, logs to CloudWatch, rotation), a job is transcribed, and the idle timeout
powers the host off. Boot-to-ready is measured, not asserted (plan's bar: < 5 minutes)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from urllib.parse import urlparse

import pytest

from fleet.waiting import wait_until
from fleet.aws import RUN_ID_TAG
from fleet.localcloud import create_queue_pair
from fleet.localhosts import MetadataStandIn, run_user_data_as_cloud_init, user_data_of
from fleet.ssh import CommandResult, SshSession
from fleet.userdata import render, settings_for

log = logging.getLogger(__name__)
IDLE_TIMEOUT_S = 60
USER_DATA_TIMEOUT_S = 480


@pytest.fixture(scope="module", autouse=True)
def local_target_only(cloud):
    if not cloud.is_local:
        pytest.skip("the user-data drill runs on the local target; on AWS launch a worker with "
                    "`fleet userdata render` output as its user data (see the closing note of issue 5)")


@pytest.fixture(scope="module")
def drill_queues(cloud, deployment):
    """A job queue + DLQ of the drill's own (the worker must not take other suites' jobs)."""
    sqs, name = cloud.client("sqs"), f"userdata-{cloud.run_id}"
    queue, dlq = create_queue_pair(sqs, name, f"{name}-dlq", {RUN_ID_TAG: cloud.run_id}, visibility_timeout=120,
                                   max_receives=None)
    yield replace(deployment, queue_url=queue, dlq_url=dlq)
    for url in (queue, dlq):
        sqs.delete_queue(QueueUrl=url)


@pytest.fixture(scope="module")
def pushed_worker(ecr_repository, worker_image_lean, cloud) -> str:
    """The lean worker image in the deployment's repository (local: the registry behind moto's ECR)."""
    tag = f"userdata-{cloud.run_id}"
    ecr_repository.push(worker_image_lean, tag)
    return ecr_repository.repository.reference(tag)


@dataclass
class Boot:
    host: object
    ssh: SshSession
    user_data: CommandResult
    settings: object
    boot_to_ready_s: float


@pytest.fixture(scope="module")
def imds(cloud):
    with MetadataStandIn(cloud.region) as server:
        yield server


@pytest.fixture(scope="module")
def booted(fresh_host, cloud, registry, drill_queues, pushed_worker, imds) -> Boot:
    """A fresh host whose user data ran to the end: the worker answers /ready."""
    moto_port = urlparse(cloud.endpoint_url).port
    forwards = {"moto": moto_port, "registry": registry.port, "imds": imds.port}
    settings = settings_for(drill_queues, pushed_worker, idle_timeout_s=IDLE_TIMEOUT_S,
                            imds_endpoint=f"http://127.0.0.1:{imds.port}", ready_timeout_s=USER_DATA_TIMEOUT_S - 60)
    started = time.monotonic()
    with fresh_host(forwards=forwards, user_data=render(settings), purpose="userdata") as host:
        imds.describe(host.instance.instance_id, host.instance.instance_type)
        with SshSession(host.ssh_target()) as ssh:
            script = user_data_of(cloud.client("ec2"), host.instance.instance_id)
            result = run_user_data_as_cloud_init(ssh, script, USER_DATA_TIMEOUT_S,
                                                 on_line=lambda line: log.info("[user data] %s", line))
            yield Boot(host, ssh, result, settings, time.monotonic() - started)


def test_user_data_runs_to_ready_on_a_fresh_host(booted, step):
    step.log("user data (as cloud-init runs it)", booted.user_data.transcript())
    assert booted.user_data.ok, booted.user_data.transcript()[-3000:]
    assert "worker ready after" in booted.user_data.stdout
    ready = json.loads(booted.ssh.run(f"curl -fsS http://127.0.0.1:{booted.settings.health_port}/ready",
                                      timeout_s=30, check=True).stdout)
    step.log("/ready inside the host", json.dumps(ready, indent=2))
    step.log("boot-to-ready", f"{booted.boot_to_ready_s:.1f} s from host start to /ready (plan's bar: < 300 s)")
    step.note(f"boot-to-ready {booted.boot_to_ready_s:.0f} s (lean worker image, fresh host container)")


def worker_inspect(boot: Boot) -> dict:
    return json.loads(boot.ssh.run(f"sudo -n docker inspect {boot.settings.worker_name}", timeout_s=30,
                                   check=True).stdout)[0]


def test_worker_has_restart_policy_host_network_and_shipped_rotated_logs(booted, step):
    config = worker_inspect(booted)["HostConfig"]
    step.log("worker HostConfig", json.dumps({k: config[k] for k in ("RestartPolicy", "NetworkMode", "LogConfig")},
                                             indent=2))
    assert config["RestartPolicy"]["Name"] == "on-failure"
    assert config["NetworkMode"] == "host"
    assert config["LogConfig"]["Type"] == "awslogs"
    assert config["LogConfig"]["Config"]["awslogs-group"] == booted.settings.log_group
    assert config["LogConfig"]["Config"]["cache-max-size"] == booted.settings.log_max_size
    daemon = json.loads(booted.ssh.run("sudo -n cat /etc/docker/daemon.json", timeout_s=30, check=True).stdout)
    assert daemon["log-opts"] == {"max-size": booted.settings.log_max_size,
                                  "max-file": str(booted.settings.log_max_file)}


@pytest.fixture(scope="module")
def transcribed_job(booted, cloud, short_speech, drill_queues):
    s3, sqs = cloud.client("s3"), cloud.client("sqs")
    job_id = f"userdata-{uuid.uuid4().hex[:10]}"
    key = f"userdata/{job_id}.wav"
    s3.upload_file(str(short_speech.path), drill_queues.audio_bucket, key)
    sqs.send_message(QueueUrl=drill_queues.queue_url,
                     MessageBody=json.dumps({"job_id": job_id, "audio": f"s3://{drill_queues.audio_bucket}/{key}"}))
    output = urlparse(booted.settings.output_uri)
    transcript_key = f"{output.path.lstrip('/')}{job_id}/transcript.json"

    def transcript():
        try:
            return s3.get_object(Bucket=output.netloc, Key=transcript_key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    return job_id, json.loads(wait_until(transcript, 180, f"s3://{output.netloc}/{transcript_key}", interval=1))


def test_a_job_from_sqs_is_transcribed(transcribed_job, short_speech, step):
    job_id, transcript = transcribed_job
    text = " ".join(segment["text"] for segment in transcript["segments"]).strip()
    step.log(f"transcript of {job_id}", text)
    assert text, "empty transcript"
    assert set(short_speech.text.lower().split()) & set(text.lower().replace(".", " ").replace(",", " ").split())


def test_worker_logs_reach_cloudwatch_under_the_job_id(transcribed_job, booted, cloud, step):
    job_id, _ = transcribed_job
    logs = cloud.client("logs")

    def events():
        reply = logs.filter_log_events(logGroupName=booted.settings.log_group, filterPattern=f'"{job_id}"')
        return reply.get("events")

    found = wait_until(events, 60, f"CloudWatch events with {job_id} in {booted.settings.log_group}", interval=2)
    step.log(f"CloudWatch {booted.settings.log_group}", "\n".join(f"{e['logStreamName']}: {e['message']}"
                                                                   for e in found))
    assert all(e["logStreamName"].startswith(booted.host.instance.instance_id) for e in found)
    assert any(json.loads(e["message"]).get("job_id") == job_id for e in found)


def test_idle_timeout_powers_the_host_off(transcribed_job, booted, step):
    started = time.monotonic()
    exit_code = booted.host.standin.wait_stopped(timeout_s=IDLE_TIMEOUT_S + 120)
    output = booted.host.standin.container.logs().decode(errors="replace")
    step.log("host container console", output[-3000:])
    step.log("idle shutdown", f"host stopped {time.monotonic() - started:.0f} s after the job (idle timeout "
                              f"{IDLE_TIMEOUT_S} s)")
    watch_log = booted.host.standin.read_file("/var/log/spotscribe-idle-shutdown.log")
    step.log("idle watch log", watch_log)
    assert exit_code == 0
    assert "worker exited idle (exit 0): shutting down" in watch_log
    assert "host-entry: powering off" in output
