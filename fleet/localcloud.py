"""The embedded local cloud: moto in server mode on 127.0.0.1 and the deployment's resources inside it."""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, asdict
from pathlib import Path

import requests

from fleet.aws import RUN_ID_TAG, Cloud

log = logging.getLogger(__name__)


class MotoServer(AbstractContextManager):
    """moto's threaded HTTP server on 127.0.0.1 and a free port; stop() is idempotent."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._server = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MotoServer":
        from moto.server import ThreadedMotoServer  # heavy import, only when a local cloud is wanted

        try:
            self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
            self._server.start()
            self.host, self.port = self._server.get_host_and_port()
            requests.get(f"{self.endpoint_url}/moto-api/", timeout=5).raise_for_status()
        except BaseException:
            self.stop()
            raise
        log.info("moto server on %s", self.endpoint_url)
        return self

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class Deployment:
    """What the plan's scripts read from `.env`: one environment's queues, buckets, repository and key."""

    environment: str
    region: str
    queue_url: str
    dlq_url: str
    audio_bucket: str
    output_bucket: str
    ecr_repo: str
    key_name: str
    ssh_key_path: str
    endpoint_url: str | None = None

    ENV_KEYS = {
        "ENVIRONMENT": "environment",
        "AWS_REGION": "region",
        "SQS_QUEUE_URL": "queue_url",
        "SQS_DLQ_URL": "dlq_url",
        "S3_AUDIO_BUCKET": "audio_bucket",
        "S3_OUTPUT_BUCKET": "output_bucket",
        "ECR_REPO_NAME": "ecr_repo",
        "KEY_NAME": "key_name",
        "SSH_KEY_PATH": "ssh_key_path",
    }

    def as_env(self) -> dict[str, str]:
        values = asdict(self)
        env = {key: values[attr] for key, attr in self.ENV_KEYS.items()}
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "Deployment":
        missing = [k for k in cls.ENV_KEYS if not env.get(k)]
        if missing:
            raise KeyError(f".env lacks {', '.join(missing)}")
        return cls(**{attr: env[key] for key, attr in cls.ENV_KEYS.items()}, endpoint_url=env.get("AWS_ENDPOINT_URL"))


def provision_deployment(cloud: Cloud, environment: str, key_dir: Path, max_receives: int = 3) -> Deployment:
    """Create the deployment's queue + DLQ (redrive after `max_receives`), buckets and SSH key pair."""
    sqs, s3, ec2 = cloud.client("sqs"), cloud.client("s3"), cloud.client("ec2")
    prefix = f"whisper-{environment}"
    queue_url, dlq_url = create_queue_pair(sqs, f"{prefix}-jobs", f"{prefix}-dlq", {RUN_ID_TAG: cloud.run_id},
                                           visibility_timeout=300, max_receives=max_receives)
    buckets = {}
    for role in ("audio", "transcripts"):
        name = f"spotscribe-{environment}-{role}-{cloud.run_id}".lower()[:63]
        s3.create_bucket(Bucket=name, **_bucket_location(cloud.region))
        buckets[role] = name
    key_name = f"spotscribe-{environment}-{cloud.run_id}"
    material = ec2.create_key_pair(KeyName=key_name, KeyType="rsa")["KeyMaterial"]
    key_path = write_private_key(key_dir / f"{key_name}.pem", material)
    return Deployment(
        environment=environment,
        region=cloud.region,
        queue_url=queue_url,
        dlq_url=dlq_url,
        audio_bucket=buckets["audio"],
        output_bucket=buckets["transcripts"],
        ecr_repo=f"whisper-docker-{environment}",
        key_name=key_name,
        ssh_key_path=str(key_path),
        endpoint_url=cloud.endpoint_url,
    )


def create_queue_pair(sqs, name: str, dlq_name: str, tags: dict[str, str] | None = None,
                      visibility_timeout: int = 300, max_receives: int | None = 3) -> tuple[str, str]:
    """A job queue and its DLQ; with `max_receives`, a redrive policy moves a message there after that many."""
    dlq_url = sqs.create_queue(QueueName=dlq_name, tags=tags or {})["QueueUrl"]
    attributes = {"VisibilityTimeout": str(visibility_timeout)}
    if max_receives is not None:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn,
                                                  "maxReceiveCount": str(max_receives)})
    queue_url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags or {})["QueueUrl"]
    return queue_url, dlq_url


def write_private_key(path: Path, material: str) -> Path:
    """Write a private key readable by its owner only (ssh refuses anything looser)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(material if material.endswith("\n") else material + "\n")
    return path


def _bucket_location(region: str) -> dict:
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
