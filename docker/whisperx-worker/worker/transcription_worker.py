"""The worker loop: receive one job at a time, transcribe it, write the results, acknowledge; drain on request."""

from __future__ import annotations

import gc
import logging
import math
import shlex
import signal
import subprocess
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Callable

from worker.audio import load_audio
from worker.config import WorkerSettings
from worker.formats import RENDERERS, segment_dicts, to_json
from worker.health import HealthServer, WorkerStatus
from worker.jobs import (ErrorCode, JobError, JobRequest, S3Location, default_error_dir, error_location, parse_job,
                         salvage_job_id)
from worker.logger import JobLogger, job_context, log_event
from worker.metrics import WorkerMetrics
from worker.queue_handler import (AWS_ERRORS, Heartbeat, QueueHandler, QueueMessage, backoff, backoff_seconds,
                                  dead_letter_url)
from worker.spot import ImdsClient, InterruptionNotice, SpotWatcher
from worker.storage import TRANSCRIPT, JobStore
from worker.transcriber import Engine, Transcription, english_only, load_engine

log = logging.getLogger("worker")

SIGNALS = ("SIGTERM", "SIGINT")
TICK = 0.1  # how often the main thread looks at its flags while it waits
NO_DEADLINE_NOTICE_SECONDS = 120.0  # a spot instance-action without a time: EC2's two-minute warning


class JobCancelled(Exception):
    """The main thread released this job's message; the job must not write or acknowledge anything more."""


@dataclass(frozen=True)
class StopRequest:
    reason: str
    grace: float  # seconds the in-flight job may still run
    is_signal: bool = False


@dataclass
class JobRun:
    """One message being processed on a job thread, under its heartbeat."""

    message: QueueMessage
    heartbeat: Heartbeat
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    outcome: str = "failed_retryable"
    started: float = field(default_factory=time.monotonic)
    job_id: str | None = None  # known once the body parses


