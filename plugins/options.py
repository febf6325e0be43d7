"""Options --target, --gpu, --env, --status-file; the run id; the report header."""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass

import pytest

from fleet.gpu import GpuInfo, detect_gpu
from fleet.settings import Resolved, parse_bool, resolve

TARGETS = ("local", "aws")


@dataclass(frozen=True)
class SpotscribeConfig:
    target: Resolved
    gpu: Resolved
    env: Resolved
    status_file: Resolved
    run_id: str
    gpu_info: GpuInfo | None = None

    @property
    def is_local(self) -> bool:
        return self.target.value == "local"


CONFIG_KEY = pytest.StashKey[SpotscribeConfig]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("spotscribe")
    group.addoption("--target", choices=TARGETS, default=None,
                    help="where resources live: local (moto + local Docker, default) or aws [env SPOTSCRIBE_TARGET]")
    group.addoption("--gpu", action="store_true", default=None,
                    help="run GPU tests; an error on a machine without an NVIDIA GPU [env SPOTSCRIBE_GPU]")
    group.addoption("--env", dest="spotscribe_env", default=None, metavar="NAME",
                    help="deployment environment name (default dev) [env SPOTSCRIBE_ENV]")
    group.addoption("--status-file", default=None, metavar="PATH",
                    help="implementation status file [env SPOTSCRIBE_STATUS_FILE]")
    parser.addini("spotscribe_target", "default target (local|aws)")
    parser.addini("spotscribe_gpu", "run GPU tests (true|false)")
    parser.addini("spotscribe_env", "default deployment environment name")
    parser.addini("spotscribe_status_file", "default implementation status file")


def _check_target(value: str) -> str:
    if value not in TARGETS:
        raise pytest.UsageError(f"spotscribe: target must be one of {', '.join(TARGETS)}, not {value!r}")
    return value


def build_config(config: pytest.Config, environ=os.environ) -> SpotscribeConfig:
    """Resolve every option (CLI > environment > ini > default) and check --gpu against the machine."""
    opt = config.option
    target = resolve(opt.target, environ, "SPOTSCRIBE_TARGET", config.getini("spotscribe_target"),
                     "spotscribe_target", "local", _check_target)
    gpu = resolve(opt.gpu, environ, "SPOTSCRIBE_GPU", config.getini("spotscribe_gpu"), "spotscribe_gpu", False,
                  parse_bool)
    env = resolve(opt.spotscribe_env, environ, "SPOTSCRIBE_ENV", config.getini("spotscribe_env"), "spotscribe_env",
                  "dev")
    status = resolve(opt.status_file, environ, "SPOTSCRIBE_STATUS_FILE", config.getini("spotscribe_status_file"),
                     "spotscribe_status_file", ".docker-implementation-status")
    workerinput = getattr(config, "workerinput", None)
    run_id = workerinput["spotscribe_run_id"] if workerinput else environ.get("SPOTSCRIBE_RUN_ID") or uuid.uuid4().hex[:10]
    gpu_info = detect_gpu() if gpu.value else None
    if gpu.value and not gpu_info.available:
        raise pytest.UsageError(
            f"spotscribe: --gpu was asked for ({gpu.source}) but this machine has no usable NVIDIA GPU: "
            f"{gpu_info.reason}. Run without --gpu here, or on a GPU machine."
        )
    return SpotscribeConfig(target, gpu, env, status, run_id, gpu_info)


def put_venv_tools_on_path(environ=os.environ) -> None:
    """Tools pinned as Python packages (hadolint, shellcheck) live beside this interpreter; find them there."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in environ.get("PATH", "").split(os.pathsep):
        environ["PATH"] = bin_dir + os.pathsep + environ.get("PATH", "")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    put_venv_tools_on_path()
    config.stash[CONFIG_KEY] = build_config(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: every worker shares the controller's run id."""
    node.workerinput["spotscribe_run_id"] = node.config.stash[CONFIG_KEY].run_id


def pytest_report_header(config: pytest.Config) -> list[str]:
    from fleet.docker_engine import engine_summary

    cfg = config.stash[CONFIG_KEY]
    gpu = cfg.gpu_info or detect_gpu()
    return [
        f"spotscribe: target={cfg.target}, env={cfg.env}, run-id={cfg.run_id}",
        f"spotscribe: status file={cfg.status_file.value}",
        f"docker: {engine_summary()}",
        f"gpu: {gpu.describe()}; GPU tests {'on' if cfg.gpu.value else 'off'} (--gpu)",
    ]


@pytest.fixture(scope="session")
def spotscribe(pytestconfig: pytest.Config) -> SpotscribeConfig:
    """The resolved spotscribe options of this run."""
    return pytestconfig.stash[CONFIG_KEY]
