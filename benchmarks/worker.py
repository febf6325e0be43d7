"""Worker benchmark: `python -m benchmarks.worker [--jobs 20] [--engines faster-whisper whisperx]`.

For each engine, on the same ≥ 60 s of espeak-ng speech, through a local moto server: model load time, time to
ready, real-time factor and per-job pipeline overhead (wall time minus engine time), p50/p95 over N jobs.
Writes reports/benchmarks/worker-<timestamp>.json and a PNG plot beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REPORT_DIR = REPO_ROOT / "reports" / "benchmarks"
sys.path.insert(0, str(REPO_ROOT / "docker" / "whisperx-worker"))


class EventRecorder(logging.Handler):
    """Keeps the structured records the worker logs (event name → list of field dicts)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.events: list[tuple[float, dict]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "event"):
            self.events.append((time.monotonic(), dict(record.__dict__)))

    def named(self, event: str) -> list[dict]:
        return [fields for _, fields in self.events if fields["event"] == event]

    def first_time(self, event: str) -> float:
        return next(at for at, fields in self.events if fields["event"] == event)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 4), "p95": round(percentile(values, 95), 4),
            "mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    versions = {}
    for package in ("ctranslate2", "faster-whisper", "whisperx", "torch", "moto", "boto3"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"hostname": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu, "cpu_count": os.cpu_count(), "memory_gib": round(memory, 1), "packages": versions}


def bench_engine(engine: str, jobs: int, cloud, deployment, audio_path: Path, recorder: EventRecorder) -> dict:
    """Start a worker that loads `engine` itself, run `jobs` jobs through moto, and summarise its log events."""
    from fixtures.worker import JobClient, WorkerThread, base_settings, create_job_queues
    from fleet.waiting import wait_until
    from worker.transcriber import load_engine

    client = JobClient(cloud.client("s3"), create_job_queues(cloud.client("sqs"), visibility_timeout=300),
                       deployment.audio_bucket, deployment.output_bucket)
    settings = base_settings(client.queues.queue_url, client.output_uri, transcribe_engine=engine,
                             max_audio_bytes=1 << 30, max_audio_seconds=4 * 3600.0)
    recorder.events.clear()
    worker = WorkerThread(settings, cloud.client("sqs"), cloud.client("s3"), load_engine)
    started = time.monotonic()
    worker.start(ready_timeout=600)
    time_to_ready = recorder.first_time("worker_ready") - started
    audio = client.upload(audio_path, f"{client.prefix}/benchmark.wav")
    for index in range(jobs):
        client.send({"job_id": f"bench-{engine}-{index:03d}", "audio": audio, "language": "en"})
    wait_until(lambda: len(recorder.named("job_succeeded")) >= jobs, 60 + jobs * 120, f"{jobs} {engine} jobs")
    worker.stop()
    loaded = recorder.named("model_loaded")[0]
    done = recorder.named("job_succeeded")
    engine_seconds = [e["engine_seconds"] for e in done]
    wall = [e["wall_seconds"] for e in done]
    overhead = [w - e for w, e in zip(wall, engine_seconds)]
    return {
        "engine": engine, "model": loaded["model"], "device": loaded["device"],
        "compute_type": loaded["compute_type"], "batch_size": settings.batch_size if engine == "whisperx" else None,
        "beam_size": settings.beam_size, "jobs": len(done), "audio_seconds": done[0]["audio_seconds"],
        "model_load_seconds": loaded["load_seconds"], "warm_up_seconds": loaded["warm_up_seconds"],
        "time_to_ready_seconds": round(time_to_ready, 3),
        "real_time_factor": summary([e / done[0]["audio_seconds"] for e in engine_seconds]),
        "engine_seconds": summary(engine_seconds), "wall_seconds": summary(wall),
        "overhead_seconds": summary(overhead),
        "overhead_fraction_of_wall": summary([o / w for o, w in zip(overhead, wall)]),
    }


def plot(results: list[dict], path: Path) -> Path | None:
    """Side-by-side bars: RTF p50 and overhead p50/p95 per engine."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = [r["engine"] for r in results]
    figure, (rtf_axis, overhead_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    rtf_axis.bar(names, [r["real_time_factor"]["p50"] for r in results])
    rtf_axis.set_title("real-time factor (p50)")
    positions = range(len(names))
    overhead_axis.bar([p - 0.2 for p in positions], [r["overhead_seconds"]["p50"] for r in results], 0.4, label="p50")
    overhead_axis.bar([p + 0.2 for p in positions], [r["overhead_seconds"]["p95"] for r in results], 0.4, label="p95")
    overhead_axis.set_xticks(list(positions), names)
    overhead_axis.set_title("pipeline overhead per job (s)")
    overhead_axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs per engine (default 20)")
    parser.add_argument("--engines", nargs="+", default=["faster-whisper", "whisperx"])
    parser.add_argument("--passage", default="passage-60s", help="test-data/reference/<name>.txt to speak")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help=f"report folder (default {REPORT_DIR})")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from fixtures.audio import SpeechSynth
    from fleet.aws import Cloud
    from fleet.localcloud import MotoServer, provision_deployment

    recorder = EventRecorder()
    logging.getLogger("worker").addHandler(recorder)
    logging.getLogger("worker").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as scratch, MotoServer() as server:
        cloud = Cloud("local", "us-east-1", f"bench{int(time.time())}", server.endpoint_url)
        deployment = provision_deployment(cloud, "bench", key_dir=Path(scratch) / "keys")
        speech = SpeechSynth(Path(scratch)).passage(args.passage)
        audio = {"passage": args.passage, "seconds": round(speech.duration, 3), "source": "espeak-ng"}
        results = [bench_engine(engine, args.jobs, cloud, deployment, speech.path, recorder)
                   for engine in args.engines]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / f"worker-{stamp}.json"
    plot_path = plot(results, args.out / f"worker-{stamp}.png")
    report = {"benchmark": "worker", "created": stamp, "machine": machine(), "audio": audio,
              "jobs_per_engine": args.jobs, "plot": plot_path.name if plot_path else None, "results": results}
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(f"{r['engine']:>15}: load {r['model_load_seconds']:.2f} s, ready {r['time_to_ready_seconds']:.2f} s, "
              f"RTF p50 {r['real_time_factor']['p50']:.3f}, overhead p50 {r['overhead_seconds']['p50']:.3f} s / "
              f"p95 {r['overhead_seconds']['p95']:.3f} s ({100 * r['overhead_fraction_of_wall']['p50']:.1f} % of wall)")
    print(f"report: {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
