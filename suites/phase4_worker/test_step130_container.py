"""Step 130, the worker in its production image (lean and full variants): run as production runs it
(`--read-only --cap-drop=ALL`, non-root, tmpfs scratch, host network), a job goes end to end into S3, /health
and /ready answer on 127.0.0.1, Docker's health status becomes healthy, a bad job yields error.json while the
container stays up, and `docker stop` mid-job loses nothing."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from fixtures.images import word_error_rate
from fleet.waiting import wait_until
from fleet.containers import wait_for_log
from fleet.registry import free_port

VARIANTS = {"lean": ("worker_image_lean", "faster-whisper"), "full": ("worker_image", "whisperx")}
MAX_WER = 0.4
START_TIMEOUT_S = 240  # the full image imports torch + WhisperX on 2 shared cores
JOB_TIMEOUT_S = 240


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request) -> tuple[str, str, str]:
    """(variant, image tag, engine)."""
    fixture, engine = VARIANTS[request.param]
    return request.param, request.getfixturevalue(fixture), engine


class WorkerContainer:
    """A worker container on the host network with its health port, plus helpers to reach it on 127.0.0.1."""

    def __init__(self, container, port: int):
        self.container, self.port = container, port

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def wait_ready(self) -> dict:
        def ready():
            try:
                reply = self.get("/ready")
            except requests.ConnectionError:
                self.raise_if_exited()
                return None
            return reply.json() if reply.status_code == 200 else None

        return wait_until(ready, START_TIMEOUT_S, "the worker's /ready", interval=0.5)

    def raise_if_exited(self) -> None:
        self.container.reload()
        if self.container.status in ("exited", "dead"):
            raise AssertionError(f"the worker exited: {self.logs()[-3000:]}")

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def health_status(self) -> str:
        self.container.reload()
        return self.container.attrs["State"].get("Health", {}).get("Status", "none")


def worker_environment(cloud, job_client, port: int) -> dict[str, str]:
    return {**cloud.environ(), "QUEUE_URL": job_client.queues.queue_url, "OUTPUT_URI": job_client.output_uri,
            "HEALTH_HOST": "127.0.0.1", "HEALTH_PORT": str(port), "IMDS_ENDPOINT": "", "RECEIVE_WAIT_SECONDS": "1",
            "DEVICE": "cpu", "RETRY_BACKOFF_BASE": "0", "LOG_LEVEL": "INFO"}


@pytest.fixture
def start_worker(containers, cloud, job_client):
    """`start(image)`: the worker as production runs it; waits until /ready answers 200."""
    def start(image: str, wait: bool = True) -> WorkerContainer:
        port = free_port()
        container = containers.run(image, environment=worker_environment(cloud, job_client, port),
                                   network_mode="host", read_only=True, cap_drop=["ALL"],
                                   tmpfs={"/tmp": "size=1g"}, stop_signal="SIGTERM")
        worker = WorkerContainer(container, port)
        if wait:
            worker.wait_ready()
        return worker

    return start


def test_job_goes_end_to_end(variant, start_worker, job_client, short_speech, catalog_images, step):
    name, image, engine = variant
    step.log(f"{name} image", catalog_images.chain("worker-lean" if name == "lean" else "worker"))
    worker = start_worker(image)
    job_id = job_client.submit(short_speech.path)
    transcript = json.loads(job_client.wait_for(job_id, "transcript.json", timeout=JOB_TIMEOUT_S))
    text = " ".join(segment["text"] for segment in transcript["segments"])
    wer = word_error_rate(short_speech.text, text)
    step.log(f"{name}: transcript.json", json.dumps(transcript, indent=2)[:3000])
    assert transcript["engine"] == engine
    assert transcript["device"] == "cpu"
    assert wer <= MAX_WER, f"WER {wer:.2f}: {text!r}"
    wait_until(job_client.queues.drained, 30, "the queue to drain")
    assert worker.get("/health").status_code == 200
    step.note(f"{name} ({engine}): job end to end, WER {wer:.2f}")


def test_health_ready_and_docker_healthy(variant, start_worker, step):
    name, image, engine = variant
    worker = start_worker(image)
    ready = worker.get("/ready").json()
    assert ready["ready"] is True and ready.get("engine") == engine, ready
    assert worker.get("/health").json() == {"status": "alive"}
    metrics = worker.get("/metrics")
    assert metrics.status_code == 200 and "# TYPE" in metrics.text
    status = wait_until(lambda: worker.health_status() if worker.health_status() != "starting" else None,
                        START_TIMEOUT_S, "Docker's health status to leave 'starting'", interval=1)
    step.log(f"{name}: health", f"/ready: {ready}\nDocker health: {status}")
    assert status == "healthy"


def test_runs_read_only_without_capabilities_as_non_root(variant, start_worker):
    _, image, _ = variant
    worker = start_worker(image)
    host_config = worker.container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert worker.container.attrs["Config"]["User"] == "10001"
    top = worker.container.top(ps_args="-o pid,uid,comm")
    uids = {row[top["Titles"].index("UID")] for row in top["Processes"]}
    assert uids == {"10001"}, top


def test_bad_job_yields_error_json_and_the_container_stays_up(variant, start_worker, job_client, short_speech):
    _, image, _ = variant
    worker = start_worker(image)
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    job_client.send({"job_id": missing, "audio": f"s3://{job_client.audio_bucket}/nowhere/{missing}.wav"})
    error = json.loads(job_client.wait_for(missing, "error.json", timeout=JOB_TIMEOUT_S))
    assert error["code"] == "audio_not_found" and error["retryable"] is False
    worker.raise_if_exited()
    good = job_client.submit(short_speech.path)
    job_client.wait_for(good, "transcript.json", timeout=JOB_TIMEOUT_S)
    assert worker.get("/health").status_code == 200


def test_docker_stop_mid_job_loses_nothing(variant, start_worker, job_client, passage_20s, step):
    name, image, _ = variant
    first = start_worker(image)
    job_id = job_client.submit(passage_20s.path)
    wait_for_log(first.container, '"job_started"', timeout_s=JOB_TIMEOUT_S)
    started = time.monotonic()
    first.container.stop(timeout=10)
    first.container.reload()
    exit_code, seconds = first.container.attrs["State"]["ExitCode"], time.monotonic() - started
    finished = job_client.result(job_id, "transcript.json") is not None
    step.log(f"{name}: docker stop mid-job",
             f"exit {exit_code} after {seconds:.1f} s; job {'completed' if finished else 'released'}\n"
             + first.logs()[-3000:])
    assert exit_code == 0, first.logs()[-3000:]
    if not finished:
        assert '"job_released"' in first.logs() or '"job_cancelled"' in first.logs()
        start_worker(image)  # a replacement picks the released job up
        job_client.wait_for(job_id, "transcript.json", timeout=JOB_TIMEOUT_S)
    wait_until(job_client.queues.drained, 60, "the queue to drain")
    assert job_client.queues.dead_letters() == []
    step.note(f"{name}: docker stop mid-job: exit 0, job {'completed in grace' if finished else 'released, redone'}")


def test_entrypoint_names_what_is_missing(variant, containers):
    _, image, _ = variant
    container = containers.run(image, environment={"OUTPUT_URI": "s3://bucket/prefix/"}, read_only=True,
                               cap_drop=["ALL"], tmpfs={"/tmp": "size=16m"}, network_mode="none")
    assert container.wait(timeout=60)["StatusCode"] == 2
    assert "QUEUE_URL is not set" in container.logs().decode()
