"""JSON logging, configured in one place: one line per event, every job line carries `job_id`."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

LOG_FIELDS = "{asctime}{levelname}{name}{message}"
# Libraries that install handlers of their own; their records go through the JSON handler instead.
OWN_HANDLER_LOGGERS = ("whisperx",)
QUIET_LOGGERS = {"botocore": logging.WARNING, "urllib3": logging.WARNING, "faster_whisper": logging.WARNING,
                 "lightning": logging.WARNING, "lightning_fabric": logging.WARNING,
                 "pytorch_lightning": logging.WARNING, "speechbrain": logging.WARNING}


def json_formatter() -> JsonFormatter:
    return JsonFormatter(LOG_FIELDS, style="{", rename_fields={"asctime": "time", "levelname": "level",
                                                                 "name": "logger"})


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every record, the libraries' too, through one JSON handler on `stream` (stdout)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in OWN_HANDLER_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.propagate = False
    for name, library_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(library_level)
    logging.captureWarnings(True)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: `message` is the event name, the fields are top-level keys."""
    logger.log(level, event, extra={"event": event, **fields})


class JobLogger:
    """Events of one job: each line carries its `job_id` (and the SQS message id)."""

    def __init__(self, logger: logging.Logger, job_id: str, message_id: str):
        self.logger, self.job_id, self.message_id = logger, job_id, message_id

    def event(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        log_event(self.logger, event, level, job_id=self.job_id, message_id=self.message_id, **fields)
