"""Step 130, the worker's lifecycle: visibility heartbeat, SIGTERM, spot interruption notices, idle exit, CLI.

Every wait is bounded; timings are limits the contract sets (DESIGN §5), checked with polling, never slept.
"""

from __future__ import annotations

import signal
import time

import pytest

from fixtures.worker import GatedEngine, JobClient, ProxyClient, create_job_queues, launch_worker, recommend_rebalance
from fleet.waiting import wait_until

SPOT_STOP_LIMIT = 5.0  # seconds from a notice to "no more receiving" (DESIGN §5)


def gated(holder: dict):
    """A `wrap` for launch_worker that keeps the GatedEngine it makes in `holder`."""
    return lambda engine: holder.setdefault("engine", GatedEngine(engine))


# --- heartbeat ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_heartbeat_hides_a_long_job_from_other_consumers(cloud, deployment, engines, short_speech):
    """Visibility timeout 2 s, a job held for 8 s: a second consumer polling all along never gets the message."""
    queues = create_job_queues(cloud.client("sqs"), visibility_timeout=2)
    client = JobClient(cloud.client("s3"), queues, deployment.audio_bucket, deployment.output_bucket)
    holder: dict = {}
    worker = launch_worker(cloud, client, engines, wrap=gated(holder), visibility_timeout=2)
    try:
        job_id = client.submit(short_speech.path)
        assert holder["engine"].started.wait(30), "the job never reached the engine"
        stolen, watch_until = [], time.monotonic() + 8
        while time.monotonic() < watch_until:
            reply = queues.sqs.receive_message(QueueUrl=queues.queue_url, WaitTimeSeconds=1, VisibilityTimeout=1)
            stolen += reply.get("Messages", [])
        holder["engine"].gate.set()
        client.wait_for(job_id)
        wait_until(queues.drained, 30, "the job's message to be deleted")
    finally:
        worker.stop()
    assert stolen == []
    assert worker.jobs("succeeded") == 1


# --- SIGTERM, worker in a subprocess ------------------------------------------------------------------


def json_lines_only(process) -> list[dict]:
    """Every line the worker printed is one JSON object; every job event carries its job_id."""
    events = process.events()
    assert len(events) == len(process.lines), "non-JSON output:\n" + "\n".join(
        line for line in process.lines if not line.startswith("{"))
    job_events = [e for e in events if e.get("event", "").startswith("job_")]
    assert job_events and all("job_id" in e for e in job_events)
    return events


@pytest.mark.slow
@pytest.mark.parametrize("grace, passage, expected", [
    (60, "passage_20s", "completed"),
    (0.5, "passage_60s", "released"),
])
def test_sigterm_mid_job_finishes_or_releases_and_exits_0(grace, passage, expected, request, worker_process,
                                                          job_client):
    audio = request.getfixturevalue(passage)
    process = worker_process(stop_grace_seconds=grace)
    process.wait_for_event("worker_ready", timeout=90)
    job_id = job_client.submit(audio.path)
    process.wait_for_event("job_started", timeout=30)
    process.proc.send_signal(signal.SIGTERM)

    assert process.wait(timeout=grace + 30) == 0
    queue = job_client.queues
    wait_until(lambda: queue.count(queue.queue_url)[1] == 0, 10, "nothing in flight")
    if expected == "completed":
        assert job_client.result(job_id, "manifest.json") is not None
        assert queue.count(queue.queue_url) == (0, 0)
    else:
        assert job_client.result(job_id, "manifest.json") is None
        assert queue.count(queue.queue_url) == (1, 0)  # released: visible again for another worker
        assert any(e.get("event") == "job_released" for e in process.events())
    events = json_lines_only(process)
    assert [e["event"] for e in events if e.get("event") in ("stop_requested", "worker_stopped")] == [
        "stop_requested", "worker_stopped"]


def test_sigterm_while_starting_exits_0(worker_process):
    process = worker_process()
    wait_until(lambda: process.lines, 30, "the worker's first log line")
    process.proc.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert any(e.get("event") == "worker_stopped" for e in process.events())


@pytest.mark.slow
def test_second_sigterm_exits_at_once(worker_process, job_client, passage_60s):
    process = worker_process(stop_grace_seconds=60)
    process.wait_for_event("worker_ready", timeout=90)
    job_client.submit(passage_60s.path)
    process.wait_for_event("job_started", timeout=30)
    process.proc.send_signal(signal.SIGTERM)
    process.wait_for_event("stop_requested", timeout=5)
    process.proc.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 128 + signal.SIGTERM


