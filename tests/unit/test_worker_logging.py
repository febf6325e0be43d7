"""JSON logging: one object per line, job lines carry job_id, libraries' own handlers are taken over.

configure_logging() rewires the process's root logger, so it runs in a child interpreter here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from worker.__main__ import region_of

WORKER_DIR = Path(__file__).resolve().parents[2] / "docker" / "whisperx-worker"

SCRIPT = textwrap.dedent("""
    import logging
    library = logging.getLogger("somelib")
    library.addHandler(logging.StreamHandler())  # a library that prints text on its own
    library.propagate = False

    from worker.logger import JobLogger, configure_logging, job_context, log_event
    configure_logging("INFO")
    log = logging.getLogger("worker")
    log_event(log, "worker_ready", engine="faster-whisper")
    JobLogger(log, "job-7", "msg-1").event("job_started", audio_seconds=1.5)
    with job_context("job-7"):
        library.warning("decoder says hi")
    logging.getLogger("botocore").info("chatty")
""")


def run_script() -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(WORKER_DIR)}, check=True)
    return (done.stdout + done.stderr).splitlines()


def test_every_line_is_one_json_object_and_job_lines_carry_the_job_id():
    records = [json.loads(line) for line in run_script()]
    assert [r["message"] for r in records] == ["worker_ready", "job_started", "decoder says hi"]
    ready, started, library = records
    assert ready["event"] == "worker_ready" and ready["engine"] == "faster-whisper" and ready["level"] == "INFO"
    assert started["job_id"] == "job-7" and started["message_id"] == "msg-1" and started["audio_seconds"] == 1.5
    assert library["job_id"] == "job-7" and library["logger"] == "somelib"


def test_region_from_queue_url():
    assert region_of("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs") == "eu-west-1"
    assert region_of("http://127.0.0.1:5000/123456789012/jobs") is None
