"""The job message contract: validation, error codes and where each job's objects live."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from worker.config import S3_URI
from worker.formats import FORMATS

JOB_ID = r"^[A-Za-z0-9_-]{1,128}$"
INVALID_PREFIX = "_invalid"  # <OUTPUT_URI>/_invalid/<message-id>/error.json for messages without a usable job_id


class ErrorCode(str, Enum):
    """Stable failure codes written to error.json; each is permanent or retryable."""

    MALFORMED_JSON = "malformed_json"
    INVALID_MESSAGE = "invalid_message"
    PATH_TRAVERSAL = "path_traversal"
    AUDIO_NOT_FOUND = "audio_not_found"
    ACCESS_DENIED = "access_denied"
    AUDIO_EMPTY = "audio_empty"
    AUDIO_UNDECODABLE = "audio_undecodable"
    AUDIO_TOO_LARGE = "audio_too_large"
    AUDIO_TOO_LONG = "audio_too_long"
    UNSUPPORTED_LANGUAGE = "unsupported_language"
    MODEL_UNAVAILABLE = "model_unavailable"
    OUTPUT_UNWRITABLE = "output_unwritable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    TRANSCRIPTION_FAILED = "transcription_failed"

    @property
    def retryable(self) -> bool:
        return self in (ErrorCode.STORAGE_UNAVAILABLE, ErrorCode.TRANSCRIPTION_FAILED)


class JobError(Exception):
    """A job failed for a reason the worker understands."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(f"{code.value}: {message}")
        self.code, self.message = code, message

    @property
    def retryable(self) -> bool:
        return self.code.retryable

    def document(self, job_id: str | None, message_id: str) -> dict:
        """The body of error.json."""
        return {"job_id": job_id, "message_id": message_id, "code": self.code.value, "message": self.message,
                "retryable": self.retryable}


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> "S3Location":
        return S3Location(self.bucket, f"{self.key}{name}")


def is_traversal(key: str) -> bool:
    """A key that climbs out of or hides its prefix: `..`/`.` segments, a leading or doubled slash, `\\`, controls."""
    segments = key.split("/")
    return (key.startswith("/") or "//" in key or "\\" in key or any(ord(c) < 32 for c in key)
            or any(part in ("..", ".") for part in segments))


def parse_s3_uri(value: str, *, is_prefix: bool) -> S3Location:
    match = S3_URI.match(value)
    if not match:
        raise PydanticCustomError("s3_uri", "must be s3://bucket/key with a valid bucket name")
    key = match["key"] or ""
    if is_traversal(key):
        raise PydanticCustomError("path_traversal", "path traversal in S3 key {key!r}", {"key": key})
    if is_prefix:
        return S3Location(match["bucket"], key if key.endswith("/") or not key else key + "/")
    if not key or key.endswith("/"):
        raise PydanticCustomError("s3_uri", "must name an object, not a prefix")
    return S3Location(match["bucket"], key)


AudioUri = Annotated[str, AfterValidator(lambda v: parse_s3_uri(v, is_prefix=False).uri)]
OutputUri = Annotated[str, AfterValidator(lambda v: parse_s3_uri(v, is_prefix=True).uri)]


class JobRequest(BaseModel):
    """A job message body (DESIGN §5); anything else is rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    job_id: str = Field(pattern=JOB_ID)
    audio: AudioUri
    output: OutputUri | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$")
    formats: list[Literal["json", "srt", "vtt", "txt"]] = Field(default_factory=lambda: list(FORMATS), min_length=1,
                                                                max_length=len(FORMATS))
    model: str | None = Field(default=None, min_length=1, max_length=200)

    @property
    def audio_location(self) -> S3Location:
        return parse_s3_uri(self.audio, is_prefix=False)

    def output_dir(self, default_output: str) -> S3Location:
        """`<output>/<job_id>/`: the message's output prefix, else the worker's OUTPUT_URI."""
        return parse_s3_uri(self.output or default_output, is_prefix=True).child(f"{self.job_id}/")

    @property
    def subtitle_formats(self) -> list[str]:
        """Requested formats besides transcript.json (always written), in canonical order, once each."""
        return [f for f in FORMATS if f in self.formats and f != "json"]


def describe_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def error_code_for(error: ValidationError) -> ErrorCode:
    types = {item["type"] for item in error.errors()}
    if "json_invalid" in types:
        return ErrorCode.MALFORMED_JSON
    if "path_traversal" in types:
        return ErrorCode.PATH_TRAVERSAL
    return ErrorCode.INVALID_MESSAGE


def parse_job(body: str) -> JobRequest:
    """Validate a message body; raise a permanent JobError with the reason."""
    try:
        return JobRequest.model_validate_json(body)
    except ValidationError as exc:
        raise JobError(error_code_for(exc), describe_validation(exc)) from None


def salvage_job_id(body: str) -> str | None:
    """The job_id of a rejected message, when it has a valid one (to place its error.json)."""
    try:
        value = json.loads(body).get("job_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and re.match(JOB_ID, value) else None


def salvage_output(body: str, default_output: str) -> str:
    """The output prefix of a rejected message when it is valid, else the worker's OUTPUT_URI."""
    try:
        value: Any = json.loads(body).get("output")
        return parse_s3_uri(value, is_prefix=True).uri if isinstance(value, str) else default_output
    except (ValueError, AttributeError):
        return default_output


def default_error_dir(default_output: str, job_id: str | None, message_id: str) -> S3Location:
    """`<OUTPUT_URI>/<job_id>/`, or `<OUTPUT_URI>/_invalid/<message-id>/` without a usable job_id."""
    base = parse_s3_uri(default_output, is_prefix=True)
    return base.child(f"{job_id}/" if job_id else f"{INVALID_PREFIX}/{message_id}/")


def error_location(body: str, message_id: str, default_output: str) -> S3Location:
    """Where a rejected message's error.json goes: its own `<output>/<job_id>/` when both are usable."""
    job_id = salvage_job_id(body)
    if job_id is None:
        return default_error_dir(default_output, None, message_id)
    return default_error_dir(salvage_output(body, default_output), job_id, message_id)
