"""Step 130, bad input: every case of test-data/bad-input/cases.yaml gets error.json with the right code,
its message ends in the DLQ, and the valid job sent right after it still succeeds.

One worker serves the whole corpus (as in production, it must survive every case in turn); its S3 client
throttles keys under `throttled/`, the corpus's transient failure.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from string import Template

import pytest
import yaml

from fixtures.worker import JobClient, ProxyClient, create_job_queues, launch_worker
from fleet.waiting import wait_until

CASES_FILE = Path(__file__).resolve().parents[2] / "test-data" / "bad-input" / "cases.yaml"
CASES = yaml.safe_load(CASES_FILE.read_text())
MIN_CASES = 15


def throttle_marked_keys(kwargs: dict) -> str | None:
    return "SlowDown" if "/throttled/" in kwargs.get("Key", "") else None


@pytest.fixture(scope="module")
def corpus(cloud, deployment, engines):
    """A queue + DLQ, a job client and one running worker for the whole corpus."""
    queues = create_job_queues(cloud.client("sqs"))
    client = JobClient(cloud.client("s3"), queues, deployment.audio_bucket, deployment.output_bucket)
    s3 = ProxyClient(cloud.client("s3"), {"head_object": throttle_marked_keys})
    worker = launch_worker(cloud, client, engines, s3=s3)
    yield client, worker
    worker.stop()


def fill(value, names: dict):
    """Substitute $names in every string of a message template."""
    if isinstance(value, str):
        return Template(value).substitute(names)
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def dlq_copy(client: JobClient, message_id: str, body: str, retryable: bool) -> dict | None:
    """The case's message in the DLQ: moved by the worker (tagged with its id) or redriven by SQS (same body)."""
    for message in client.queues.dead_letters():
        attributes = message.get("MessageAttributes", {})
        if retryable and message["Body"] == body and not attributes:
            return message
        if attributes.get("source_message_id", {}).get("StringValue") == message_id:
            return message
    return None


def test_corpus_is_large_enough():
    assert len(CASES) >= MIN_CASES
    assert len({case["id"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input(case, corpus, bad_audio, short_speech, caplog):
    client, worker = corpus
    caplog.set_level(logging.INFO, logger="worker")
    job_id = f"bad-{uuid.uuid4().hex[:8]}"
    kind = case.get("audio", "speech")
    audio_path = short_speech.path if kind == "speech" else bad_audio.make(kind)
    audio = client.upload(audio_path, f"{client.prefix}/{job_id}/{case.get('audio_key', case['id'])}")
    names = {"job_id": job_id, "audio": audio, "audio_bucket": client.audio_bucket,
             "output_bucket": client.output_bucket, "prefix": client.prefix}
    body = case["body"] if "body" in case else json.dumps(fill(case["message"], names))
    retryable = case.get("retryable", False)

    message_id = client.send(body)
    valid_job = client.submit(short_speech.path)

    error_dir = job_id if case["error_at"] == "job" else f"_invalid/{message_id}"
    error = json.loads(client.wait_for_key(f"{client.prefix}/{error_dir}/error.json", timeout=60))
    assert (error["code"], error["retryable"]) == (case["code"], retryable), error["message"]
    assert error["message"] and error["message_id"] == message_id
    dead = wait_until(lambda: dlq_copy(client, message_id, body, retryable), 60, "the message in the DLQ")
    if not retryable:
        assert dead["MessageAttributes"]["error_code"]["StringValue"] == case["code"]
    client.wait_for(valid_job, "manifest.json", timeout=60)
    wait_until(client.queues.drained, 30, "the job queue to drain")

    failures = [r for r in caplog.records if getattr(r, "event", None) == "job_failed"
                and getattr(r, "message_id", None) == message_id]
    assert failures and all(r.job_id == (job_id if case["error_at"] == "job" else None) for r in failures)
    assert worker.thread.is_alive()
