"""Step 111: the CPU WhisperX image transcribes its test audio (and fresh speech) offline, read-only, non-root,
prints "WhisperX CPU test successful", and the transcript's word error rate is under the threshold."""

from __future__ import annotations

import pytest

from fixtures.images import result_line, word_error_rate
from fleet.images import repo_path

HERE = repo_path("docker", "whisperx-base")
SUCCESS = "WhisperX CPU test successful"
MAX_WER = 0.4  # Whisper tiny.en int8 on espeak-ng's voice: measured 0.2-0.3 here
FRESH_TEXT = "Please send the meeting notes to the whole team before Friday afternoon."


def run_transcription(containers, image: str, *args: str, volumes: dict | None = None) -> tuple[int, str]:
    """Run the image as production would (read-only root, tmpfs scratch, no capabilities) and offline."""
    container = containers.run(image, command=list(args), read_only=True, tmpfs={"/tmp": "size=512m"},
                               cap_drop=["ALL"], network_mode="none", volumes=volumes or {})
    code = container.wait(timeout=600)["StatusCode"]
    return code, container.logs().decode(errors="replace")


@pytest.mark.smoke
def test_transcribes_the_built_in_test_audio(whisperx_cpu_image, catalog_images, containers, step):
    step.log("image", catalog_images.chain("whisperx-cpu"))
    code, output = run_transcription(containers, whisperx_cpu_image.tag)
    step.log("transcribe-test.py", output[-4000:])
    assert code == 0, output[-3000:]
    assert SUCCESS in output.splitlines()
    result = result_line(output)
    reference = (HERE / "test-audio.txt").read_text()
    wer = word_error_rate(reference, result["text"])
    assert wer <= MAX_WER, f"WER {wer:.2f} > {MAX_WER}: {result['text']!r}"
    assert result["device"] == "cpu" and result["engine"] == "whisperx"
    step.note(f"WhisperX CPU test successful; WER {wer:.2f}; RTF {result['real_time_factor']} (first, cold call on a short clip)")


def test_transcribes_fresh_speech_mounted_read_only(whisperx_cpu_image, containers, speech, step):
    """Speech synthesized now (not baked into the image) is transcribed too: the output is no canned answer."""
    spoken = speech.speak(FRESH_TEXT)
    code, output = run_transcription(containers, whisperx_cpu_image.tag, "/audio/fresh.wav",
                                     volumes={str(spoken.path): {"bind": "/audio/fresh.wav", "mode": "ro"}})
    assert code == 0, output[-3000:]
    text = result_line(output)["text"]
    step.log("fresh speech", f"said: {FRESH_TEXT}\nheard: {text}")
    assert word_error_rate(FRESH_TEXT, text) <= MAX_WER
    assert word_error_rate((HERE / "test-audio.txt").read_text(), text) > 0.8, "the built-in sentence came back"


def test_missing_audio_is_a_clear_error(whisperx_cpu_image, containers):
    code, output = run_transcription(containers, whisperx_cpu_image.tag, "/audio/none.wav")
    assert code == 2
    assert "no audio file at /audio/none.wav" in output
    assert SUCCESS not in output


def test_runs_as_non_root(whisperx_cpu_image, docker_engine):
    assert docker_engine.images.get(whisperx_cpu_image.tag).attrs["Config"]["User"] == "10001"