class Worker:
    """Built once with its settings, clients and model loader; `run()` serves until stopped and returns an exit code."""

    def __init__(self, settings: WorkerSettings, sqs, s3,
                 engine_loader: Callable[[WorkerSettings], Engine] = load_engine, metrics: WorkerMetrics | None = None):
        self.settings, self.sqs, self.engine_loader = settings, sqs, engine_loader
        self.metrics = metrics or WorkerMetrics()
        self.status = WorkerStatus()
        self.stopping = threading.Event()
        self.store = JobStore(s3, settings.max_audio_bytes, settings.scratch_dir)
        self.release_backoff = backoff(settings.retry_backoff_base, settings.retry_backoff_max)
        self.engine: Engine | None = None
        self.health: HealthServer | None = None
        self.queue: QueueHandler | None = None
        self.jobs_handled = 0
        self.engine_thread = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self.left_running = False  # work abandoned on a helper thread: the process must not wait for it at exit
        self.exit_code: int | None = None
        self._requests: list[StopRequest] = []  # appended by signal handlers and threads; read by the main thread
        self._applied = 0
        self._signals = 0
        self._drain_deadline = math.inf
        self._last_activity = time.monotonic()

    # --- stop requests: callers only append; the main thread applies them ------------------------

    def request_stop(self, reason: str = "SIGTERM", is_signal: bool = True) -> None:
        """Safe from a signal handler: appends to a list, nothing else."""
        self._requests.append(StopRequest(reason, self.settings.stop_grace_seconds, is_signal))

    def notice_interruption(self, notice: InterruptionNotice) -> None:
        """Called by the spot watcher: drain before the instance goes."""
        self._requests.append(StopRequest(f"spot-{notice.kind}", self.interruption_grace(notice)))

    def interruption_grace(self, notice: InterruptionNotice) -> float:
        if notice.kind == "rebalance":
            return self.settings.rebalance_drain_seconds
        left = notice.seconds_left()
        left = NO_DEADLINE_NOTICE_SECONDS if left is None else left
        return max(0.0, left - self.settings.spot_safety_margin)

    def should_stop(self) -> bool:
        """Apply pending stop requests (main thread) and say whether the worker is draining."""
        while self._applied < len(self._requests):
            self.apply(self._requests[self._applied])
            self._applied += 1
        return self.stopping.is_set()

    def apply(self, request: StopRequest) -> None:
        self._signals += request.is_signal
        if self._signals >= 2:
            self.exit_code = 128 + signal.Signals[request.reason].value if request.reason in SIGNALS else 1
            log_event(log, "exit_now", logging.WARNING, reason=f"second {request.reason}")
        self._drain_deadline = min(self._drain_deadline, time.monotonic() + request.grace)
        if not self.stopping.is_set():
            self.stopping.set()
            self.status.set("draining")
            self.metrics.ready.set(0)
            log_event(log, "stop_requested", reason=request.reason, grace_seconds=round(request.grace, 1))

    @property
    def exit_now(self) -> bool:
        return self.exit_code is not None

    # --- lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped, idle, or out of jobs; 0 on an orderly exit."""
        self.health = HealthServer(self.settings.health_host, self.settings.health_port, self.status,
                                   self.metrics).start()
        log_event(log, "health_listening", port=self.health.port)
        try:
            if self.start_engine():
                self.queue = self.build_queue()
                self.start_spot_watcher()
                self.serve()
        finally:
            self.stopping.set()
            self.engine_thread.shutdown(wait=False, cancel_futures=True)
            self.status.set("stopped")
            self.metrics.ready.set(0)
            self.health.stop()
        code = self.exit_code if self.exit_now else 0
        log_event(log, "worker_stopped", exit_code=code, jobs=self.jobs_handled)
        return code

    def start_engine(self) -> bool:
        """Load and warm the model on the engine thread while the main thread keeps hearing stop requests."""
        loading = self.engine_thread.submit(self.load_and_warm_up)
        while not futures.wait([loading], timeout=TICK).done:
            if self.should_stop():
                self.left_running = True
                log_event(log, "stopped_while_loading")
                return False
        self.engine = loading.result()
        gc.freeze()  # the model and libraries are long-lived: keep later collections (audio decoding runs one) short
        self.status.set("ready", self.engine.info.public())
        self.metrics.ready.set(1)
        log_event(log, "worker_ready", **self.engine.info.public())
        return True

    def load_and_warm_up(self) -> Engine:
        started = time.monotonic()
        engine = self.engine_loader(self.settings)
        loaded_at = time.monotonic()
        engine.warm_up()
        log_event(log, "model_loaded", **engine.info.public(), load_seconds=round(loaded_at - started, 3),
                  warm_up_seconds=round(time.monotonic() - loaded_at, 3))
        return engine

    def transcribe(self, samples, language: str | None) -> Transcription:
        """Every inference runs on the one engine thread that warmed the model up.

        (CTranslate2's CPU thread pool slows later calls several-fold when its first inference ran on a
        thread that has since exited; one long-lived engine thread avoids that.)
        """
        return self.engine_thread.submit(self.engine.transcribe, samples, language).result()

    def build_queue(self) -> QueueHandler:
        dlq = self.settings.dlq_url or self.discover_dlq()
        if dlq is None:
            log_event(log, "no_dead_letter_queue", logging.WARNING,
                      reason="permanent failures are released and rely on the queue's redrive policy")
        return QueueHandler(self.sqs, self.settings.queue_url, dlq, self.settings.visibility_timeout,
                            self.settings.receive_wait_seconds,
                            backoff(self.settings.retry_backoff_base, self.settings.retry_backoff_max),
                            self.stopping, self.metrics.receive_errors.inc)

    def discover_dlq(self) -> str | None:
        try:
            return dead_letter_url(self.sqs, self.settings.queue_url)
        except AWS_ERRORS as exc:
            log_event(log, "dead_letter_queue_unknown", logging.WARNING, error=repr(exc))
            return None

    def start_spot_watcher(self) -> None:
        if self.settings.imds_endpoint:
            SpotWatcher(ImdsClient(self.settings.imds_endpoint), self.settings.imds_poll_interval,
                        self.notice_interruption, self.stopping).start()

    def serve(self) -> None:
        while not self.should_stop():
            if self.idle_expired():
                self.run_idle_action()
                return
            messages = self.queue.receive(self.receive_wait(), self.should_stop)
            if self.should_stop():
                for message in messages:
                    self.queue.release(message)
                return
            for message in messages:
                self.handle(message)
                if self.exit_now:
                    return
            if self.settings.max_jobs and self.jobs_handled >= self.settings.max_jobs:
                log_event(log, "max_jobs_reached", jobs=self.jobs_handled)
                return

    # --- idle -----------------------------------------------------------------------------------

    def idle_seconds(self) -> float:
        return time.monotonic() - self._last_activity

    def idle_expired(self) -> bool:
        return bool(self.settings.idle_timeout) and self.idle_seconds() >= self.settings.idle_timeout

    def receive_wait(self) -> int:
        """The long-poll length, shortened so the idle timeout is noticed on time."""
        if not self.settings.idle_timeout:
            return self.settings.receive_wait_seconds
        remaining = self.settings.idle_timeout - self.idle_seconds()
        return max(0, min(self.settings.receive_wait_seconds, math.ceil(remaining)))

    def run_idle_action(self) -> None:
        action = self.settings.idle_action
        log_event(log, "idle_timeout", idle_seconds=round(self.idle_seconds(), 1), action=bool(action))
        if not action:
            return
        try:
            done = subprocess.run(shlex.split(action), capture_output=True, text=True, timeout=60, check=False)
            log_event(log, "idle_action_finished", returncode=done.returncode)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log_event(log, "idle_action_failed", logging.ERROR, error=repr(exc))

    # --- one message ------------------------------------------------------------------------------

    def handle(self, message: QueueMessage) -> None:
        """Process one message on a job thread, under a heartbeat; release it if the drain deadline passes."""
        run = JobRun(message, self.queue.heartbeat(message, self.settings.heartbeat_seconds))
        self.metrics.in_flight.inc()
        with run.heartbeat:
            thread = threading.Thread(target=self.process, args=(run,), name="job", daemon=True)
            thread.start()
            while not run.finished.wait(TICK):
                if self.should_stop() and (self.exit_now or time.monotonic() >= self._drain_deadline):
                    self.abandon(run)
                    break
        self.metrics.in_flight.dec()
        self.jobs_handled += 1
        self.metrics.job_done(run.outcome, time.monotonic() - run.started)
        self._last_activity = time.monotonic()

    def abandon(self, run: JobRun) -> None:
        """Drain deadline passed (release the message) or second signal (leave it to its lease)."""
        run.cancelled.set()
        self.left_running = True
        run.outcome = "released"
        if not self.exit_now:
            run.heartbeat.stop()
            released = self.queue.release(run.message)
            log_event(log, "job_released", job_id=run.job_id, message_id=run.message.message_id, released=released)

    def process(self, run: JobRun) -> None:
        """The job thread: never lets an exception escape; a message it cannot account for comes back later."""
        try:
            run.outcome = self.process_message(run)
        except Exception as exc:
            log_event(log, "job_crashed", logging.ERROR, job_id=run.job_id, message_id=run.message.message_id,
                      error=repr(exc))
            if not run.cancelled.is_set():
                run.heartbeat.stop()
                self.queue.release(run.message, backoff_seconds(self.release_backoff, run.message.receive_count))
            run.outcome = "failed_retryable"
        finally:
            run.finished.set()

    def process_message(self, run: JobRun) -> str:
        message = run.message
        try:
            job = parse_job(message.body)
        except JobError as error:
            run.job_id = salvage_job_id(message.body)
            location = error_location(message.body, message.message_id, self.settings.output_uri)
            return self.fail(run, run.job_id, error, location)
        run.job_id = job.job_id
        jlog = JobLogger(log, job.job_id, message.message_id)
        jlog.event("job_received", receive_count=message.receive_count, audio=job.audio)
        output_dir = job.output_dir(self.settings.output_uri)
        try:
            with job_context(job.job_id):
                return self.transcribe_job(run, job, output_dir, jlog)
        except JobCancelled:
            jlog.event("job_cancelled")
            return "released"
        except JobError as error:
            return self.fail(run, job.job_id, error, output_dir)
        except Exception as exc:  # an engine or library failure: retryable, the redrive policy bounds it
            jlog.event("job_crashed", logging.ERROR, error=repr(exc))
            error = JobError(ErrorCode.TRANSCRIPTION_FAILED, f"{type(exc).__name__}: {str(exc)[:300]}")
            return self.fail(run, job.job_id, error, output_dir)

    def transcribe_job(self, run: JobRun, job: JobRequest, output_dir: S3Location, jlog: JobLogger) -> str:
        self.check_supported(job)
        if self.already_finished(job, output_dir):
            self.acknowledge(run, jlog)
            jlog.event("job_duplicate", output=output_dir.uri)
            return "duplicate"
        with self.store.fetched_audio(job.audio_location) as path:
            audio = load_audio(path, self.settings.max_audio_seconds)
        jlog.event("job_started", audio_seconds=round(audio.duration, 3))
        started = time.monotonic()
        transcription = self.transcribe(audio.samples, job.language)
        engine_seconds = time.monotonic() - started
        self.raise_if_cancelled(run)
        document = self.transcript_document(job, transcription, audio.duration, engine_seconds)
        self.store.write_results(output_dir, self.render(job, document, transcription),
                                 {"job_id": job.job_id, "message_id": run.message.message_id})
        self.acknowledge(run, jlog)
        self.metrics.transcribed(audio.duration, engine_seconds)
        jlog.event("job_succeeded", output=output_dir.uri, audio_seconds=round(audio.duration, 3),
                   engine_seconds=round(engine_seconds, 3), wall_seconds=round(time.monotonic() - run.started, 3),
                   real_time_factor=document["real_time_factor"], segments=len(transcription.segments))
        return "succeeded"

    def check_supported(self, job: JobRequest) -> None:
        info = self.engine.info
        if job.model is not None and job.model not in (info.model, self.settings.whisper_model):
            raise JobError(ErrorCode.MODEL_UNAVAILABLE, f"this worker serves model {info.model}, not {job.model}")
        if job.language not in (None, "en") and english_only(info.model):
            raise JobError(ErrorCode.UNSUPPORTED_LANGUAGE, f"model {info.model} is English-only, not {job.language}")

    def already_finished(self, job: JobRequest, output_dir: S3Location) -> bool:
        finished = self.store.finished_formats(output_dir)
        return finished is not None and finished >= {"json", *job.subtitle_formats}

    def raise_if_cancelled(self, run: JobRun) -> None:
        if run.cancelled.is_set():
            raise JobCancelled()

    def acknowledge(self, run: JobRun, jlog: JobLogger) -> None:
        """Delete the message: only after every output object is written, and never after a release.

        A failed delete is not a failed job: the message returns after its lease and is recognised as finished.
        """
        self.raise_if_cancelled(run)
        run.heartbeat.stop()
        try:
            self.queue.delete(run.message)
        except AWS_ERRORS as exc:
            jlog.event("delete_failed", logging.WARNING, error=repr(exc))

    def transcript_document(self, job: JobRequest, transcription: Transcription, duration: float,
                            engine_seconds: float) -> dict:
        info = self.engine.info
        return {
            "job_id": job.job_id,
            "audio": job.audio,
            "language": transcription.language,
            "model": info.model,
            "engine": info.engine,
            "device": info.device,
            "compute_type": info.compute_type,
            "batch_size": info.batch_size,
            "alignment": info.alignment,
            "diarization": info.diarization,
            "audio_duration": round(duration, 3),
            "processing_time": round(engine_seconds, 3),
            "real_time_factor": round(engine_seconds / duration, 4),
            "text": " ".join(s.text for s in transcription.segments if s.text),
            "segments": segment_dicts(transcription.segments),
        }

    def render(self, job: JobRequest, document: dict, transcription: Transcription) -> dict[str, str]:
        """Object name → body, transcript.json last among the results."""
        files = {f"transcript.{fmt}": RENDERERS[fmt](transcription.segments) for fmt in job.subtitle_formats}
        files[TRANSCRIPT] = to_json(document)
        return files

    # --- failures ---------------------------------------------------------------------------------

    def fail(self, run: JobRun, job_id: str | None, error: JobError, location: S3Location) -> str:
        """error.json, a log line, then the DLQ (permanent) or a delayed release (retryable)."""
        if run.cancelled.is_set():
            return "released"
        message = run.message
        written = self.write_error(location, job_id, error, message)
        log_event(log, "job_failed", logging.WARNING, job_id=job_id, message_id=message.message_id,
                  code=error.code.value, retryable=error.retryable, error=error.message,
                  error_object=written.uri if written else None)
        run.heartbeat.stop()  # no lease extension may follow a release or a move to the DLQ
        if error.retryable:
            delay = backoff_seconds(self.release_backoff, message.receive_count)
            self.queue.release(message, delay)
            return "failed_retryable"
        attributes = {"error_code": error.code.value, "job_id": job_id or "", "source_message_id": message.message_id,
                      "receive_count": str(message.receive_count)}
        if not self.move_to_dlq(message, attributes):
            self.queue.release(message, backoff_seconds(self.release_backoff, message.receive_count))
        return "failed_permanent"

    def move_to_dlq(self, message: QueueMessage, attributes: dict[str, str]) -> bool:
        try:
            return self.queue.dead_letter(message, attributes)
        except Exception as exc:  # the redrive policy still gets it there
            log_event(log, "dead_letter_failed", logging.WARNING, message_id=message.message_id, error=repr(exc))
            return False

    def write_error(self, location: S3Location, job_id: str | None, error: JobError,
                    message: QueueMessage) -> S3Location | None:
        """Write error.json at `location`, else under OUTPUT_URI when the job's own output is unusable."""
        document = error.document(job_id, message.message_id)
        fallback = default_error_dir(self.settings.output_uri, job_id, message.message_id)
        for candidate in dict.fromkeys([location, fallback]):
            try:
                self.store.write_error(candidate, document)
                return candidate.child("error.json")
            except JobError as exc:
                log_event(log, "error_object_failed", logging.WARNING, job_id=job_id, message_id=message.message_id,
                          error=exc.message)
        return None
