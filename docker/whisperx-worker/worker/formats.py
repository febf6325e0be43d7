"""Transcript renderings: SubRip (srt), WebVTT (vtt), plain text (txt) and the transcript document (json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

FORMATS = ("json", "srt", "vtt", "txt")
CONTENT_TYPES = {
    "json": "application/json",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    speaker: str | None = None


def timestamp(seconds: float, decimal_mark: str) -> str:
    """HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (VTT)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{millis:03d}"


def cue_text(segment: Segment) -> str:
    """A segment's text on one line, with its speaker when diarized."""
    text = " ".join(segment.text.split())
    return f"[{segment.speaker}] {text}" if segment.speaker else text


def spoken(segments: Iterable[Segment]) -> list[Segment]:
    """Segments that carry text (a cue without text is invalid in SRT)."""
    return [s for s in segments if s.text.strip()]


def cue_end(segment: Segment) -> float:
    """A cue ends after it starts, even when the engine reports a zero-length segment."""
    return max(segment.end, segment.start + 0.001)


def to_srt(segments: Iterable[Segment]) -> str:
    blocks = [
        f"{index}\n{timestamp(s.start, ',')} --> {timestamp(cue_end(s), ',')}\n{cue_text(s)}\n"
        for index, s in enumerate(spoken(segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: Iterable[Segment]) -> str:
    blocks = [f"{timestamp(s.start, '.')} --> {timestamp(cue_end(s), '.')}\n{cue_text(s)}\n" for s in spoken(segments)]
    return "\n".join(["WEBVTT\n", *blocks])


def to_txt(segments: Iterable[Segment]) -> str:
    return "".join(f"{cue_text(s)}\n" for s in spoken(segments))


def to_json(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def segment_dicts(segments: Iterable[Segment]) -> list[dict]:
    """Segments for transcript.json (speaker only when present)."""
    return [{k: v for k, v in asdict(s).items() if v is not None} for s in segments]


RENDERERS: dict[str, Callable[[Iterable[Segment]], str]] = {"srt": to_srt, "vtt": to_vtt, "txt": to_txt}
