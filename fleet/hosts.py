"""Spot GPU test hosts on EC2 (step 121): one-time spot launch with IMDSv2 and SSH from one CIDR, wait, terminate,
sweep leftovers by run-id tag. The same calls go to moto on the local target and to a real account on aws."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator, Mapping

from botocore.exceptions import ClientError, WaiterError
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

from fleet.aws import RUN_ID_TAG
from fleet.envfile import read_env, write_env
from fleet.settings import parse_bool
from fleet.ssh import SshTarget

log = logging.getLogger(__name__)

UBUNTU_OWNER = "099720109477"  # Canonical
UBUNTU_2204_NAME = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
DEFAULT_INSTANCE_TYPE = "g4dn.xlarge"
SSH_USER = "ubuntu"
DETAILS_FILE = ".docker-gpu-test"
ALLOW_COSTS_ENV = "SPOTSCRIBE_ALLOW_COSTS"
SSH_CIDR_ENV = "SPOTSCRIBE_SSH_CIDR"
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")

SPOT_ONE_TIME = {"MarketType": "spot",
                 "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}
# IMDSv2 only; hop limit 2 so a container on the instance (one extra hop) still reaches it.
IMDS_V2_REQUIRED = {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"}


class UnsafeCidr(ValueError):
    """An SSH source range that is not one narrow, valid IPv4 network (0.0.0.0/0 is never allowed)."""


class CostsNotAllowed(RuntimeError):
    """Launching a real instance costs money and needs an explicit opt-in."""


def require_cost_opt_in(environ: Mapping[str, str] = os.environ) -> None:
    """Raise CostsNotAllowed unless SPOTSCRIBE_ALLOW_COSTS is set to a true value."""
    if not parse_bool(environ.get(ALLOW_COSTS_ENV, "")):
        raise CostsNotAllowed(f"launching a real EC2 instance costs money: set {ALLOW_COSTS_ENV}=1 to allow it")


def ssh_cidr(text: str) -> str:
    """The one IPv4 network SSH is opened to, normalised; refuses 0.0.0.0/0 and anything that is not a network."""
    try:
        network = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        raise UnsafeCidr(f"SSH source {text!r} is not an IPv4 network in CIDR form: {exc}") from exc
    if network.prefixlen == 0:
        raise UnsafeCidr(f"SSH source {text!r} opens SSH to the whole internet; give your own address, e.g. a.b.c.d/32")
    return str(network)


def ssh_ingress(cidr: str) -> list[dict]:
    """Security-group ingress: TCP 22 from `cidr` only."""
    return [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": ssh_cidr(cidr), "Description": "spotscribe SSH (one configured source)"}]}]


def tag_specifications(tags: list[dict], *resource_types: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": tags} for kind in resource_types]


@dataclass(frozen=True)
class MachineImage:
    image_id: str
    name: str
    root_device_name: str


def find_image(ec2, name_pattern: str = UBUNTU_2204_NAME, owners: tuple[str, ...] = (UBUNTU_OWNER,)) -> MachineImage:
    """The newest available image named like `name_pattern` from `owners`."""
    images = ec2.describe_images(Owners=list(owners), Filters=[
        {"Name": "name", "Values": [name_pattern]}, {"Name": "state", "Values": ["available"]}])["Images"]
    if not images:
        raise LookupError(f"no available image named {name_pattern!r} owned by {', '.join(owners)}")
    newest = max(images, key=lambda image: (image.get("CreationDate", ""), image["Name"]))
    return MachineImage(newest["ImageId"], newest["Name"], newest.get("RootDeviceName", "/dev/sda1"))


@dataclass(frozen=True)
class LaunchSpec:
    """What one test host is launched with."""

    image: MachineImage
    key_name: str
    security_group_id: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    user_data: str = ""
    name: str = "spotscribe-gpu-test"
    root_volume_gb: int = 100  # GPU worker images are large; the AMI's default 8 GB is not enough
    subnet_id: str | None = None
    instance_profile: str | None = None  # workers: ECR pull, SQS, S3, CloudWatch Logs through the instance role


def run_instances_request(spec: LaunchSpec, tags: list[dict]) -> dict:
    """RunInstances parameters: one-time spot, IMDSv2 required (hop limit 2), terminate on shutdown, tagged."""
    all_tags = [*tags, {"Key": "Name", "Value": spec.name}]
    request = {
        "ImageId": spec.image.image_id,
        "InstanceType": spec.instance_type,
        "KeyName": spec.key_name,
        "MinCount": 1,
        "MaxCount": 1,
        "SecurityGroupIds": [spec.security_group_id],
        "InstanceMarketOptions": SPOT_ONE_TIME,
        "MetadataOptions": IMDS_V2_REQUIRED,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "BlockDeviceMappings": [{"DeviceName": spec.image.root_device_name,
                                 "Ebs": {"VolumeSize": spec.root_volume_gb, "VolumeType": "gp3",
                                         "DeleteOnTermination": True}}],
        "TagSpecifications": tag_specifications(all_tags, "instance", "volume", "spot-instances-request"),
    }
    if spec.user_data:
        request["UserData"] = spec.user_data
    if spec.subnet_id:
        request["SubnetId"] = spec.subnet_id
    if spec.instance_profile:
        request["IamInstanceProfile"] = {"Name": spec.instance_profile}
    return request


def ensure_ssh_security_group(ec2, name: str, cidr: str, tags: list[dict], vpc_id: str | None = None) -> str:
    """A security group named `name` that admits SSH from `cidr` only; reused when it already exists."""
    ingress = ssh_ingress(cidr)
    extra = {"VpcId": vpc_id} if vpc_id else {}
    try:
        group_id = ec2.create_security_group(
            GroupName=name, Description="spotscribe test host: SSH from one source",
            TagSpecifications=tag_specifications(tags, "security-group"), **extra)["GroupId"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidGroup.Duplicate":
            raise
        group_id = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])[
            "SecurityGroups"][0]["GroupId"]
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ingress)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidPermission.Duplicate":
            raise
    return group_id


def ssh_sources(ec2, group_id: str) -> list[tuple[int, int, str]]:
    """(from port, to port, source) for every ingress rule of the group (IPv4 and IPv6)."""
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return [(rule.get("FromPort", -1), rule.get("ToPort", -1), source.get("CidrIp") or source.get("CidrIpv6"))
            for rule in group["IpPermissions"] for source in rule.get("IpRanges", []) + rule.get("Ipv6Ranges", [])]


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    instance_type: str
    public_ip: str | None
    private_ip: str | None
    lifecycle: str | None
    metadata_options: dict
    tags: dict[str, str]
    image_id: str
    security_groups: tuple[str, ...]

    @classmethod
    def from_api(cls, raw: dict) -> "Instance":
        return cls(raw["InstanceId"], raw["State"]["Name"], raw["InstanceType"], raw.get("PublicIpAddress"),
                   raw.get("PrivateIpAddress"), raw.get("InstanceLifecycle"), raw.get("MetadataOptions", {}),
                   {t["Key"]: t["Value"] for t in raw.get("Tags", [])}, raw["ImageId"],
                   tuple(g["GroupId"] for g in raw.get("SecurityGroups", [])))


def describe_instance(ec2, instance_id: str) -> Instance:
    return Instance.from_api(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0])


def launch_instance(ec2, spec: LaunchSpec, tags: list[dict]) -> Instance:
    instance = Instance.from_api(ec2.run_instances(**run_instances_request(spec, tags))["Instances"][0])
    log.info("launched %s (%s, spot one-time) from %s", instance.instance_id, spec.instance_type, spec.image.name)
    return instance


def wait_for_instances(ec2, waiter_name: str, instance_ids: list[str], timeout_s: float, delay_s: int = 5) -> None:
    """An EC2 waiter bounded by `timeout_s`; raises TimeoutError naming the instances."""
    attempts = max(1, int(timeout_s // delay_s))
    try:
        ec2.get_waiter(waiter_name).wait(InstanceIds=instance_ids,
                                         WaiterConfig={"Delay": delay_s, "MaxAttempts": attempts})
    except WaiterError as exc:
        raise TimeoutError(f"{', '.join(instance_ids)} not {waiter_name.removeprefix('instance_')} "
                           f"after {timeout_s:.0f} s: {exc}") from exc


def terminate_instances(ec2, instance_ids: list[str], wait_s: float = 0) -> list[str]:
    """Terminate (idempotent: already gone is fine); optionally wait until terminated. Returns what was asked."""
    if not instance_ids:
        return []
    try:
        ec2.terminate_instances(InstanceIds=instance_ids)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidInstanceID.NotFound":
            raise
        return instance_ids
    if wait_s:
        wait_for_instances(ec2, "instance_terminated", instance_ids, wait_s)
    log.info("terminated %s", ", ".join(instance_ids))
    return instance_ids


@contextmanager
def spot_instance(ec2, spec: LaunchSpec, tags: list[dict], running_timeout_s: float = 600,
                  terminate_wait_s: float = 0) -> Iterator[Instance]:
    """A launched instance, running; terminated on exit even when waiting for it failed."""
    instance = launch_instance(ec2, spec, tags)
    try:
        wait_for_instances(ec2, "instance_running", [instance.instance_id], running_timeout_s)
        yield describe_instance(ec2, instance.instance_id)
    finally:
        terminate_instances(ec2, [instance.instance_id], wait_s=terminate_wait_s)


@dataclass
class SweepReport:
    instances: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"terminated {len(self.instances)} instance(s) {' '.join(self.instances)}".rstrip(),
                 f"deleted {len(self.security_groups)} security group(s) {' '.join(self.security_groups)}".rstrip()]
        if self.left:
            parts.append(f"could not delete: {'; '.join(self.left)}")
        return "; ".join(parts)


def run_filter(run_id: str) -> dict:
    return {"Name": f"tag:{RUN_ID_TAG}", "Values": [run_id]}


def sweep(ec2, run_id: str, wait_s: float = 600) -> SweepReport:
    """Terminate every live instance and delete every security group tagged with `run_id`."""
    report = SweepReport()
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[run_filter(run_id), {"Name": "instance-state-name", "Values": list(LIVE_STATES)}])
    ids = [i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]]
    report.instances = terminate_instances(ec2, ids, wait_s=wait_s if ids else 0)
    for group in ec2.describe_security_groups(Filters=[run_filter(run_id)])["SecurityGroups"]:
        try:
            delete_security_group(ec2, group["GroupId"])
            report.security_groups.append(group["GroupId"])
        except ClientError as exc:
            report.left.append(f"{group['GroupId']}: {exc.response['Error']['Code']}")
    return report


@dataclass(frozen=True)
class HostDetails:
    """What `.docker-gpu-test` records: how to reach the test host."""

    instance_id: str
    instance_type: str
    host: str
    port: int
    user: str
    key_path: str
    target: str
    region: str
    run_id: str
    public_ip: str = ""

    ENV_PREFIX = "GPU_TEST_"

    def as_env(self) -> dict[str, str]:
        return {self.ENV_PREFIX + key.upper(): str(value) for key, value in asdict(self).items()}

    def save(self, path: Path = Path(DETAILS_FILE)) -> Path:
        return write_env(Path(path), self.as_env(), header="spot GPU test host (step 121); written by fleet.hosts")

    @classmethod
    def load(cls, path: Path = Path(DETAILS_FILE)) -> "HostDetails":
        env = read_env(Path(path))
        values = {f.name: env.get(cls.ENV_PREFIX + f.name.upper(), "") for f in fields(cls)}
        return cls(**{**values, "port": int(values["port"] or 22)})

    def ssh_command(self) -> str:
        return f"ssh -i {self.key_path} -p {self.port} {self.user}@{self.host}"


HOST_KEYS_BLOCK = re.compile(r"-----BEGIN SSH HOST KEY KEYS-----\s*(.*?)\s*-----END SSH HOST KEY KEYS-----", re.S)


def host_keys_from_console(console_output: str) -> tuple[str, ...]:
    """The host keys cloud-init prints to the console (`ssh-ed25519 AAAA… root@host` lines)."""
    match = HOST_KEYS_BLOCK.search(console_output or "")
    if not match:
        return ()
    return tuple(line.strip() for line in match.group(1).splitlines() if line.strip().startswith(("ssh-", "ecdsa-")))


def _still_attached(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "DependencyViolation"


@retry(retry=retry_if_exception(_still_attached), stop=stop_after_delay(120), wait=wait_fixed(5), reraise=True)
def delete_security_group(ec2, group_id: str) -> None:
    """Delete a security group; already gone is fine; retried while a just-terminated instance still holds it."""
    try:
        ec2.delete_security_group(GroupId=group_id)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidGroup.NotFound":
            raise


@contextmanager
def launched_test_instance(ec2, image: MachineImage, key_name: str, cidr: str, tags: list[dict], group_name: str,
                  instance_type: str = DEFAULT_INSTANCE_TYPE, user_data: str = "", running_timeout_s: float = 600,
                  terminate_wait_s: float = 0) -> Iterator[Instance]:
    """Security group (SSH from `cidr`) + running one-time spot instance; both gone on exit, whatever happened."""
    group_id = ensure_ssh_security_group(ec2, group_name, cidr, tags)
    try:
        spec = LaunchSpec(image, key_name, group_id, instance_type, user_data)
        with spot_instance(ec2, spec, tags, running_timeout_s, terminate_wait_s) as instance:
            yield instance
    finally:
        delete_security_group(ec2, group_id)


def wait_for_console_host_keys(ec2, instance_id: str, timeout_s: float = 240, delay_s: float = 10) -> tuple[str, ...]:
    """Host keys from the console output once cloud-init printed them; () after `timeout_s` (then SSH trusts on
    first use and logs the fingerprint)."""
    deadline = time.monotonic() + timeout_s
    while True:
        keys = host_keys_from_console(ec2.get_console_output(InstanceId=instance_id, Latest=True).get("Output", ""))
        if keys or time.monotonic() >= deadline:
            return keys
        time.sleep(delay_s)


@dataclass(frozen=True)
class TestHost:
    """A launched test host: its EC2 record, how to reach it, and (local target) the container playing it."""

    __test__ = False  # not a pytest test class

    instance: Instance
    details: HostDetails
    host_keys: tuple[str, ...] = ()
    standin: object | None = None  # fleet.localhosts.LocalHost on the local target

    def ssh_target(self) -> SshTarget:
        d = self.details
        return SshTarget(d.host, d.port, d.user, d.key_path, self.host_keys)


def ssh_group_name(run_id: str, purpose: str = "gpu-test") -> str:
    return f"spotscribe-{purpose}-ssh-{run_id}"


def launch_test_host(cloud, key_name: str, key_path: str, cidr: str, instance_type: str = DEFAULT_INSTANCE_TYPE,
                     user_data: str = "", running_timeout_s: float = 600,
                     instance_profile: str | None = None) -> TestHost:
    """A real spot instance (opt-in required), running, with its host keys when the console shows them. Left
    running: `retire_test_host` (or `fleet hosts terminate`) ends it; a failed launch cleans up after itself."""
    require_cost_opt_in()
    ec2 = cloud.client("ec2")
    group_id = ensure_ssh_security_group(ec2, ssh_group_name(cloud.run_id), cidr, cloud.tags())
    spec = LaunchSpec(find_image(ec2), key_name, group_id, instance_type, user_data,
                      instance_profile=instance_profile)
    instance_id = None
    try:
        instance_id = launch_instance(ec2, spec, cloud.tags()).instance_id
        wait_for_instances(ec2, "instance_running", [instance_id], running_timeout_s)
        instance = describe_instance(ec2, instance_id)
        details = HostDetails(instance_id, instance_type, instance.public_ip or "", 22, SSH_USER, key_path, "aws",
                              cloud.region, cloud.run_id, instance.public_ip or "")
        return TestHost(instance, details, wait_for_console_host_keys(ec2, instance_id))
    except BaseException:
        terminate_instances(ec2, [instance_id] if instance_id else [], wait_s=600)
        delete_security_group(ec2, group_id)
        raise


def retire_test_host(ec2, instance_id: str, wait_s: float = 600) -> None:
    """Terminate the instance, wait for it, then delete its security groups (idempotent)."""
    try:
        groups = describe_instance(ec2, instance_id).security_groups
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidInstanceID.NotFound":
            raise
        groups = ()
    terminate_instances(ec2, [instance_id], wait_s=wait_s)
    for group_id in groups:
        delete_security_group(ec2, group_id)


@contextmanager
def aws_test_host(cloud, key_name: str, key_path: str, cidr: str, instance_type: str = DEFAULT_INSTANCE_TYPE,
                  user_data: str = "", running_timeout_s: float = 600) -> Iterator[TestHost]:
    """`launch_test_host`, retired on exit whatever happened."""
    host = launch_test_host(cloud, key_name, key_path, cidr, instance_type, user_data, running_timeout_s)
    try:
        yield host
    finally:
        retire_test_host(cloud.client("ec2"), host.instance.instance_id)
