"""fleet.hosts against moto in-process: the launch request, SSH rules, teardown on failure, the sweeper, details."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from fleet.aws import RUN_ID_TAG, Cloud
from fleet.cli import main
from fleet.hosts import (
    IMDS_V2_REQUIRED,
    SPOT_ONE_TIME,
    CostsNotAllowed,
    HostDetails,
    LaunchSpec,
    MachineImage,
    UnsafeCidr,
    describe_instance,
    ensure_ssh_security_group,
    host_keys_from_console,
    launched_test_instance,
    require_cost_opt_in,
    run_instances_request,
    ssh_cidr,
    ssh_ingress,
    ssh_sources,
    sweep,
)
from fleet.localhosts import local_ubuntu_image

REGION = "us-east-1"
IMAGE = MachineImage("ami-12345678", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101", "/dev/sda1")


@pytest.fixture
def ec2(monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def run_tags(run_id: str = "run-1") -> list[dict]:
    return Cloud("local", REGION, run_id).tags()


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", " 0.0.0.0/0 ", "::/0", "203.0.113.7/8", "not-a-cidr", ""])
def test_ssh_cidr_refuses_the_world_and_non_networks(cidr):
    with pytest.raises(UnsafeCidr):
        ssh_cidr(cidr)


def test_ssh_ingress_is_port_22_from_one_network():
    (rule,) = ssh_ingress("203.0.113.7/32")
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 22, 22)
    assert [r["CidrIp"] for r in rule["IpRanges"]] == ["203.0.113.7/32"]
    assert "Ipv6Ranges" not in rule


def test_launch_request_is_one_time_spot_imdsv2_tagged_and_terminates_on_shutdown():
    spec = LaunchSpec(IMAGE, "key", "sg-1", user_data="#!/bin/bash\n")
    request = run_instances_request(spec, run_tags())
    assert request["InstanceType"] == "g4dn.xlarge"
    assert request["InstanceMarketOptions"] == SPOT_ONE_TIME
    assert SPOT_ONE_TIME["SpotOptions"]["SpotInstanceType"] == "one-time"
    assert request["MetadataOptions"] == IMDS_V2_REQUIRED
    assert IMDS_V2_REQUIRED["HttpTokens"] == "required" and IMDS_V2_REQUIRED["HttpPutResponseHopLimit"] == 2
    assert request["InstanceInitiatedShutdownBehavior"] == "terminate"
    kinds = {spec["ResourceType"] for spec in request["TagSpecifications"]}
    assert {"instance", "volume", "spot-instances-request"} <= kinds
    for tag_spec in request["TagSpecifications"]:
        assert {"Key": RUN_ID_TAG, "Value": "run-1"} in tag_spec["Tags"]
    assert request["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sda1"
    assert request["UserData"].startswith("#!/bin/bash")


def test_instance_and_group_are_gone_when_the_body_fails(ec2):
    image = local_ubuntu_image(ec2)
    with pytest.raises(RuntimeError, match="boom"):
        with launched_test_instance(ec2, image, "key", "127.0.0.1/32", run_tags(), "sg-test") as instance:
            assert describe_instance(ec2, instance.instance_id).state == "running"
            assert ssh_sources(ec2, instance.security_groups[0]) == [(22, 22, "127.0.0.1/32")]
            raise RuntimeError("boom")
    assert describe_instance(ec2, instance.instance_id).state in ("shutting-down", "terminated")
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["sg-test"]}])["SecurityGroups"]
    assert groups == []


def test_local_ubuntu_image_is_registered_once(ec2):
    assert local_ubuntu_image(ec2) == local_ubuntu_image(ec2)


def test_sweep_removes_only_the_runs_resources(ec2):
    image = local_ubuntu_image(ec2)
    mine = ec2.run_instances(**run_instances_request(LaunchSpec(image, "k", _group(ec2, "mine", "run-1")),
                                                     run_tags("run-1")))["Instances"][0]["InstanceId"]
    other = ec2.run_instances(**run_instances_request(LaunchSpec(image, "k", _group(ec2, "other", "run-2")),
                                                      run_tags("run-2")))["Instances"][0]["InstanceId"]
    report = sweep(ec2, "run-1", wait_s=30)
    assert report.instances == [mine]
    assert len(report.security_groups) == 1 and not report.left
    assert describe_instance(ec2, mine).state == "terminated"
    assert describe_instance(ec2, other).state == "running"
    assert sweep(ec2, "run-1", wait_s=30).instances == []  # idempotent


def _group(ec2, name: str, run_id: str) -> str:
    return ensure_ssh_security_group(ec2, name, "127.0.0.1/32", run_tags(run_id))


def test_security_group_is_reused_without_duplicating_rules(ec2):
    first = _group(ec2, "again", "run-1")
    assert _group(ec2, "again", "run-1") == first
    assert ssh_sources(ec2, first) == [(22, 22, "127.0.0.1/32")]


def test_launch_needs_the_cost_opt_in():
    with pytest.raises(CostsNotAllowed, match="SPOTSCRIBE_ALLOW_COSTS=1"):
        require_cost_opt_in({})
    with pytest.raises(CostsNotAllowed):
        require_cost_opt_in({"SPOTSCRIBE_ALLOW_COSTS": "0"})
    require_cost_opt_in({"SPOTSCRIBE_ALLOW_COSTS": "1"})


def test_details_round_trip(tmp_path):
    details = HostDetails("i-1", "g4dn.xlarge", "127.0.0.1", 2222, "ubuntu", "/k.pem", "local", REGION, "run-1",
                          "54.1.2.3")
    path = details.save(tmp_path / ".docker-gpu-test")
    assert HostDetails.load(path) == details
    assert "GPU_TEST_INSTANCE_ID=i-1" in path.read_text()
    assert details.ssh_command() == "ssh -i /k.pem -p 2222 ubuntu@127.0.0.1"


def test_host_keys_are_read_from_the_console_block():
    console = ("noise\n-----BEGIN SSH HOST KEY KEYS-----\necdsa-sha2-nistp256 AAAAE2 root@ip\n"
               "ssh-ed25519 AAAAC3 root@ip\n-----END SSH HOST KEY KEYS-----\nmore")
    assert host_keys_from_console(console) == ("ecdsa-sha2-nistp256 AAAAE2 root@ip", "ssh-ed25519 AAAAC3 root@ip")
    assert host_keys_from_console("booting…") == ()


def test_fleet_sweep_command_terminates_the_runs_instances(ec2, capsys):
    image = local_ubuntu_image(ec2)
    request = run_instances_request(LaunchSpec(image, "k", _group(ec2, "cli", "run-cli")), run_tags("run-cli"))
    instance_id = ec2.run_instances(**request)["Instances"][0]["InstanceId"]
    assert main(["sweep", "--run-id", "run-cli", "--region", REGION, "--wait", "30"]) == 0
    assert describe_instance(ec2, instance_id).state == "terminated"
    assert f"terminated 1 instance(s) {instance_id}" in capsys.readouterr().out


def test_fleet_hosts_launch_refuses_without_the_cost_opt_in(monkeypatch, capsys):
    monkeypatch.delenv("SPOTSCRIBE_ALLOW_COSTS", raising=False)
    assert main(["hosts", "launch", "--ssh-cidr", "203.0.113.7/32"]) == 2
    assert "SPOTSCRIBE_ALLOW_COSTS=1" in capsys.readouterr().err
