"""Spot interruption watcher: polls IMDSv2 for `spot/instance-action` and rebalance recommendations."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from worker.logger import log_event

log = logging.getLogger(__name__)

TOKEN_PATH = "/latest/api/token"
INSTANCE_ACTION_PATH = "/latest/meta-data/spot/instance-action"
REBALANCE_PATH = "/latest/meta-data/events/recommendations/rebalance"
TOKEN_TTL_SECONDS = 21600
REQUEST_TIMEOUT = 2.0


@dataclass(frozen=True)
class InterruptionNotice:
    kind: str  # "instance-action" | "rebalance"
    action: str | None
    deadline: datetime | None  # when the instance goes (instance-action only)

    def seconds_left(self, now: datetime | None = None) -> float | None:
        if self.deadline is None:
            return None
        return (self.deadline - (now or datetime.now(timezone.utc))).total_seconds()


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class ImdsClient:
    """Just enough IMDSv2: a session token, then token-authenticated GETs (404 means no notice)."""

    def __init__(self, endpoint: str, timeout: float = REQUEST_TIMEOUT):
        self.endpoint, self.timeout = endpoint.rstrip("/"), timeout
        self._token: str | None = None
        self._token_expires = 0.0

    def token(self) -> str:
        if self._token is None or time.monotonic() >= self._token_expires:
            request = urllib.request.Request(self.endpoint + TOKEN_PATH, method="PUT",
                                             headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)})
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                self._token = reply.read().decode().strip()
            self._token_expires = time.monotonic() + TOKEN_TTL_SECONDS - 60
        return self._token

    def get_json(self, path: str) -> dict | None:
        """The document at `path`, or None when IMDS answers 404."""
        request = urllib.request.Request(self.endpoint + path, headers={"X-aws-ec2-metadata-token": self.token()})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                self._token = None  # expired or revoked: fetch a fresh token on the next poll
            if exc.code in (401, 404):
                return None
            raise

    def notice(self) -> InterruptionNotice | None:
        action = self.get_json(INSTANCE_ACTION_PATH)
        if action is not None:
            return InterruptionNotice("instance-action", action.get("action"), parse_time(action.get("time")))
        rebalance = self.get_json(REBALANCE_PATH)
        if rebalance is not None:
            return InterruptionNotice("rebalance", None, None)
        return None


class SpotWatcher:
    """A daemon thread that calls `on_notice` once, when the first interruption notice appears."""

    def __init__(self, client: ImdsClient, interval: float, on_notice: Callable[[InterruptionNotice], None],
                 stop: threading.Event):
        self.client, self.interval, self.on_notice, self.stop = client, interval, on_notice, stop
        self.thread = threading.Thread(target=self.watch, name="spot-watcher", daemon=True)
        self._unreachable_logged = False

    def start(self) -> "SpotWatcher":
        self.thread.start()
        return self

    def watch(self) -> None:
        while not self.stop.is_set():
            notice = self.poll_once()
            if notice is not None:
                self.on_notice(notice)
                return
            self.stop.wait(self.interval)

    def poll_once(self) -> InterruptionNotice | None:
        try:
            return self.client.notice()
        except (OSError, ValueError) as exc:  # not on EC2, IMDS throttling, bad JSON: keep watching
            if not self._unreachable_logged:
                log_event(log, "imds_unreachable", logging.WARNING, error=type(exc).__name__)
                self._unreachable_logged = True
            return None
