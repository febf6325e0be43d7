"""Step 121: a one-time spot g4dn.xlarge from Ubuntu 22.04 — IMDSv2 required, SSH from one source, tagged —
is running, reachable over SSH (paramiko runs real commands), and its details are in `.docker-gpu-test`."""

from __future__ import annotations

import stat
from pathlib import Path

import paramiko
import pytest

from fleet.aws import RUN_ID_TAG
from fleet.hosts import DETAILS_FILE, UBUNTU_2204_NAME, HostDetails, describe_instance, ssh_sources
from fleet.ssh import SshSession, SshTarget, UnknownHostKey


@pytest.fixture(scope="module")
def instance(gpu_test_host, cloud):
    """The instance as EC2 describes it now."""
    return describe_instance(cloud.client("ec2"), gpu_test_host.instance.instance_id)


@pytest.mark.smoke
def test_instance_is_a_running_one_time_spot_g4dn(instance, step):
    step.log("instance", repr(instance))
    assert instance.state == "running"
    assert instance.instance_type == "g4dn.xlarge"
    assert instance.lifecycle == "spot"


def test_instance_requires_imdsv2_with_hop_limit_2(instance):
    assert instance.metadata_options["HttpTokens"] == "required"
    assert instance.metadata_options["HttpPutResponseHopLimit"] == 2
    assert instance.metadata_options.get("HttpEndpoint", "enabled") == "enabled"


def test_instance_boots_ubuntu_2204_and_carries_the_run_id(instance, cloud):
    image = cloud.client("ec2").describe_images(ImageIds=[instance.image_id])["Images"][0]
    prefix = UBUNTU_2204_NAME.removesuffix("*")
    assert image["Name"].startswith(prefix), image["Name"]
    assert instance.tags[RUN_ID_TAG] == cloud.run_id


def test_ssh_is_open_to_one_source_only(instance, cloud, step):
    (group,) = instance.security_groups
    sources = ssh_sources(cloud.client("ec2"), group)
    step.log("ingress rules", "\n".join(map(str, sources)))
    assert len(sources) == 1
    from_port, to_port, cidr = sources[0]
    assert (from_port, to_port) == (22, 22)
    assert cidr not in ("0.0.0.0/0", "::/0")
    if cloud.is_local:
        assert cidr == "127.0.0.1/32"


def test_details_saved_to_docker_gpu_test(gpu_test_host, pytestconfig, step):
    path = Path(pytestconfig.rootpath) / DETAILS_FILE
    step.log(DETAILS_FILE, path.read_text())
    saved = HostDetails.load(path)
    assert saved == gpu_test_host.details
    assert saved.instance_id == gpu_test_host.instance.instance_id
    assert stat.S_IMODE(Path(saved.key_path).stat().st_mode) == 0o600


@pytest.mark.smoke
def test_ssh_runs_real_commands(gpu_test_host, step):
    with SshSession(gpu_test_host.ssh_target()) as ssh:
        uname = ssh.run("uname -a", timeout_s=30, check=True)
        release = ssh.run("cat /etc/os-release", timeout_s=30, check=True)
        root = ssh.run("sudo -n id -u", timeout_s=30, check=True)
    step.log("ssh uname -a", uname.transcript())
    step.log("ssh cat /etc/os-release", release.transcript())
    assert uname.stdout.startswith("Linux ")
    assert "ID=" in release.stdout
    assert root.stdout.strip() == "0", "the SSH user needs passwordless sudo for the remote install"
    pretty = next((line[len("PRETTY_NAME="):] for line in release.stdout.splitlines()
                   if line.startswith("PRETTY_NAME=")), "")
    step.note(f"SSH ok: {gpu_test_host.details.ssh_command()} ({pretty})")


def test_ssh_refuses_a_host_key_that_is_not_pinned(gpu_test_host):
    """The host-key check can fail: pin some other key and the connection is refused, not retried."""
    other = paramiko.RSAKey.generate(2048)
    target = gpu_test_host.ssh_target()
    impostor = SshTarget(target.host, target.port, target.user, target.key_path,
                         (f"{other.get_name()} {other.get_base64()}",))
    with pytest.raises(UnknownHostKey):
        SshSession(impostor, ready_timeout_s=5).connect()


def test_ssh_refuses_a_key_that_is_not_the_instance_key(gpu_test_host, tmp_path):
    stranger = tmp_path / "stranger.pem"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(stranger))
    target = gpu_test_host.ssh_target()
    with pytest.raises(paramiko.AuthenticationException):
        SshSession(SshTarget(target.host, target.port, target.user, str(stranger), target.host_keys),
                   ready_timeout_s=3).connect()


@pytest.mark.aws
def test_aws_host_keys_come_from_the_console_output(gpu_test_host):
    """On EC2, host keys are pinned from what cloud-init prints to the console (no trust on first use)."""
    assert gpu_test_host.host_keys, "no SSH host keys in the console output yet; SSH fell back to first use"
