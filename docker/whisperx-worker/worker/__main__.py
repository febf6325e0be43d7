"""`python -m worker [--max-jobs N] [--idle-exit SECONDS]`: configuration, logging and clients built once here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from worker.config import ConfigError, WorkerSettings, load_settings
from worker.logger import configure_logging, log_event

log = logging.getLogger("worker")
EXIT_CONFIG = 2
EXIT_FAILED = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker", description="spotscribe transcription worker")
    parser.add_argument("--max-jobs", type=int, metavar="N", help="exit after N messages (overrides MAX_JOBS)")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after SECONDS without work (overrides IDLE_TIMEOUT)")
    return parser.parse_args(argv)


def aws_clients(settings: WorkerSettings):
    """SQS and S3 clients from the standard AWS_* environment (AWS_ENDPOINT_URL included)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5,
                    read_timeout=settings.receive_wait_seconds + 20)
    return session.client("sqs", config=config), session.client("s3", config=config)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(max_jobs=args.max_jobs, idle_timeout=args.idle_exit)
    except ConfigError as exc:
        configure_logging()
        log_event(log, "config_invalid", logging.ERROR, error=str(exc))
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    from worker.transcription_worker import Worker

    sqs, s3 = aws_clients(settings)
    worker = Worker(settings, sqs, s3)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: worker.request_stop(signal.Signals(number).name))
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
