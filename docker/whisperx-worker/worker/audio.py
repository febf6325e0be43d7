"""Audio decoding to 16 kHz mono float32 (PyAV), with the duration limit checked before decoding."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.jobs import ErrorCode, JobError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def probe_duration(path: Path) -> float | None:
    """The container's declared duration in seconds (None when it declares none); raises on no audio stream."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise JobError(ErrorCode.AUDIO_UNDECODABLE, "the file has no audio stream")
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return container.duration / 1_000_000 if container.duration is not None else None


def check_duration(seconds: float | None, max_seconds: float) -> None:
    if seconds is not None and seconds > max_seconds:
        raise JobError(ErrorCode.AUDIO_TOO_LONG, f"audio lasts {seconds:.1f} s, the limit is {max_seconds:.0f} s")


def load_audio(path: Path, max_seconds: float) -> Audio:
    """Decode `path`; permanent JobErrors for undecodable, empty or over-long audio."""
    import av
    from faster_whisper.audio import decode_audio

    try:
        check_duration(probe_duration(path), max_seconds)
        samples = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__  # never the local scratch path
        raise JobError(ErrorCode.AUDIO_UNDECODABLE, f"cannot decode audio: {reason}") from None
    audio = Audio(np.asarray(samples, dtype=np.float32))
    if audio.duration == 0:
        raise JobError(ErrorCode.AUDIO_EMPTY, "the audio decodes to no samples")
    check_duration(audio.duration, max_seconds)
    return audio
