"""Make a host a Docker (GPU) host over SSH, idempotently (step 122): every step looks first, acts only when
needed, and logs to the host's install log; the NVIDIA toolkit step runs only where the host has a GPU."""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from fleet.ssh import CommandResult, SshSession

log = logging.getLogger(__name__)

HOST_LIB = Path(__file__).with_name("templates") / "host-lib.sh"
INSTALL_LOG = "/var/log/spotscribe-install.log"
INSTALLED, ALREADY, SKIPPED = "installed", "already installed", "skipped"


@dataclass(frozen=True)
class InstallStep:
    """`check` (a host-lib function) succeeds when the step is already in place; `apply` puts it in place.
    With `only_if`, the step runs only where that function succeeds, else it is skipped with `skip_reason`."""

    name: str
    title: str
    check: str
    apply: str
    only_if: str | None = None
    skip_reason: str = ""
    timeout_s: float = 900


DOCKER_HOST_STEPS = (
    InstallStep("docker-engine", "Docker Engine (docker.io, containerd)", "docker_installed", "install_docker"),
    InstallStep("docker-daemon", "dockerd running", "docker_running", "start_docker", timeout_s=120),
    InstallStep("docker-group", "SSH user in the docker group", "user_in_docker_group", "add_user_to_docker_group",
                timeout_s=30),
    InstallStep("nvidia-container-toolkit", "NVIDIA Container Toolkit + docker runtime", "nvidia_toolkit_configured",
                "install_nvidia_toolkit", only_if="has_nvidia_gpu",
                skip_reason="no NVIDIA GPU on this host (nvidia-smi absent or finds no device): "
                            "NVIDIA Container Toolkit step skipped"),
)


@dataclass(frozen=True)
class StepOutcome:
    step: InstallStep
    status: str
    seconds: float
    transcript: str

    def line(self) -> str:
        detail = f" — {self.step.skip_reason}" if self.status == SKIPPED else ""
        return f"{self.step.name}: {self.status} ({self.seconds:.1f} s){detail}"


@dataclass
class InstallReport:
    outcomes: list[StepOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(o.status == INSTALLED for o in self.outcomes)

    def status_of(self, name: str) -> str:
        return next(o.status for o in self.outcomes if o.step.name == name)

    def summary(self) -> str:
        verdict = (f"changed the host in {self.seconds:.1f} s" if self.changed
                   else f"already installed — nothing changed ({self.seconds:.1f} s)")
        return "\n".join([*(o.line() for o in self.outcomes), verdict])

    def transcript(self) -> str:
        return "\n\n".join(f"### {o.step.name} ({o.step.title}): {o.status}\n{o.transcript}" for o in self.outcomes)


class HostLibrary:
    """Runs host-lib.sh functions as root over an SSH session (the library travels on stdin, nothing is left)."""

    def __init__(self, session: SshSession, host_user: str, on_line: Callable[[str], None] | None = None):
        self.session, self.host_user, self.on_line = session, host_user, on_line
        self.source = HOST_LIB.read_text()

    def call(self, step: str, phase: str, function: str, timeout_s: float) -> CommandResult:
        script = "\n".join([self.source, f"HOST_USER={shlex.quote(self.host_user)}",
                            f"INSTALL_LOG={shlex.quote(INSTALL_LOG)}", f"run_step {step} {phase} {function}", ""])
        return self.session.run("sudo -n bash -s", timeout_s=timeout_s, stdin=script.encode(), on_line=self.on_line)


def run_step(lib: HostLibrary, step: InstallStep) -> StepOutcome:
    """Check, then apply only if needed; a failing apply raises with its output."""
    started = time.monotonic()
    results: list[CommandResult] = []
    if step.only_if:
        results.append(lib.call(step.name, "precondition", step.only_if, 60))
        if not results[-1].ok:
            return _outcome(step, SKIPPED, started, results)
    results.append(lib.call(step.name, "check", step.check, 60))
    if results[-1].ok:
        return _outcome(step, ALREADY, started, results)
    results.append(lib.call(step.name, "apply", step.apply, step.timeout_s).check())
    results.append(lib.call(step.name, "verify", step.check, 60).check())
    return _outcome(step, INSTALLED, started, results)


def _outcome(step: InstallStep, status: str, started: float, results: Iterable[CommandResult]) -> StepOutcome:
    outcome = StepOutcome(step, status, time.monotonic() - started, "\n".join(r.transcript() for r in results))
    log.info("install step %s", outcome.line())
    return outcome


def install_docker_host(session: SshSession, host_user: str, steps: Iterable[InstallStep] = DOCKER_HOST_STEPS,
                        on_line: Callable[[str], None] | None = None) -> InstallReport:
    """Run every step in order over `session`; the report says what changed."""
    lib = HostLibrary(session, host_user, on_line)
    started = time.monotonic()
    report = InstallReport()
    for step in steps:
        report.outcomes.append(run_step(lib, step))
    report.seconds = time.monotonic() - started
    return report


def read_install_log(session: SshSession) -> str:
    return session.run(f"sudo -n cat {INSTALL_LOG}", timeout_s=30, check=True).stdout


def image_present(session: SshSession, image: str) -> bool:
    return session.run(f"sudo -n docker image inspect {shlex.quote(image)}", timeout_s=30).ok


def load_image(session: SshSession, image_tar_chunks: Iterable[bytes], timeout_s: float = 300) -> CommandResult:
    """`docker save … | ssh host docker load`: stream an image archive into the host's engine."""
    return session.run("sudo -n docker load", timeout_s=timeout_s, stdin=image_tar_chunks, check=True)


def run_test_container(session: SshSession, image: str, command: str, gpu: bool = False,
                       timeout_s: float = 180) -> CommandResult:
    """`docker run --rm [--gpus all] image command` on the host."""
    gpus = "--gpus all " if gpu else ""
    return session.run(f"sudo -n docker run --rm {gpus}{shlex.quote(image)} {command}", timeout_s=timeout_s)
