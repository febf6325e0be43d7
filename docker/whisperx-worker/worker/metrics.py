"""Prometheus metrics of one worker, in a registry of its own (several workers can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OUTCOMES = ("succeeded", "duplicate", "failed_permanent", "failed_retryable", "released")
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.jobs = Counter("spotscribe_jobs", "Jobs handled, by outcome", ["outcome"], registry=self.registry)
        for outcome in OUTCOMES:
            self.jobs.labels(outcome)
        self.job_duration = Histogram("spotscribe_job_duration_seconds", "Wall time per job, receive to delete",
                                      buckets=DURATION_BUCKETS, registry=self.registry)
        self.audio_seconds = Counter("spotscribe_audio_seconds", "Seconds of audio transcribed",
                                     registry=self.registry)
        self.real_time_factor = Histogram("spotscribe_real_time_factor", "Engine time / audio duration per job",
                                          buckets=RTF_BUCKETS, registry=self.registry)
        self.receive_errors = Counter("spotscribe_queue_receive_errors", "Failed SQS receive calls",
                                      registry=self.registry)
        self.ready = Gauge("spotscribe_worker_ready", "1 when the model is loaded and the worker takes jobs",
                           registry=self.registry)
        self.in_flight = Gauge("spotscribe_jobs_in_flight", "Jobs being processed now", registry=self.registry)

    def job_done(self, outcome: str, wall_seconds: float) -> None:
        self.jobs.labels(outcome).inc()
        self.job_duration.observe(wall_seconds)

    def transcribed(self, audio_seconds: float, engine_seconds: float) -> None:
        self.audio_seconds.inc(audio_seconds)
        self.real_time_factor.observe(engine_seconds / audio_seconds)
