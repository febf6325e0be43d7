#!/usr/bin/env python3
"""Step 120: WhisperX on the GPU when one is visible, else on CPU (and it says so).

Prints `GPU Available: Yes|No`, the GPU/CUDA/cuDNN details, the transcript, a `RESULT {json}` line and
"WhisperX GPU test successful (device: ...)". --runs N repeats the transcription for a benchmark (real-time
factor per run, peak GPU memory); --require-gpu exits 2 when no GPU is visible.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

TRANSCRIBE_TEST = Path("/opt/whisperx/transcribe-test.py")  # from the WhisperX runtime image (step 111)


def load_step111():
    """The step 111 script as a module: one `transcribe` for CPU and GPU."""
    spec = importlib.util.spec_from_file_location("transcribe_test", TRANSCRIBE_TEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpu_details() -> dict:
    """What torch and nvidia-smi see; {'available': False, 'reason': ...} without a GPU."""
    import torch

    details = {"torch": torch.__version__, "cuda_build": torch.version.cuda, "available": torch.cuda.is_available()}
    if not details["available"]:
        details["reason"] = "torch.cuda.is_available() is False (no GPU passed in: run with --gpus all)"
        return details
    details.update(name=torch.cuda.get_device_name(0), cudnn=torch.backends.cudnn.version(),
                   device_count=torch.cuda.device_count(), nvidia_smi=nvidia_smi())
    return details


def nvidia_smi() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable: {exc}"
    return out.stdout.strip() if out.returncode == 0 else f"failed: {out.stderr.strip()[:200]}"


def benchmark(transcribe, audio: Path, device: str, runs: int, batch_size: int) -> dict:
    """`runs` transcriptions; the last run's summary plus per-run real-time factors and peak GPU memory."""
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    summaries = [transcribe(audio, device, batch_size=batch_size) for _ in range(runs)]
    factors = [s["real_time_factor"] for s in summaries]
    result = dict(summaries[-1], runs=runs, real_time_factors=factors,
                  real_time_factor_median=statistics.median(factors), machine=platform.node())
    if device == "cuda":
        result["gpu_peak_memory_bytes"] = torch.cuda.max_memory_allocated()
    return result


def main(argv: list[str] | None = None) -> int:
    step111 = load_step111()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("audio", nargs="?", type=Path, default=step111.HERE / "test-audio.wav")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--require-gpu", action="store_true")
    args = parser.parse_args(argv)
    details = gpu_details()
    print(f"GPU Available: {'Yes' if details['available'] else 'No'}")
    print("GPU details: " + json.dumps(details), flush=True)
    if not details["available"]:
        if args.require_gpu:
            print("ERROR: a GPU was required (--require-gpu) but none is visible", file=sys.stderr)
            return 2
        print("No GPU visible: running WhisperX on CPU", flush=True)
    device = "cuda" if details["available"] else "cpu"
    result = benchmark(step111.transcribe, args.audio, device, args.runs, args.batch_size)
    result["gpu"] = details
    print(f"Transcript: {result['text']}")
    print("RESULT " + json.dumps(result), flush=True)
    if not result["text"]:
        print("ERROR: WhisperX returned an empty transcript", file=sys.stderr)
        return 1
    print(f"WhisperX GPU test successful (device: {device}, compute type: {result['compute_type']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
