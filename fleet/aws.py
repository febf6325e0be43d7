"""The one AWS client factory, for moto's server and for a real account alike."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

RUN_ID_TAG = "spotscribe:run-id"
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class Cloud:
    """Where AWS calls go: a moto endpoint on 127.0.0.1 (local target) or the real account (aws target)."""

    target: str
    region: str
    run_id: str
    endpoint_url: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _clients: dict = field(default_factory=dict, repr=False)

    @property
    def is_local(self) -> bool:
        return self.target == "local"

    @functools.cached_property
    def session(self) -> boto3.session.Session:
        creds = LOCAL_CREDENTIALS if self.is_local else {}
        return boto3.session.Session(region_name=self.region, **creds)

    def client(self, service: str):
        """A cached client for `service`; boto3 clients are thread-safe, sessions are not."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30),
                )
            return self._clients[service]

    def tags(self, **extra: str) -> list[dict]:
        """The run-id tag (plus extras) in the EC2/SQS-style list form."""
        return [{"Key": RUN_ID_TAG, "Value": self.run_id}, *({"Key": k, "Value": v} for k, v in extra.items())]

    def environ(self) -> dict[str, str]:
        """Environment variables that point a process (worker, script, container) at this cloud."""
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.is_local:
            env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=self.endpoint_url)
        return env
