"""Step 100: the deployment's prerequisites as checks, a green/red table, and `.docker-status`."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import paramiko
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from fleet.aws import Cloud
from fleet.envfile import atomic_write, read_env
from fleet.localcloud import Deployment

DRY_RUN_OK = "DryRunOperation"
# ImageId for the RunInstances permission probe; DryRun is checked before the image is looked up.
PROBE_IMAGE = os.environ.get("SPOTSCRIBE_PROBE_AMI", "ami-12c6146b")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return f"{exc.__class__.__name__}: {exc}"


def check_env_file(path: Path) -> CheckResult:
    if not path.exists():
        return CheckResult(".env", False, f"{path} does not exist", f"create {path} (see .env.example)")
    env = read_env(path)
    absent = [key for key in Deployment.ENV_KEYS if not env.get(key)]
    if absent:
        return CheckResult(".env", False, f"{path} lacks {', '.join(absent)}",
                           f"add {', '.join(k + '=…' for k in absent)} to {path}")
    return CheckResult(".env", True, f"{path}: {len(Deployment.ENV_KEYS)} required keys present")


def check_credentials(cloud: Cloud) -> CheckResult:
    try:
        identity = cloud.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        return CheckResult("AWS credentials", False, _aws_error(exc),
                           "configure credentials (aws configure, AWS_PROFILE, or an instance role)")
    return CheckResult("AWS credentials", True, f"account {identity['Account']} as {identity['Arn']}")


def check_queues(cloud: Cloud, deployment: Deployment) -> CheckResult:
    sqs = cloud.client("sqs")
    for key, url in (("SQS_QUEUE_URL", deployment.queue_url), ("SQS_DLQ_URL", deployment.dlq_url)):
        try:
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        except (ClientError, BotoCoreError) as exc:
            return CheckResult("SQS queues", False, f"{key} {url} unreachable ({_aws_error(exc)})",
                               f"create the queue or correct {key} in .env")
    return CheckResult("SQS queues", True, "job queue and DLQ reachable")


def check_buckets(cloud: Cloud, deployment: Deployment) -> CheckResult:
    s3 = cloud.client("s3")
    for key, bucket in (("S3_AUDIO_BUCKET", deployment.audio_bucket), ("S3_OUTPUT_BUCKET", deployment.output_bucket)):
        try:
            s3.head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            return CheckResult("S3 buckets", False, f"{key} {bucket} unreachable ({_aws_error(exc)})",
                               f"create the bucket or correct {key} in .env")
    return CheckResult("S3 buckets", True, "audio and transcript buckets reachable")


def check_ec2_permissions(cloud: Cloud) -> CheckResult:
    """DryRun RunInstances (g4dn.xlarge spot): 'would have succeeded' means the permission is there."""
    try:
        cloud.client("ec2").run_instances(
            DryRun=True, ImageId=PROBE_IMAGE, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1,
            InstanceMarketOptions={"MarketType": "spot"},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == DRY_RUN_OK:
            return CheckResult("EC2 permissions", True, "RunInstances (spot, g4dn.xlarge) allowed (DryRun)")
        return CheckResult("EC2 permissions", False, _aws_error(exc),
                           "grant ec2:RunInstances, ec2:CreateTags, ec2:DescribeInstances to this identity")
    except BotoCoreError as exc:
        return CheckResult("EC2 permissions", False, _aws_error(exc), "check the network path to EC2")
    return CheckResult("EC2 permissions", False, "DryRun call did not answer DryRunOperation",
                       "the endpoint ignored DryRun; check AWS_ENDPOINT_URL")


def check_ssh_key(cloud: Cloud, deployment: Deployment) -> CheckResult:
    path = Path(deployment.ssh_key_path).expanduser()
    if not path.exists():
        return CheckResult("SSH key", False, f"{path} does not exist",
                           f"save the private key of key pair {deployment.key_name} to {path} (chmod 600)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return CheckResult("SSH key", False, f"{path} is mode {mode:o}; ssh refuses keys others can read",
                           f"chmod 600 {path}")
    try:
        paramiko.RSAKey.from_private_key_file(str(path))
    except (paramiko.SSHException, OSError) as exc:
        return CheckResult("SSH key", False, f"{path} is not a usable RSA private key ({exc})",
                           "export the key pair's private key in PEM format")
    try:
        cloud.client("ec2").describe_key_pairs(KeyNames=[deployment.key_name])
    except (ClientError, BotoCoreError) as exc:
        return CheckResult("SSH key", False, f"key pair {deployment.key_name} not in EC2 ({_aws_error(exc)})",
                           f"import {path}'s public key as {deployment.key_name} or correct KEY_NAME")
    return CheckResult("SSH key", True, f"{path} loads; key pair {deployment.key_name} exists in EC2")


def check_prerequisites(env_file: Path, cloud: Cloud | None = None) -> list[CheckResult]:
    """Every prerequisite of the plan, in order; the AWS checks need a readable, complete `.env`."""
    env_result = check_env_file(Path(env_file))
    env = read_env(env_file) if Path(env_file).exists() else {}
    cloud = cloud or cloud_from_env(env)
    results = [env_result, check_credentials(cloud)]
    if not env_result.ok:
        skipped = ("SQS queues", "S3 buckets", "EC2 permissions", "SSH key")
        return results + [CheckResult(n, False, "not checked: .env incomplete", "fix .env first") for n in skipped]
    deployment = Deployment.from_env(env)
    checks: list[Callable[[], CheckResult]] = [
        lambda: check_queues(cloud, deployment),
        lambda: check_buckets(cloud, deployment),
        lambda: check_ec2_permissions(cloud),
        lambda: check_ssh_key(cloud, deployment),
    ]
    return results + [check() for check in checks]


def cloud_from_env(env: dict[str, str]) -> Cloud:
    """A Cloud for the deployment a `.env` describes (moto when it names AWS_ENDPOINT_URL)."""
    endpoint = env.get("AWS_ENDPOINT_URL") or None
    region = env.get("AWS_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return Cloud("local" if endpoint else "aws", region, env.get("RUN_ID", "prereqs"), endpoint)


def prerequisites_table(results: list[CheckResult]) -> Table:
    table = Table(title="spotscribe prerequisites (step 100)")
    for column in ("check", "result", "detail", "how to fix"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.name, "[green]✔ ok[/]" if r.ok else "[red]✘ failed[/]", r.detail, "" if r.ok else r.fix)
    return table


def write_docker_status(path: Path, results: list[CheckResult]) -> Path:
    """`.docker-status`: overall verdict, time, and one line per check."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"prerequisites={'PASSED' if all(r.ok for r in results) else 'FAILED'}",
        f"checked-at={stamp}",
    ]
    for r in results:
        key = r.name.lower().replace(" ", "-").lstrip(".")
        lines.append(f"check-{key}={'ok' if r.ok else 'failed'}: {' '.join(r.detail.split())}")
    atomic_write(Path(path), "\n".join(lines) + "\n")
    return Path(path)
