"""Step 122: over SSH only, Docker Engine (and, on a GPU host, the NVIDIA Container Toolkit) is installed
idempotently, every step logged under logs/step-122/; a container runs inside the host; a second run changes
nothing and says so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fleet.images import LOCAL_BASE
from fleet.remote_install import (
    ALREADY,
    INSTALLED,
    SKIPPED,
    image_present,
    install_docker_host,
    load_image,
    read_install_log,
    run_test_container,
)
from fleet.ssh import SshSession

log = logging.getLogger(__name__)
AWS_TEST_IMAGE = "ubuntu:22.04"
CUDA_TEST_IMAGE = "nvidia/cuda:12.2.0-base-ubuntu22.04"  # the plan's `docker run --gpus all <cuda base> nvidia-smi`


@pytest.fixture(scope="module")
def ssh(gpu_test_host):
    with SshSession(gpu_test_host.ssh_target()) as session:
        yield session


def host_fingerprint(ssh: SshSession) -> str:
    """What an installer run must leave alone: installed packages, dockerd's pid, the docker group."""
    return ssh.run("dpkg-query -W | sha256sum; pgrep -xo dockerd; getent group docker", timeout_s=60).stdout


@pytest.fixture(scope="module")
def first_install(ssh, gpu_test_host, pytestconfig):
    report = install_docker_host(ssh, gpu_test_host.details.user, on_line=lambda line: log.info("[host] %s", line))
    yield report
    remote_log = Path(pytestconfig.rootpath) / "logs" / "step-122" / "remote-install.log"
    remote_log.parent.mkdir(parents=True, exist_ok=True)
    remote_log.write_text(read_install_log(ssh))


@pytest.fixture(scope="module")
def test_image(ssh, cloud, docker_engine, first_install) -> str:
    """An image inside the host's engine. Local: the base image, streamed `docker save | ssh docker load`."""
    if not cloud.is_local:
        ssh.run(f"sudo -n docker pull {AWS_TEST_IMAGE}", timeout_s=300, check=True)
        return AWS_TEST_IMAGE
    if not image_present(ssh, LOCAL_BASE):
        load_image(ssh, docker_engine.images.get(LOCAL_BASE).save(named=True))
    return LOCAL_BASE


@pytest.mark.smoke
def test_first_run_installs_docker_engine(first_install, cloud, step):
    step.log("installer (first run)", first_install.summary() + "\n\n" + first_install.transcript())
    if cloud.is_local:  # the host container starts without docker, like a fresh instance
        assert first_install.status_of("docker-engine") == INSTALLED
    assert first_install.status_of("docker-daemon") in (INSTALLED, ALREADY)
    step.note(f"install time (first run, over SSH): {first_install.seconds:.1f} s")


def test_dockerd_answers_inside_the_host(ssh, first_install, step):
    info = ssh.run("sudo -n docker info --format '{{.ServerVersion}} {{.Driver}} {{.CgroupDriver}}'", timeout_s=30,
                   check=True)
    step.log("docker info", info.transcript())
    version, driver, _cgroup = info.stdout.split()
    assert version and driver in ("overlay2", "vfs", "fuse-overlayfs")


def test_ssh_user_may_use_docker(ssh, first_install, gpu_test_host):
    groups = ssh.run(f"id -nG {gpu_test_host.details.user}", timeout_s=30, check=True).stdout.split()
    assert "docker" in groups


def test_nvidia_toolkit_only_where_there_is_a_gpu(ssh, first_install, step):
    has_gpu = ssh.run("nvidia-smi -L", timeout_s=30).ok
    toolkit = next(o for o in first_install.outcomes if o.step.name == "nvidia-container-toolkit")
    step.log("nvidia-container-toolkit step", toolkit.line() + "\n" + toolkit.transcript)
    if has_gpu:
        assert toolkit.status in (INSTALLED, ALREADY)
        assert "nvidia" in ssh.run("sudo -n docker info --format '{{json .Runtimes}}'", timeout_s=30).stdout
    else:
        assert toolkit.status == SKIPPED
        assert "no NVIDIA GPU on this host" in toolkit.line()
        step.note("NVIDIA Container Toolkit: skipped (host has no GPU)")


def test_a_container_runs_inside_the_host(ssh, test_image, step):
    result = run_test_container(ssh, test_image, "sh -c 'echo hello from a container inside the host; "
                                                 "grep PRETTY_NAME /etc/os-release'")
    step.log(f"docker run --rm {test_image}", result.transcript())
    assert result.ok, result.transcript()
    assert "hello from a container inside the host" in result.stdout


def test_second_run_changes_nothing_and_says_so(ssh, first_install, gpu_test_host, step):
    before = host_fingerprint(ssh)
    again = install_docker_host(ssh, gpu_test_host.details.user)
    step.log("installer (second run)", again.summary())
    assert not again.changed
    assert {o.status for o in again.outcomes} <= {ALREADY, SKIPPED}
    assert "already installed — nothing changed" in again.summary()
    assert host_fingerprint(ssh) == before


def test_every_step_is_in_the_host_install_log(ssh, first_install, step):
    text = read_install_log(ssh)
    step.log("host install log (/var/log/spotscribe-install.log)", text)
    for outcome in first_install.outcomes:
        assert f"[{outcome.step.name}]" in text


@pytest.mark.aws
def test_gpu_visible_in_a_container(ssh, first_install, step):
    """The plan's check, on a real GPU host: `docker run --rm --gpus all <cuda base> nvidia-smi`."""
    if first_install.status_of("nvidia-container-toolkit") == SKIPPED:
        pytest.skip("the instance reports no NVIDIA GPU (nvidia-smi absent): use a GPU AMI or install the driver")
    result = run_test_container(ssh, CUDA_TEST_IMAGE, "nvidia-smi", gpu=True, timeout_s=600)
    step.log("docker run --gpus all nvidia-smi", result.transcript())
    assert result.ok and "NVIDIA-SMI" in result.stdout
