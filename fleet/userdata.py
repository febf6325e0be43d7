"""Worker user data (step 132): `scripts/docker-worker-userdata.sh` rendered from a template with a deployment's
settings. Settings become quoted shell assignments; the host library is inlined; nothing else is substituted."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from fleet.localcloud import Deployment

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE = TEMPLATES / "docker-worker-userdata.sh.tmpl"
HOST_LIB = TEMPLATES / "host-lib.sh"
SETTINGS_MARK = "# @@SETTINGS@@"
HOST_LIB_MARK = "# @@HOST_LIB@@"
EXAMPLE_OUTPUT = Path(__file__).resolve().parent.parent / "scripts" / "docker-worker-userdata.sh"
LOCAL_CREDENTIALS = ("testing", "testing")  # moto's dummy keys; never a real secret


@dataclass(frozen=True)
class UserDataSettings:
    """Everything the user data needs to know; `worker_env` is what the worker container gets."""

    worker_image: str
    region: str
    queue_url: str
    dlq_url: str
    output_uri: str
    log_group: str
    transcribe_engine: str = "faster-whisper"
    idle_timeout_s: int = 900
    idle_shutdown: bool = True
    health_port: int = 8080
    imds_endpoint: str = "http://169.254.169.254"
    endpoint_url: str = ""  # local cloud only; empty on AWS
    ready_timeout_s: int = 600
    worker_name: str = "spotscribe-worker"
    max_restarts: int = 5
    log_max_size: str = "10m"
    log_max_file: int = 3
    extra_worker_env: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return bool(self.endpoint_url)

    def worker_env(self) -> dict[str, str]:
        env = {
            "QUEUE_URL": self.queue_url, "DLQ_URL": self.dlq_url, "OUTPUT_URI": self.output_uri,
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
            "TRANSCRIBE_ENGINE": self.transcribe_engine, "HEALTH_PORT": str(self.health_port),
            "IMDS_ENDPOINT": self.imds_endpoint, "IDLE_TIMEOUT": str(self.idle_timeout_s),
        }
        if self.is_local:
            env.update(AWS_ENDPOINT_URL=self.endpoint_url, AWS_ACCESS_KEY_ID=LOCAL_CREDENTIALS[0],
                       AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIALS[1])
        return {**env, **self.extra_worker_env}

    def shell_settings(self) -> dict[str, str]:
        local_keys = LOCAL_CREDENTIALS if self.is_local else ("", "")
        return {
            "WORKER_IMAGE": self.worker_image, "AWS_REGION": self.region, "LOG_GROUP": self.log_group,
            "HEALTH_PORT": str(self.health_port), "IMDS_ENDPOINT": self.imds_endpoint,
            "IDLE_SHUTDOWN": "1" if self.idle_shutdown else "0", "READY_TIMEOUT": str(self.ready_timeout_s),
            "WORKER_NAME": self.worker_name, "WORKER_MAX_RESTARTS": str(self.max_restarts),
            "LOG_MAX_SIZE": self.log_max_size, "LOG_MAX_FILE": str(self.log_max_file),
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "LOCAL_AWS_ACCESS_KEY_ID": local_keys[0], "LOCAL_AWS_SECRET_ACCESS_KEY": local_keys[1],
        }


def log_group_name(environment: str) -> str:
    return f"/spotscribe/{environment}/workers"


def settings_for(deployment: Deployment, worker_image: str, **overrides) -> UserDataSettings:
    """Settings from a deployment (`.env`): its queue, DLQ, output bucket, region and local endpoint, if any."""
    values = dict(worker_image=worker_image, region=deployment.region, queue_url=deployment.queue_url,
                  dlq_url=deployment.dlq_url, output_uri=f"s3://{deployment.output_bucket}/transcripts/",
                  log_group=log_group_name(deployment.environment), endpoint_url=deployment.endpoint_url or "")
    return UserDataSettings(**{**values, **overrides})


def settings_block(settings: UserDataSettings) -> str:
    lines = [f"{key}={shlex.quote(value)}" for key, value in settings.shell_settings().items()]
    lines.append("WORKER_ENVIRONMENT=(")
    lines += [f"  {shlex.quote(f'{key}={value}')}" for key, value in settings.worker_env().items()]
    lines.append(")")
    return "\n".join(lines)


def render(settings: UserDataSettings, template: Path = TEMPLATE) -> str:
    """The user data script for `settings`."""
    text = template.read_text()
    for mark in (SETTINGS_MARK, HOST_LIB_MARK):
        if text.count(mark) != 1:
            raise ValueError(f"{template}: expected exactly one {mark!r}")
    return text.replace(SETTINGS_MARK, settings_block(settings)).replace(HOST_LIB_MARK, HOST_LIB.read_text().strip())


EXAMPLE_DEPLOYMENT = Deployment(
    environment="dev", region="us-east-1",
    queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/whisper-dev-jobs",
    dlq_url="https://sqs.us-east-1.amazonaws.com/123456789012/whisper-dev-dlq",
    audio_bucket="spotscribe-dev-audio", output_bucket="spotscribe-dev-transcripts", ecr_repo="whisper-docker-dev",
    key_name="spotscribe-dev", ssh_key_path="~/.ssh/spotscribe-dev.pem")
EXAMPLE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/whisper-docker-dev:latest"


def render_example() -> str:
    """What `scripts/docker-worker-userdata.sh` holds: the user data for an example AWS deployment."""
    return render(settings_for(EXAMPLE_DEPLOYMENT, EXAMPLE_IMAGE))
