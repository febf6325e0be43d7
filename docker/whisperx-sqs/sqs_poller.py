#!/usr/bin/env python3
"""Step 112: poll the job queue and log "Received job: {job_id}" for each message; exit 0 soon after SIGTERM.

No transcription: this container proves the SQS plumbing of the image (AWS_ENDPOINT_URL, credentials, long
polling, signals). Receiving, deleting and releasing are the worker package's own QueueHandler; a received
job is acknowledged (deleted) unless --release is given, which hands it back to the queue at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from worker.jobs import JobError, parse_job, salvage_job_id
from worker.queue_handler import QueueHandler, QueueMessage, backoff


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue-url", default=os.environ.get("QUEUE_URL"), help="default: $QUEUE_URL")
    parser.add_argument("--wait", type=int, default=int(os.environ.get("RECEIVE_WAIT_SECONDS", "20")),
                        help="long-poll seconds (0-20)")
    parser.add_argument("--max-messages", type=int, default=0, help="exit after this many; 0 = until stopped")
    parser.add_argument("--release", action="store_true", help="hand received jobs back instead of deleting")
    args = parser.parse_args(argv)
    if not args.queue_url:
        parser.error("no queue: set QUEUE_URL or pass --queue-url")
    return args


def describe(message: QueueMessage) -> str:
    """`Received job: <id>` for a valid job; a rejection line (with the id when it has one) otherwise."""
    try:
        return f"Received job: {parse_job(message.body).job_id}"
    except JobError as exc:
        return f"Rejected message {message.message_id} (job {salvage_job_id(message.body) or '-'}): {exc}"


def install_stop_handlers(stopping: threading.Event) -> None:
    """First SIGTERM/SIGINT: stop receiving and leave the loop; a second one exits at once."""
    def handle(signum, _frame):
        if stopping.is_set():
            os._exit(128 + signum)
        print(f"Stopping on {signal.Signals(signum).name}", flush=True)
        stopping.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def poll(queue: QueueHandler, stopping: threading.Event, max_messages: int, release: bool) -> int:
    handled = 0
    while not stopping.is_set() and (max_messages == 0 or handled < max_messages):
        for message in queue.receive():
            print(describe(message), flush=True)
            queue.release(message) if release else queue.delete(message)
            handled += 1
    return handled


def main(argv: list[str] | None = None) -> int:
    import boto3  # honours AWS_ENDPOINT_URL, AWS_REGION and the credential chain

    args = parse_args(argv)
    stopping = threading.Event()
    install_stop_handlers(stopping)
    queue = QueueHandler(boto3.client("sqs"), args.queue_url, None, visibility_timeout=60, receive_wait=args.wait,
                         error_backoff=backoff(1.0, 20.0), stopping=stopping, on_receive_error=lambda: None)
    print(f"Polling {args.queue_url}", flush=True)
    handled = poll(queue, stopping, args.max_messages, args.release)
    print(f"SQS poller stopped after {handled} message(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
