"""SQS side: long-poll receive (interruptible, with backoff on errors), heartbeat, delete, release, dead-letter."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, stop_when_event_set
from tenacity.wait import wait_base, wait_random_exponential

from worker.logger import log_event

log = logging.getLogger(__name__)

AWS_ERRORS = (ClientError, BotoCoreError)
MAX_VISIBILITY = 43200  # SQS's ceiling: 12 hours


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


def backoff(base: float, cap: float) -> wait_base:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(n-1))] for attempt n."""
    return wait_random_exponential(multiplier=base, max=cap)


def backoff_seconds(strategy: wait_base, attempt: int) -> float:
    """The wait `strategy` gives before retry number `attempt` (1-based)."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = max(1, attempt)
    return strategy(state)


def dead_letter_url(sqs, queue_url: str) -> str | None:
    """The DLQ named by the queue's RedrivePolicy, or None."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    if "RedrivePolicy" not in attributes:
        return None
    arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
    _, _, _, _, account, name = arn.split(":", 5)
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def to_message(raw: dict) -> QueueMessage:
    return QueueMessage(raw["MessageId"], raw["ReceiptHandle"], raw.get("Body", ""),
                        int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")))


class QueueHandler:
    """One job queue (and its DLQ) for one worker."""

    def __init__(self, sqs, queue_url: str, dlq_url: str | None, visibility_timeout: int, receive_wait: int,
                 error_backoff: wait_base, stopping: threading.Event, on_receive_error: Callable[[], None]):
        self.sqs, self.queue_url, self.dlq_url = sqs, queue_url, dlq_url
        self.visibility_timeout, self.receive_wait = visibility_timeout, receive_wait
        self.error_backoff, self.stopping, self.on_receive_error = error_backoff, stopping, on_receive_error

    def receive_once(self, wait_seconds: int) -> list[QueueMessage]:
        reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds,
                                         VisibilityTimeout=self.visibility_timeout,
                                         AttributeNames=["ApproximateReceiveCount"])
        return [to_message(raw) for raw in reply.get("Messages", [])]

    def receive_with_backoff(self, wait_seconds: int) -> list[QueueMessage]:
        """Receive, retrying errors with jittered backoff until it works or the worker stops."""
        retrying = Retrying(retry=retry_if_exception_type(Exception), wait=self.error_backoff,
                            stop=stop_when_event_set(self.stopping), sleep=self.stopping.wait,
                            before_sleep=self._receive_failed, reraise=False)
        try:
            return retrying(self.receive_once, wait_seconds)
        except RetryError:
            return []

    def _receive_failed(self, state: RetryCallState) -> None:
        self.on_receive_error()
        log_event(log, "receive_failed", logging.WARNING, error=repr(state.outcome.exception()),
                  attempt=state.attempt_number, retry_in=round(state.upcoming_sleep, 2))

    def receive(self, wait_seconds: int | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[QueueMessage]:
        """Long-poll in a helper thread so that a stop request need not wait out the poll."""
        poll = AbandonablePoll(lambda: self.receive_with_backoff(
            self.receive_wait if wait_seconds is None else wait_seconds), self.release)
        return poll.wait(should_stop or self.stopping.is_set)

    def extend(self, message: QueueMessage) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle,
                                           VisibilityTimeout=self.visibility_timeout)

    def delete(self, message: QueueMessage) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle)

    def release(self, message: QueueMessage, delay: float = 0) -> bool:
        """Make the message visible again after `delay` seconds; False when SQS refused."""
        try:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle,
                                               VisibilityTimeout=min(MAX_VISIBILITY, int(delay)))
        except AWS_ERRORS as exc:
            log_event(log, "release_failed", logging.WARNING, message_id=message.message_id, error=repr(exc))
            return False
        return True

    def dead_letter(self, message: QueueMessage, attributes: dict[str, str]) -> bool:
        """Move a permanently failed message to the DLQ at once (send a copy, then delete).

        Without a DLQ it is released instead, and reaches the DLQ through the redrive policy.
        """
        if self.dlq_url is None:
            return False
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=message.body or "(empty)",
                              MessageAttributes={k: {"DataType": "String", "StringValue": v or "-"}
                                                 for k, v in attributes.items()})
        self.delete(message)
        return True

    def heartbeat(self, message: QueueMessage, interval: float) -> "Heartbeat":
        return Heartbeat(self, message, interval)


class AbandonablePoll:
    """Runs `receive` in a daemon thread; if the waiter gives up first, whatever arrives later is released."""

    def __init__(self, receive: Callable[[], list[QueueMessage]], release: Callable[[QueueMessage], bool]):
        self.receive, self.release = receive, release
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.abandoned = False
        self.messages: list[QueueMessage] = []
        threading.Thread(target=self.run, name="sqs-receive", daemon=True).start()

    def run(self) -> None:
        messages = self.receive()
        with self.lock:
            if not self.abandoned:
                self.messages = messages
                self.done.set()
                return
        for message in messages:
            self.release(message)

    def wait(self, should_stop: Callable[[], bool]) -> list[QueueMessage]:
        """The received messages, or [] as soon as `should_stop()` says so."""
        while not self.done.wait(0.1):
            if should_stop():
                with self.lock:
                    if not self.done.is_set():
                        self.abandoned = True
                        return []
        return self.messages


class Heartbeat:
    """Extends a message's visibility every `interval` seconds until stopped (a context manager)."""

    def __init__(self, queue: QueueHandler, message: QueueMessage, interval: float):
        self.queue, self.message, self.interval = queue, message, interval
        self.stopped = threading.Event()
        self.beats = 0
        self.thread = threading.Thread(target=self.beat, name="sqs-heartbeat", daemon=True)

    def beat(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.queue.extend(self.message)
                self.beats += 1
            except AWS_ERRORS as exc:  # transient: the next beat tries again within the lease
                log_event(log, "heartbeat_failed", logging.WARNING, message_id=self.message.message_id,
                          error=repr(exc))

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=10)

    def __exit__(self, *exc) -> None:
        self.stop()
