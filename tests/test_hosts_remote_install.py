"""fleet.remote_install's decisions (skip / already / install) and host-lib.sh's step logging, without a host."""

from __future__ import annotations

import subprocess

import pytest

from fleet.remote_install import (
    ALREADY,
    DOCKER_HOST_STEPS,
    HOST_LIB,
    INSTALLED,
    SKIPPED,
    InstallReport,
    InstallStep,
    run_step,
)
from fleet.ssh import CommandResult, RemoteCommandFailed

STEP = InstallStep("thing", "a thing", "thing_present", "install_thing")
GPU_STEP = InstallStep("gpu-thing", "needs a GPU", "gpu_ready", "install_gpu", only_if="has_gpu",
                       skip_reason="no GPU here")


class FakeHost:
    """Answers host-lib calls from a table of function -> exit statuses (consumed in order)."""

    def __init__(self, **statuses: list[int]):
        self.statuses = statuses
        self.calls: list[tuple[str, str]] = []

    def call(self, step: str, phase: str, function: str, timeout_s: float) -> CommandResult:
        self.calls.append((phase, function))
        return CommandResult(function, self.statuses[function].pop(0), "", "", 0.0)


def test_present_step_is_only_checked():
    host = FakeHost(thing_present=[0])
    assert run_step(host, STEP).status == ALREADY
    assert host.calls == [("check", "thing_present")]


def test_missing_step_is_applied_then_verified():
    host = FakeHost(thing_present=[1, 0], install_thing=[0])
    assert run_step(host, STEP).status == INSTALLED
    assert [phase for phase, _ in host.calls] == ["check", "apply", "verify"]


def test_apply_that_does_not_take_fails_loudly():
    with pytest.raises(RemoteCommandFailed):
        run_step(FakeHost(thing_present=[1, 1], install_thing=[0]), STEP)
    with pytest.raises(RemoteCommandFailed):
        run_step(FakeHost(thing_present=[1], install_thing=[100]), STEP)


def test_step_without_its_precondition_is_skipped_with_the_reason():
    outcome = run_step(FakeHost(has_gpu=[1]), GPU_STEP)
    assert outcome.status == SKIPPED
    assert "no GPU here" in outcome.line()


def test_report_says_nothing_changed_when_nothing_was_installed():
    report = InstallReport([run_step(FakeHost(thing_present=[0]), STEP), run_step(FakeHost(has_gpu=[1]), GPU_STEP)])
    assert not report.changed
    assert "already installed — nothing changed" in report.summary()


def test_the_toolkit_step_only_runs_on_a_gpu_host():
    toolkit = next(s for s in DOCKER_HOST_STEPS if s.name == "nvidia-container-toolkit")
    assert toolkit.only_if == "has_nvidia_gpu"
    assert "skipped" in toolkit.skip_reason


def test_every_step_names_functions_the_host_library_defines():
    library = HOST_LIB.read_text()
    for step in DOCKER_HOST_STEPS:
        for function in filter(None, (step.check, step.apply, step.only_if)):
            assert f"\n{function}() {{" in library, function


def run_lib(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = f"set -euo pipefail\nsource {HOST_LIB}\nINSTALL_LOG={tmp_path}/install.log\n{body}\n"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)


def test_run_step_logs_the_call_and_keeps_its_exit_status(tmp_path):
    failed = run_lib(tmp_path, "broken() { echo trying; return 3; }\nrun_step demo check broken")
    assert failed.returncode == 3
    log = (tmp_path / "install.log").read_text()
    assert "[demo] check: broken" in log and "trying" in log and "[demo] check: exit 3" in log
    assert run_lib(tmp_path, "fine() { :; }\nrun_step demo apply fine").returncode == 0