# --- spot interruption notices -------------------------------------------------------------------------


@pytest.mark.slow
def test_spot_notice_stops_receiving_and_drains_the_running_job(cloud, start_worker, job_client, fake_imds,
                                                               short_speech):
    sqs = ProxyClient(cloud.client("sqs"))
    holder: dict = {}
    worker = start_worker(wrap=gated(holder), sqs=sqs, imds_endpoint=fake_imds.endpoint, imds_poll_interval=1)
    first = job_client.submit(short_speech.path)
    assert holder["engine"].started.wait(30)

    fake_imds.announce_interruption("terminate", seconds=120)
    noticed = time.monotonic()
    wait_until(lambda: worker.worker.status.phase == "draining", SPOT_STOP_LIMIT, "draining after the notice")
    second = job_client.submit(short_speech.path)
    holder["engine"].gate.set()

    assert worker.join(timeout=30) == 0
    assert job_client.result(first, "manifest.json") is not None  # the running job was finished
    assert job_client.result(second, "manifest.json") is None
    assert job_client.queues.count(job_client.queues.queue_url) == (1, 0)  # never received, still waiting
    assert not [at for at in sqs.started("receive_message") if at > noticed + SPOT_STOP_LIMIT]


@pytest.mark.slow
def test_spot_deadline_releases_a_job_that_cannot_finish(start_worker, job_client, fake_imds, short_speech):
    holder: dict = {}
    worker = start_worker(wrap=gated(holder), imds_endpoint=fake_imds.endpoint, imds_poll_interval=1,
                          spot_safety_margin=10)
    job_id = job_client.submit(short_speech.path)
    assert holder["engine"].started.wait(30)
    fake_imds.announce_interruption("stop", seconds=13)  # 3 s left after the 10 s safety margin

    assert worker.join(timeout=30) == 0
    holder["engine"].gate.set()
    queue = job_client.queues
    assert queue.count(queue.queue_url) == (1, 0)  # released before the deadline, not left hidden
    assert worker.jobs("released") == 1
    assert job_client.result(job_id, "manifest.json") is None


def test_rebalance_recommendation_stops_an_idle_worker(cloud, start_worker, job_client, fake_imds):
    sqs = ProxyClient(cloud.client("sqs"))
    worker = start_worker(sqs=sqs, imds_endpoint=fake_imds.endpoint, imds_poll_interval=1)
    recommend_rebalance(fake_imds)
    noticed = time.monotonic()
    assert worker.join(timeout=SPOT_STOP_LIMIT + 5) == 0
    assert not [at for at in sqs.started("receive_message") if at > noticed + SPOT_STOP_LIMIT]


# --- idle exit and the command line --------------------------------------------------------------------


def test_stop_during_a_long_poll_is_prompt(start_worker):
    """A stop request does not wait out SQS's 20 s long poll (Docker allows 10 s)."""
    worker = start_worker(receive_wait_seconds=20)
    wait_until(lambda: worker.worker.queue is not None, 10, "the worker to start polling")
    worker.worker.request_stop()
    assert worker.join(timeout=5) == 0


def test_idle_timeout_runs_the_idle_action_and_exits(start_worker, tmp_path):
    marker = tmp_path / "idle-action-ran"
    worker = start_worker(idle_timeout=2, idle_action=f"touch {marker}")
    assert worker.join(timeout=30) == 0
    assert marker.exists()


@pytest.mark.slow
def test_cli_max_jobs_exits_after_the_job(worker_process, job_client, short_speech):
    process = worker_process("--max-jobs", "1", "--idle-exit", "120")
    job_id = job_client.submit(short_speech.path)
    assert process.wait(timeout=120) == 0
    assert job_client.result(job_id, "manifest.json") is not None
    events = json_lines_only(process)
    ready = next(e for e in events if e.get("event") == "worker_ready")
    assert (ready["engine"], ready["model"], ready["device"]) == ("faster-whisper", "tiny.en", "cpu")


@pytest.mark.smoke
def test_invalid_configuration_fails_at_start_naming_the_setting(worker_process):
    process = worker_process(batch_size=0, transcribe_engine="whisper.cpp")
    assert process.wait(timeout=60) == 2
    error = next(e for e in process.events() if e.get("event") == "config_invalid")["error"]
    assert "BATCH_SIZE" in error and "TRANSCRIBE_ENGINE" in error
