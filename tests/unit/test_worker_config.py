"""Worker configuration: YAML defaults, environment overrides, errors that name the setting."""

from __future__ import annotations

import pytest

from worker.config import BUNDLED_MODEL, ConfigError, load_settings
from worker.transcriber import resolve_device

REQUIRED = {"QUEUE_URL": "http://127.0.0.1:5000/123456789012/jobs", "OUTPUT_URI": "s3://results-bucket/out"}
CONTRACT_NAMES = ["QUEUE_URL", "OUTPUT_URI", "TRANSCRIBE_ENGINE", "WHISPER_MODEL", "COMPUTE_TYPE", "BATCH_SIZE",
                  "DEVICE", "VISIBILITY_TIMEOUT", "IDLE_TIMEOUT", "HEALTH_PORT", "IMDS_ENDPOINT"]


@pytest.fixture
def env(monkeypatch):
    for name in [*CONTRACT_NAMES, "WORKER_CONFIG", "LOG_LEVEL", "STOP_GRACE_SECONDS"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.mark.smoke
def test_defaults_come_from_the_shipped_yaml(env):
    settings = load_settings()
    assert settings.transcribe_engine == "whisperx"
    assert settings.whisper_model == BUNDLED_MODEL and settings.model_name == "tiny.en"
    assert settings.health_port == 8080 and settings.receive_wait_seconds == 20
    assert settings.output_uri == "s3://results-bucket/out/"
    assert 0 < settings.stop_grace_seconds < 10  # inside docker stop's 10 s


def test_environment_overrides_yaml_and_cli_overrides_environment(env):
    env.setenv("TRANSCRIBE_ENGINE", "faster-whisper")
    env.setenv("BATCH_SIZE", "16")
    env.setenv("IDLE_TIMEOUT", "600")
    settings = load_settings(idle_timeout=30)
    assert (settings.transcribe_engine, settings.batch_size, settings.idle_timeout) == ("faster-whisper", 16, 30)


def test_config_file_location_is_settable(env, tmp_path):
    config = tmp_path / "worker.yaml"
    config.write_text("batch_size: 3\nhealth_port: 9999\n")
    env.setenv("WORKER_CONFIG", str(config))
    settings = load_settings()
    assert (settings.batch_size, settings.health_port) == (3, 9999)


@pytest.mark.parametrize("name, value", [
    ("BATCH_SIZE", "0"), ("BATCH_SIZE", "many"), ("TRANSCRIBE_ENGINE", "whisper.cpp"), ("DEVICE", "tpu"),
    ("COMPUTE_TYPE", "float8"), ("HEALTH_PORT", "70000"), ("VISIBILITY_TIMEOUT", "0"), ("IDLE_TIMEOUT", "-1"),
    ("OUTPUT_URI", "/local/dir"), ("QUEUE_URL", "jobs"), ("IMDS_ENDPOINT", "169.254.169.254"),
    ("WHISPER_MODEL", "/no/such/model/dir"), ("IDLE_ACTION", "shutdown 'unbalanced"),
])
def test_invalid_setting_is_named(env, name, value):
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert name in str(caught.value)


def test_missing_required_settings_are_named(env):
    env.delenv("QUEUE_URL")
    env.delenv("OUTPUT_URI")
    with pytest.raises(ConfigError, match="QUEUE_URL.*OUTPUT_URI|OUTPUT_URI.*QUEUE_URL"):
        load_settings()


def test_unknown_yaml_key_is_named(env, tmp_path):
    config = tmp_path / "worker.yaml"
    config.write_text("batch_sise: 3\n")
    env.setenv("WORKER_CONFIG", str(config))
    with pytest.raises(ConfigError, match="BATCH_SISE"):
        load_settings()


def test_missing_config_file_is_named(env, tmp_path):
    env.setenv("WORKER_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="WORKER_CONFIG"):
        load_settings()


def test_heartbeat_must_beat_the_visibility_timeout(env):
    with pytest.raises(ConfigError, match="HEARTBEAT_INTERVAL"):
        load_settings(visibility_timeout=10, heartbeat_interval=10)
    assert load_settings(visibility_timeout=9).heartbeat_seconds == 3


@pytest.mark.parametrize("device, compute, gpus, expected", [
    ("auto", "auto", 1, ("cuda", "float16")),
    ("auto", "auto", 0, ("cpu", "int8")),
    ("cpu", "auto", 1, ("cpu", "int8")),
    ("cuda", "int8_float16", 1, ("cuda", "int8_float16")),
    ("auto", "float32", 0, ("cpu", "float32")),
])
def test_device_and_compute_type(device, compute, gpus, expected):
    assert resolve_device(device, compute, cuda_count=lambda: gpus) == expected
