"""SRT, VTT and text renderings of a transcript."""

from __future__ import annotations

import srt
import webvtt

from worker.formats import Segment, timestamp, to_srt, to_txt, to_vtt

SEGMENTS = [Segment(0.0, 2.5, " Hello there. "), Segment(2.5, 2.5, "Zero length."), Segment(3.0, 4.0, "   "),
            Segment(3661.0, 3662.2049, "An hour later.", speaker="SPEAKER_01")]


def test_timestamps():
    assert timestamp(0, ",") == "00:00:00,000"
    assert timestamp(3661.2049, ".") == "01:01:01.205"
    assert timestamp(-1, ",") == "00:00:00,000"


def test_srt_parses_and_keeps_timing():
    cues = list(srt.parse(to_srt(SEGMENTS)))
    assert [c.content for c in cues] == ["Hello there.", "Zero length.", "[SPEAKER_01] An hour later."]
    assert [c.index for c in cues] == [1, 2, 3]
    assert cues[0].end.total_seconds() == 2.5
    assert all(c.end > c.start for c in cues)


def test_vtt_parses(tmp_path):
    cues = webvtt.from_string(to_vtt(SEGMENTS))
    assert [c.text for c in cues] == ["Hello there.", "Zero length.", "[SPEAKER_01] An hour later."]
    assert cues[2].start == "01:01:01.000"


def test_empty_transcript_renders_valid_files():
    assert to_srt([]) == ""
    assert to_vtt([]).startswith("WEBVTT")
    assert list(webvtt.from_string(to_vtt([]))) == []
    assert to_txt([]) == ""


def test_text_has_one_line_per_segment():
    assert to_txt(SEGMENTS) == "Hello there.\nZero length.\n[SPEAKER_01] An hour later.\n"
