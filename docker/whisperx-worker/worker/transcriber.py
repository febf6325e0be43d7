"""One engine interface, two engines (WhisperX: batched + VAD; faster-whisper), and device/compute-type choice."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from worker.audio import SAMPLE_RATE
from worker.config import WorkerSettings
from worker.formats import Segment
from worker.logger import log_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcription:
    segments: tuple[Segment, ...]
    language: str


@dataclass(frozen=True)
class EngineInfo:
    """What /ready and transcript.json report about the loaded model (no paths, no settings)."""

    engine: str
    model: str
    device: str
    compute_type: str
    batch_size: int | None = None
    gpu: dict = field(default_factory=dict)
    alignment: bool = False
    diarization: bool = False

    def public(self) -> dict:
        info = {"engine": self.engine, "model": self.model, "device": self.device, "compute_type": self.compute_type,
                "alignment": self.alignment, "diarization": self.diarization}
        if self.batch_size is not None:
            info["batch_size"] = self.batch_size
        return {**info, **({"gpu": self.gpu} if self.gpu else {})}


class Engine(ABC):
    """A loaded model: transcribes 16 kHz mono float32 samples."""

    info: EngineInfo

    @abstractmethod
    def transcribe(self, samples: np.ndarray, language: str | None) -> Transcription: ...

    def warm_up(self) -> None:
        """One short transcription, so the first job pays no first-call costs."""
        self.transcribe(warm_up_samples(), language=None)


def warm_up_samples(seconds: float = 1.0) -> np.ndarray:
    """Quiet noise: exercises the whole pipeline without needing shipped audio."""
    return np.random.default_rng(0).normal(0.0, 0.01, int(seconds * SAMPLE_RATE)).astype(np.float32)


def english_only(model_name: str) -> bool:
    return model_name.endswith(".en")


def cpu_threads(setting: int) -> int:
    return setting or os.cpu_count() or 1


class FasterWhisperEngine(Engine):
    def __init__(self, model, info: EngineInfo, beam_size: int):
        self.model, self.info, self.beam_size = model, info, beam_size

    def transcribe(self, samples: np.ndarray, language: str | None) -> Transcription:
        pieces, details = self.model.transcribe(samples, language=language, beam_size=self.beam_size)
        segments = tuple(Segment(round(s.start, 3), round(s.end, 3), s.text.strip()) for s in pieces)
        return Transcription(segments, details.language)


class WhisperXEngine(Engine):
    def __init__(self, pipeline, info: EngineInfo, batch_size: int, aligner: Callable | None = None,
                 diarizer: Callable | None = None):
        self.pipeline, self.info, self.batch_size = pipeline, info, batch_size
        self.aligner, self.diarizer = aligner, diarizer

    def transcribe(self, samples: np.ndarray, language: str | None) -> Transcription:
        result = self.pipeline.transcribe(samples, batch_size=self.batch_size, language=language)
        if self.aligner and result["segments"]:
            result = {**self.aligner(result["segments"], samples, result["language"]), "language": result["language"]}
        if self.diarizer and result["segments"]:
            result = {**self.diarizer(samples, result), "language": result["language"]}
        segments = tuple(Segment(round(s["start"], 3), round(s["end"], 3), s["text"].strip(), s.get("speaker"))
                         for s in result["segments"])
        return Transcription(segments, result["language"])

    def warm_up(self) -> None:
        """The VAD finds no speech in noise, so the decoder is warmed directly as well."""
        super().warm_up()
        language = self.pipeline.preset_language
        pieces, _ = self.pipeline.model.transcribe(warm_up_samples(), beam_size=1, language=language)
        list(pieces)


def cuda_device_count() -> int:
    import ctranslate2

    return ctranslate2.get_cuda_device_count()


def resolve_device(device: str, compute_type: str,
                   cuda_count: Callable[[], int] = cuda_device_count) -> tuple[str, str]:
    """auto → CUDA (float16) when a GPU is visible, else CPU (int8); explicit choices are kept."""
    if device == "auto":
        device = "cuda" if cuda_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def gpu_details(device: str) -> dict:
    """GPU name and cuDNN version for /ready (empty on CPU)."""
    if device != "cuda":
        return {}
    try:
        import torch

        return {"name": torch.cuda.get_device_name(0), "cudnn_version": torch.backends.cudnn.version()}
    except (ImportError, RuntimeError, AssertionError):
        return {"name": nvidia_smi_name(), "cudnn_version": None}


def nvidia_smi_name() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    run = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                         text=True, timeout=10, check=False)
    return run.stdout.splitlines()[0].strip() if run.returncode == 0 and run.stdout else None


def load_faster_whisper(settings: WorkerSettings, device: str, compute_type: str) -> Engine:
    from faster_whisper import WhisperModel

    model = WhisperModel(settings.model_path, device=device, compute_type=compute_type,
                         cpu_threads=cpu_threads(settings.cpu_threads))
    info = EngineInfo("faster-whisper", settings.model_name, device, compute_type, gpu=gpu_details(device))
    return FasterWhisperEngine(model, info, settings.beam_size)


def load_whisperx(settings: WorkerSettings, device: str, compute_type: str) -> Engine:
    import whisperx

    language = "en" if english_only(settings.model_name) else None
    pipeline = whisperx.load_model(settings.model_path, device, compute_type=compute_type, language=language,
                                   vad_method=settings.vad_method, threads=cpu_threads(settings.cpu_threads),
                                   asr_options={"beam_size": settings.beam_size})
    aligner = load_aligner(settings, device, language)
    diarizer = load_diarizer(settings, device)
    info = EngineInfo("whisperx", settings.model_name, device, compute_type, settings.batch_size, gpu_details(device),
                      alignment=aligner is not None, diarization=diarizer is not None)
    return WhisperXEngine(pipeline, info, settings.batch_size, aligner, diarizer)


def load_aligner(settings: WorkerSettings, device: str, language: str | None) -> Callable | None:
    """Word alignment when its model is in ALIGN_MODEL_DIR (never downloaded); None, logged, otherwise."""
    if settings.align_model_dir is None or not any(settings.align_model_dir.glob("*")) or language is None:
        log_event(log, "alignment_skipped", reason="no local alignment model (ALIGN_MODEL_DIR) for a fixed language")
        return None
    import whisperx

    try:
        model, metadata = whisperx.load_align_model(language, device, model_dir=str(settings.align_model_dir),
                                                    model_cache_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        log_event(log, "alignment_skipped", logging.WARNING, reason=f"alignment model not loadable: {exc}")
        return None
    return lambda segments, samples, _language: whisperx.align(segments, model, metadata, samples, device)


def load_diarizer(settings: WorkerSettings, device: str) -> Callable | None:
    """Speaker diarization when a local pyannote pipeline is configured (DIARIZE_MODEL); None, logged, otherwise."""
    if settings.diarize_model is None or not settings.diarize_model.exists():
        log_event(log, "diarization_skipped", reason="no local diarization model (DIARIZE_MODEL)")
        return None
    import whisperx
    from whisperx.diarize import DiarizationPipeline

    try:
        pipeline = DiarizationPipeline(model_name=str(settings.diarize_model), device=device)
    except (OSError, ValueError, RuntimeError) as exc:
        log_event(log, "diarization_skipped", logging.WARNING, reason=f"diarization model not loadable: {exc}")
        return None
    return lambda samples, result: whisperx.assign_word_speakers(pipeline(samples), result)


def import_engine_libraries(engine: str) -> None:
    """Import what the engine needs up front (main() then configures logging over the libraries' own)."""
    import faster_whisper  # noqa: F401

    if engine == "whisperx":
        import whisperx.asr  # noqa: F401
        import whisperx.vads  # noqa: F401


LOADERS: dict[str, Callable[[WorkerSettings, str, str], Engine]] = {
    "faster-whisper": load_faster_whisper,
    "whisperx": load_whisperx,
}


def load_engine(settings: WorkerSettings) -> Engine:
    """Load the configured engine once (the worker calls this before reporting ready)."""
    device, compute_type = resolve_device(settings.device, settings.compute_type)
    return LOADERS[settings.transcribe_engine](settings, device, compute_type)
