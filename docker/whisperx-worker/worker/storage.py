"""S3 side of a job: fetch the audio within limits, write results (manifest last), recognise finished jobs."""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from worker.formats import CONTENT_TYPES
from worker.jobs import ErrorCode, JobError, S3Location

MANIFEST = "manifest.json"
TRANSCRIPT = "transcript.json"
ERROR = "error.json"
NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
DENIED = {"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def storage_error(exc: Exception, missing: ErrorCode, what: str) -> JobError:
    """Classify an S3 failure: missing → `missing`, denied → permanent, anything else → retryable."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in NOT_FOUND:
            return JobError(missing, f"{what}: not found ({code})")
        if code in DENIED:
            return JobError(ErrorCode.ACCESS_DENIED, f"{what}: access denied ({code})")
        return JobError(ErrorCode.STORAGE_UNAVAILABLE, f"{what}: {code or 'error'}")
    return JobError(ErrorCode.STORAGE_UNAVAILABLE, f"{what}: {type(exc).__name__}")


@contextlib.contextmanager
def s3_errors(missing: ErrorCode, what: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise storage_error(exc, missing, what) from exc


@dataclass
class JobStore:
    """One S3 client, the audio limits and a scratch directory."""

    s3: object
    max_audio_bytes: int
    scratch_dir: Path | None = None

    @contextlib.contextmanager
    def fetched_audio(self, audio: S3Location) -> Iterator[Path]:
        """Download the audio to a scratch file (removed afterwards), refusing empty or oversized objects."""
        with s3_errors(ErrorCode.AUDIO_NOT_FOUND, f"audio {audio.uri}"):
            size = self.s3.head_object(Bucket=audio.bucket, Key=audio.key)["ContentLength"]
        if size == 0:
            raise JobError(ErrorCode.AUDIO_EMPTY, f"audio {audio.uri} is empty (0 bytes)")
        if size > self.max_audio_bytes:
            raise JobError(ErrorCode.AUDIO_TOO_LARGE, f"audio is {size} bytes, the limit is {self.max_audio_bytes}")
        with tempfile.TemporaryDirectory(prefix="job-", dir=self.scratch_dir) as scratch:
            path = Path(scratch) / "audio"
            with s3_errors(ErrorCode.AUDIO_NOT_FOUND, f"audio {audio.uri}"):
                self.s3.download_file(audio.bucket, audio.key, str(path))
            yield path

    def put(self, location: S3Location, body: str, content_type: str) -> str:
        """Write one object; returns its ETag."""
        with s3_errors(ErrorCode.OUTPUT_UNWRITABLE, f"output {location.uri}"):
            reply = self.s3.put_object(Bucket=location.bucket, Key=location.key, Body=body.encode("utf-8"),
                                       ContentType=content_type)
        return reply.get("ETag", "").strip('"')

    def write_results(self, output_dir: S3Location, files: dict[str, str], manifest: dict) -> None:
        """Write every result object, then drop a stale error.json, then the manifest (the completion mark)."""
        objects = {}
        for name, body in files.items():
            objects[name] = self.put(output_dir.child(name), body, CONTENT_TYPES[name.rsplit(".", 1)[1]])
        with s3_errors(ErrorCode.OUTPUT_UNWRITABLE, f"output {output_dir.uri}"):
            self.s3.delete_object(Bucket=output_dir.bucket, Key=output_dir.child(ERROR).key)
        self.put(output_dir.child(MANIFEST), json.dumps({**manifest, "objects": objects}, indent=2) + "\n",
                 CONTENT_TYPES["json"])

    def write_error(self, output_dir: S3Location, document: dict) -> None:
        self.put(output_dir.child(ERROR), json.dumps(document, indent=2) + "\n", CONTENT_TYPES["json"])

    def finished_formats(self, output_dir: S3Location) -> set[str] | None:
        """The formats of a complete earlier result set (manifest present, every listed object present), else None."""
        manifest = self.read_json(output_dir.child(MANIFEST))
        if manifest is None:
            return None
        names = manifest.get("objects", {})
        if not names or any(not self.exists(output_dir.child(name)) for name in names):
            return None
        return {name.rsplit(".", 1)[1] for name in names}

    def read_json(self, location: S3Location) -> dict | None:
        with s3_errors(ErrorCode.OUTPUT_UNWRITABLE, f"output {location.uri}"):
            try:
                body = self.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND:
                    return None
                raise
        try:
            document = json.loads(body)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def exists(self, location: S3Location) -> bool:
        with s3_errors(ErrorCode.OUTPUT_UNWRITABLE, f"output {location.uri}"):
            try:
                self.s3.head_object(Bucket=location.bucket, Key=location.key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND:
                    return False
                raise
        return True
