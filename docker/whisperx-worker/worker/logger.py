"""JSON logging, configured in one place: one line per event, every job line carries `job_id`."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Iterator, TextIO

from pythonjsonlogger.json import JsonFormatter

LOG_FIELDS = "{asctime}{levelname}{name}{message}"
# whisperx re-installs a text handler on its logger whenever that logger has none: it gets the JSON one.
HANDLER_OWNING_LOGGERS = ("whisperx",)
QUIET_LOGGERS = ("botocore", "urllib3", "faster_whisper", "lightning", "lightning.pytorch", "lightning.fabric",
                 "lightning_fabric", "pytorch_lightning", "speechbrain")


class CurrentJob(logging.Filter):
    """Stamps the running job's id on records that carry none (library lines logged during a job)."""

    def __init__(self):
        super().__init__()
        self.job_id: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.job_id is not None and not hasattr(record, "job_id"):
            record.job_id = self.job_id
        return True


CURRENT_JOB = CurrentJob()  # one job at a time per worker process


@contextlib.contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    CURRENT_JOB.job_id = job_id
    try:
        yield
    finally:
        CURRENT_JOB.job_id = None


def json_formatter() -> JsonFormatter:
    return JsonFormatter(LOG_FIELDS, style="{", rename_fields={"asctime": "time", "levelname": "level",
                                                                 "name": "logger"})


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every record, the libraries' too, through one JSON handler on `stream` (stdout).

    Call it after the engine's libraries are imported: some attach text handlers of their own on import.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    handler.addFilter(CURRENT_JOB)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for library in library_loggers():
        library.handlers.clear()
        library.propagate = True
    for name in HANDLER_OWNING_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.propagate = False
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def library_loggers() -> list[logging.Logger]:
    """Loggers that already carry handlers of their own."""
    loggers = logging.Logger.manager.loggerDict.values()
    return [lg for lg in loggers if isinstance(lg, logging.Logger) and lg.handlers]


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: `message` is the event name, the fields are top-level keys."""
    logger.log(level, event, extra={"event": event, **fields})


class JobLogger:
    """Events of one job: each line carries its `job_id` (and the SQS message id)."""

    def __init__(self, logger: logging.Logger, job_id: str, message_id: str):
        self.logger, self.job_id, self.message_id = logger, job_id, message_id

    def event(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        log_event(self.logger, event, level, job_id=self.job_id, message_id=self.message_id, **fields)
