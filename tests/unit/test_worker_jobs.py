"""Message validation and error locations of the worker's job contract (DESIGN §5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.jobs import ErrorCode, JobError, error_location, is_traversal, parse_job

JOBS_DIR = Path(__file__).resolve().parents[2] / "test-data" / "jobs"
AUDIO = "s3://audio-bucket/uploads/talk.wav"
DEFAULT_OUTPUT = "s3://results-bucket/transcripts/"


def body(**fields) -> str:
    return json.dumps({"job_id": "job-1", "audio": AUDIO, **fields})


def rejected(text: str) -> JobError:
    with pytest.raises(JobError) as caught:
        parse_job(text)
    return caught.value


@pytest.mark.smoke
@pytest.mark.parametrize("path", sorted(JOBS_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_sample_messages_are_valid(path):
    job = parse_job(path.read_text())
    assert job.audio.startswith("s3://")


def test_defaults_and_output_directory():
    job = parse_job(body())
    assert job.subtitle_formats == ["srt", "vtt", "txt"]
    assert job.output_dir(DEFAULT_OUTPUT).uri == "s3://results-bucket/transcripts/job-1/"
    custom = parse_job(body(output="s3://other-bucket/team-a", formats=["txt", "json", "txt"]))
    assert custom.output_dir(DEFAULT_OUTPUT).uri == "s3://other-bucket/team-a/job-1/"
    assert custom.subtitle_formats == ["txt"]


@pytest.mark.parametrize("text, code", [
    ("{not json", ErrorCode.MALFORMED_JSON),
    ("", ErrorCode.MALFORMED_JSON),
    ("[1, 2]", ErrorCode.INVALID_MESSAGE),
    (body(job_id="a/b"), ErrorCode.INVALID_MESSAGE),
    (body(job_id="x" * 129), ErrorCode.INVALID_MESSAGE),
    (body(job_id=7), ErrorCode.INVALID_MESSAGE),
    (body(audio="s3://audio-bucket/"), ErrorCode.INVALID_MESSAGE),
    (body(audio="s3://A_bad_bucket/x.wav"), ErrorCode.INVALID_MESSAGE),
    (body(audio="file:///etc/passwd"), ErrorCode.INVALID_MESSAGE),
    (body(formats=[]), ErrorCode.INVALID_MESSAGE),
    (body(formats=["docx"]), ErrorCode.INVALID_MESSAGE),
    (body(language="en-US"), ErrorCode.INVALID_MESSAGE),
    (body(model=""), ErrorCode.INVALID_MESSAGE),
    (body(extra=True), ErrorCode.INVALID_MESSAGE),
    (body(audio="s3://audio-bucket/a/../../b.wav"), ErrorCode.PATH_TRAVERSAL),
    (body(audio="s3://audio-bucket//etc/passwd"), ErrorCode.PATH_TRAVERSAL),
    (body(output="s3://results-bucket/../x/"), ErrorCode.PATH_TRAVERSAL),
], ids=lambda v: v.value if isinstance(v, ErrorCode) else None)
def test_invalid_messages_are_rejected_with_a_reason(text, code):
    error = rejected(text)
    assert error.code is code
    assert not error.retryable
    assert error.message


def test_rejection_names_the_offending_field():
    assert "formats" in rejected(body(formats=["docx"])).message
    assert "extra" in rejected(body(extra=1)).message


@pytest.mark.parametrize("key", ["a/../b", "../a", "./a", "/a", "a//b", "a\\b", "a/\x00b", ".."])
def test_traversal_keys(key):
    assert is_traversal(key)


@pytest.mark.parametrize("key", ["a/b.wav", "a..b/c", "...", "a/.hidden.wav", "uploads/2026/12/talk.mp3"])
def test_ordinary_keys(key):
    assert not is_traversal(key)


@pytest.mark.parametrize("text, expected", [
    ("{bad", "s3://results-bucket/transcripts/_invalid/msg-1/"),
    (json.dumps({"job_id": "../x"}), "s3://results-bucket/transcripts/_invalid/msg-1/"),
    (json.dumps({"job_id": "job-9", "audio": 1}), "s3://results-bucket/transcripts/job-9/"),
    (json.dumps({"job_id": "job-9", "output": "s3://mine-bucket/p/"}), "s3://mine-bucket/p/job-9/"),
    (json.dumps({"job_id": "job-9", "output": "s3://mine-bucket/../p/"}), "s3://results-bucket/transcripts/job-9/"),
])
def test_error_location_of_rejected_messages(text, expected):
    assert error_location(text, "msg-1", DEFAULT_OUTPUT).uri == expected


def test_retryable_codes():
    assert {c for c in ErrorCode if c.retryable} == {ErrorCode.STORAGE_UNAVAILABLE, ErrorCode.TRANSCRIPTION_FAILED}
    document = JobError(ErrorCode.STORAGE_UNAVAILABLE, "SlowDown").document("job-1", "m-1")
    assert document == {"job_id": "job-1", "message_id": "m-1", "code": "storage_unavailable",
                        "message": "SlowDown", "retryable": True}
