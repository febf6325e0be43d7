"""`fleet sweep`, `fleet hosts …` and `fleet userdata render`: the host steps (121, 122, 132) from a shell.

They act on the account boto3's default chain points at (AWS_ENDPOINT_URL included); launching needs
SPOTSCRIBE_ALLOW_COSTS=1 and SPOTSCRIBE_SSH_CIDR (or --ssh-cidr)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import uuid
from pathlib import Path
from typing import Callable

from fleet.aws import Cloud
from fleet.envfile import read_env
from fleet.hosts import (DEFAULT_INSTANCE_TYPE, DETAILS_FILE, SSH_CIDR_ENV, CostsNotAllowed, HostDetails, TestHost,
                         UnsafeCidr, launch_test_host, require_cost_opt_in, retire_test_host, ssh_cidr, sweep)
from fleet.localcloud import Deployment

USER_ERRORS = (CostsNotAllowed, UnsafeCidr, FileNotFoundError, KeyError)


def friendly(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command whose expected refusals (no opt-in, unsafe CIDR, missing file) print one line and exit 2."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except USER_ERRORS as exc:
            print(f"fleet: {exc}", file=sys.stderr)
            return 2

    return run


def cloud_for(args: argparse.Namespace, run_id: str | None = None) -> Cloud:
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return Cloud("aws", region, run_id or getattr(args, "run_id", None) or uuid.uuid4().hex[:10])


def cmd_sweep(args: argparse.Namespace) -> int:
    report = sweep(cloud_for(args).client("ec2"), args.run_id, wait_s=args.wait)
    print(f"run {args.run_id}: {report.describe()}")
    return 1 if report.left else 0


def cmd_hosts_launch(args: argparse.Namespace) -> int:
    require_cost_opt_in()
    deployment = Deployment.from_env(read_env(Path(args.env_file)))
    cloud = cloud_for(args)
    user_data = Path(args.user_data).read_text() if args.user_data else ""
    host: TestHost = launch_test_host(cloud, deployment.key_name, deployment.ssh_key_path,
                                      ssh_cidr(args.ssh_cidr or os.environ.get(SSH_CIDR_ENV, "")),
                                      args.instance_type, user_data, instance_profile=args.instance_profile)
    host.details.save(Path(args.details))
    print(f"{host.instance.instance_id} running (run {cloud.run_id}); details in {args.details}")
    print(f"  {host.details.ssh_command()}")
    print(f"  terminate: fleet hosts terminate --details {args.details}   (or: fleet sweep --run-id {cloud.run_id})")
    return 0


def cmd_hosts_terminate(args: argparse.Namespace) -> int:
    details = HostDetails.load(Path(args.details))
    retire_test_host(cloud_for(args, details.run_id).client("ec2"), details.instance_id)
    print(f"{details.instance_id} terminated")
    return 0


def _session(args: argparse.Namespace):
    from fleet.ssh import SshSession, SshTarget

    d = HostDetails.load(Path(args.details))
    return SshSession(SshTarget(d.host, d.port, d.user, d.key_path))


def cmd_hosts_check(args: argparse.Namespace) -> int:
    with _session(args) as ssh:
        result = ssh.run("uname -a && grep PRETTY_NAME /etc/os-release", timeout_s=30)
    print(result.transcript())
    return 0 if result.ok else 1


def cmd_hosts_install(args: argparse.Namespace) -> int:
    from fleet.remote_install import install_docker_host

    with _session(args) as ssh:
        report = install_docker_host(ssh, ssh.target.user, on_line=lambda line: print(f"  | {line}"))
    print(report.summary())
    return 0


def cmd_userdata_render(args: argparse.Namespace) -> int:
    from fleet.userdata import render, render_example, settings_for

    if args.example:
        text = render_example()
    else:
        if not args.image:
            sys.exit("fleet userdata render: --image is required (or --example)")
        deployment = Deployment.from_env(read_env(Path(args.env_file)))
        text = render(settings_for(deployment, args.image, idle_timeout_s=args.idle_timeout))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        Path(args.output).chmod(0o755)
        print(f"wrote {args.output} ({len(text)} bytes; EC2 allows 16384)")
    return 0


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register `sweep`, `hosts` and `userdata` on the `fleet` parser."""
    region = argparse.ArgumentParser(add_help=False)
    region.add_argument("--region", default=None, help="default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1")
    details = argparse.ArgumentParser(add_help=False)
    details.add_argument("--details", default=DETAILS_FILE, help=f"host details file (default {DETAILS_FILE})")

    swept = sub.add_parser("sweep", parents=[region], help="terminate instances / delete security groups of a run")
    swept.add_argument("--run-id", required=True)
    swept.add_argument("--wait", type=float, default=600, help="seconds to wait for termination (default 600)")
    swept.set_defaults(func=friendly(cmd_sweep))

    hosts = sub.add_parser("hosts", help="spot GPU test hosts (steps 121, 122)").add_subparsers(
        dest="hosts_command", required=True)
    launch = hosts.add_parser("launch", parents=[region, details],
                              help="launch a one-time spot test host (costs money: SPOTSCRIBE_ALLOW_COSTS=1)")
    launch.add_argument("--env-file", default=".env")
    launch.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    launch.add_argument("--ssh-cidr", default=None, help=f"the one source SSH is opened to (or {SSH_CIDR_ENV})")
    launch.add_argument("--user-data", default=None, help="a user data file (e.g. scripts/docker-worker-userdata.sh)")
    launch.add_argument("--instance-profile", default=None,
                        help="IAM instance profile (workers: ECR pull, SQS, S3, CloudWatch Logs)")
    launch.set_defaults(func=friendly(cmd_hosts_launch))
    hosts.add_parser("terminate", parents=[region, details], help="terminate the host in the details file"
                     ).set_defaults(func=friendly(cmd_hosts_terminate))
    hosts.add_parser("check", parents=[details], help="SSH in and run uname"
                     ).set_defaults(func=friendly(cmd_hosts_check))
    hosts.add_parser("install", parents=[details], help="install Docker (+ NVIDIA toolkit on a GPU) over SSH"
                     ).set_defaults(func=friendly(cmd_hosts_install))

    userdata = sub.add_parser("userdata", help="worker user data (step 132)").add_subparsers(
        dest="userdata_command", required=True)
    render = userdata.add_parser("render", help="render scripts/docker-worker-userdata.sh from the template")
    render.add_argument("--env-file", default=".env")
    render.add_argument("--image", default=None, help="worker image URI, e.g. <acct>.dkr.ecr.<region>.amazonaws.com/…")
    render.add_argument("--idle-timeout", type=int, default=900, help="seconds without work before power-off")
    render.add_argument("--example", action="store_true", help="the committed example (placeholder deployment)")
    render.add_argument("--output", default="scripts/docker-worker-userdata.sh", help="'-' for stdout")
    render.set_defaults(func=friendly(cmd_userdata_render))
