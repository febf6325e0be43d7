"""`python -m worker [--max-jobs N] [--idle-exit SECONDS]`: configuration, logging and clients built once here."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys

from worker.config import ConfigError, WorkerSettings, load_settings
from worker.logger import configure_logging, log_event
from worker.transcriber import import_engine_libraries

log = logging.getLogger("worker")
EXIT_CONFIG = 2
EXIT_FAILED = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker", description="spotscribe transcription worker")
    parser.add_argument("--max-jobs", type=int, metavar="N", help="exit after N messages (overrides MAX_JOBS)")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after SECONDS without work (overrides IDLE_TIMEOUT)")
    return parser.parse_args(argv)


def region_of(queue_url: str) -> str | None:
    """The region in an SQS URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/jobs."""
    match = re.match(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", queue_url)
    return match[1] if match else None


def aws_clients(settings: WorkerSettings):
    """SQS and S3 clients from the standard AWS_* environment (AWS_ENDPOINT_URL included).

    The region: AWS_DEFAULT_REGION or the profile (boto3's own chain), else AWS_REGION, else the queue URL's.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    region = session.region_name or os.environ.get("AWS_REGION") or region_of(settings.queue_url)
    if not region:
        raise ConfigError("invalid worker configuration: AWS_REGION (or AWS_DEFAULT_REGION) is not set")
    config = Config(region_name=region, retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5,
                    read_timeout=settings.receive_wait_seconds + 20)
    return session.client("sqs", config=config), session.client("s3", config=config)


def on_signals(handler) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: handler(signal.Signals(number).name))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    early_signals: list[str] = []  # heard while starting up (imports can take seconds); replayed to the worker
    on_signals(early_signals.append)
    try:
        settings = load_settings(max_jobs=args.max_jobs, idle_timeout=args.idle_exit)
        import_engine_libraries(settings.transcribe_engine)
        configure_logging(settings.log_level)
        sqs, s3 = aws_clients(settings)
    except ConfigError as exc:
        configure_logging()
        log_event(log, "config_invalid", logging.ERROR, error=str(exc))
        return EXIT_CONFIG
    from worker.transcription_worker import Worker

    worker = Worker(settings, sqs, s3)
    on_signals(worker.request_stop)
    for name in early_signals:
        worker.request_stop(name)
    try:
        code = worker.run()
    except Exception as exc:
        log_event(log, "worker_failed", logging.ERROR, error=repr(exc))
        code = EXIT_FAILED
    finally:
        sqs.close()
        s3.close()
    if worker.left_running:  # a model load or a job may sit in native code: do not wait on it at interpreter exit
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
