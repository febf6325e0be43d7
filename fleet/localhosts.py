"""Local stand-ins for EC2 instances: a "host container" (sshd, its own Docker engine, no docker preinstalled),
unix-socket forwards that give its 127.0.0.1 the local cloud's ports, and a loopback IMDSv2 (DESIGN §3)."""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import paramiko
from docker.models.containers import Container

import docker
from fleet.containers import remove_quietly, wait_for_log
from fleet.docker_engine import RUN_ID_LABEL
from fleet.hosts import (
    SSH_USER,
    UBUNTU_2204_NAME,
    HostDetails,
    MachineImage,
    TestHost,
    launched_test_instance,
    ssh_group_name,
)
from fleet.images import build_cached, local_buildargs, repo_path
from fleet.ssh import CommandResult, SshSession, SshTarget
from fleet.waiting import wait_until

log = logging.getLogger(__name__)

HOST_CONTEXT = repo_path("docker", "host")
SOCKET_MOUNT = "/run/spotscribe/sockets"
INSTANCE_LABEL = "spotscribe.instance-id"
READY_LINE = "host ready"
# Docker-in-Docker on this kernel (DESIGN §3): everything but CAP_SYS_RESOURCE, which --privileged would demand.
DIND_OPTIONS = {
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    "device_cgroup_rules": ["a *:* rwm"],
    "cgroupns": "host",
}
LOCAL_SSH_CIDR = "127.0.0.1/32"  # the published sshd port listens on loopback only
LOCAL_IMAGE_NAME = UBUNTU_2204_NAME.replace("*", "spotscribe-local-standin")


def build_host_image(client: docker.DockerClient) -> str:
    """The host container image (cached by its context digest)."""
    return build_cached("host", HOST_CONTEXT, "Dockerfile", local_buildargs(), client=client).tag


def local_ubuntu_image(ec2) -> MachineImage:
    """An 'Ubuntu 22.04' image record in moto (moto ships none), so launches use the same lookup as on AWS."""
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [LOCAL_IMAGE_NAME]}])["Images"]
    image_id = images[0]["ImageId"] if images else ec2.register_image(
        Name=LOCAL_IMAGE_NAME, Architecture="x86_64", RootDeviceName="/dev/sda1", VirtualizationType="hvm",
        Description="local stand-in: Ubuntu 22.04 record; a host container plays the machine")["ImageId"]
    return MachineImage(image_id, LOCAL_IMAGE_NAME, "/dev/sda1")


def public_key_line(private_key_path: str, comment: str = "spotscribe") -> str:
    """`ssh-rsa AAAA… comment` for the private key file (what EC2 puts in authorized_keys)."""
    key = paramiko.RSAKey.from_private_key_file(private_key_path)
    return f"{key.get_name()} {key.get_base64()} {comment}"


class SocketForwards(AbstractContextManager):
    """One socat per name: `<dir>/<name>.sock` -> 127.0.0.1:<port> on this machine. The host container mounts
    `<dir>` and forwards its own 127.0.0.1:<port> into the socket, so a name has the same address on both."""

    def __init__(self, ports: dict[str, int], ready_timeout_s: float = 10.0):
        self.ports = dict(ports)
        self.ready_timeout_s = ready_timeout_s
        self.directory: Path | None = None
        self._processes: list[subprocess.Popen] = []

    def start(self) -> "SocketForwards":
        self.directory = Path(tempfile.mkdtemp(prefix="spotscribe-sockets-"))
        try:
            for name, port in self.ports.items():
                self._processes.append(subprocess.Popen(
                    ["socat", f"UNIX-LISTEN:{self.directory / name}.sock,fork,unlink-early", f"TCP:127.0.0.1:{port}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self._wait_for_sockets()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_sockets(self) -> None:
        def all_listening() -> bool:
            return all((self.directory / f"{name}.sock").is_socket() for name in self.ports)

        wait_until(all_listening, self.ready_timeout_s, f"socat's {', '.join(self.ports)} socket(s)", interval=0.05)

    def spec(self) -> str:
        """The host container's SPOTSCRIBE_FORWARDS value: `name:port …`."""
        return " ".join(f"{name}:{port}" for name, port in self.ports.items())

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> "SocketForwards":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class LocalHost:
    """A running host container standing in for an instance."""

    container: Container
    ssh_port: int
    host_keys: tuple[str, ...]
    forwards: dict[str, int] = field(default_factory=dict)

    def ssh_target(self, user: str, key_path: str) -> SshTarget:
        return SshTarget("127.0.0.1", self.ssh_port, user, key_path, self.host_keys)

    def state(self) -> str:
        self.container.reload()
        return self.container.status

    def read_file(self, path: str) -> str:
        """A file's text from the container's filesystem, running or stopped (through the engine's archive API)."""
        stream, _ = self.container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            return member.read().decode(errors="replace") if member else ""

    def wait_stopped(self, timeout_s: float) -> int:
        """Exit code once the host container stopped (e.g. after `shutdown`), waiting at most `timeout_s`."""
        return int(self.container.wait(timeout=timeout_s)["StatusCode"])


def host_container_options(image: str, run_id: str, authorized_key: str, socket_dir: Path | None,
                           forwards: str, instance_id: str, name: str | None) -> dict:
    """docker create arguments: DinD flags, own network namespace, sshd published on 127.0.0.1 only."""
    volumes = {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}}
    if socket_dir is not None:
        volumes[str(socket_dir)] = {"bind": SOCKET_MOUNT, "mode": "rw"}
    return dict(
        image=image, name=name, detach=True, hostname=instance_id or None,
        environment={"SSH_AUTHORIZED_KEY": authorized_key, "SPOTSCRIBE_FORWARDS": forwards,
                     "SPOTSCRIBE_SOCKET_DIR": SOCKET_MOUNT},
        labels={RUN_ID_LABEL: run_id, INSTANCE_LABEL: instance_id},
        ports={"22/tcp": ("127.0.0.1", None)}, volumes=volumes, **DIND_OPTIONS,
    )


def published_port(container: Container, container_port: str = "22/tcp") -> int:
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(container_port) or []
    if not bindings:
        raise RuntimeError(f"{container.name}: {container_port} is not published")
    return int(bindings[0]["HostPort"])


def read_host_keys(container: Container) -> tuple[str, ...]:
    """The container's sshd public host keys, read through the engine (a channel sshd cannot spoof)."""
    code, output = container.exec_run(["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"])
    if code != 0:
        raise RuntimeError(f"{container.name}: no host keys: {output.decode(errors='replace')}")
    return tuple(line for line in output.decode().splitlines() if line.strip())


@contextmanager
def local_host(client: docker.DockerClient, image: str, run_id: str, authorized_key: str,
               forwards: dict[str, int] | None = None, instance_id: str = "", name: str | None = None,
               ready_timeout_s: float = 60) -> Iterator[LocalHost]:
    """A started host container (and its socket forwards); removed on exit, with its engine volume, even when
    starting it failed."""
    with ExitStack() as stack:
        sockets = stack.enter_context(SocketForwards(forwards)) if forwards else None
        options = host_container_options(image, run_id, authorized_key, sockets.directory if sockets else None,
                                         sockets.spec() if sockets else "", instance_id, name)
        container = client.containers.create(**options)
        stack.callback(remove_quietly, container)
        container.start()
        wait_for_log(container, READY_LINE, ready_timeout_s)
        host = LocalHost(container, published_port(container), read_host_keys(container), dict(forwards or {}))
        log.info("host container %s for %s: ssh on 127.0.0.1:%d", container.name, instance_id, host.ssh_port)
        yield host


class MetadataStandIn(AbstractContextManager):
    """IMDSv2 on 127.0.0.1 for a local host: token, instance-id, placement/region; spot notices the test sets."""

    TOKEN = "spotscribe-local-imds-token"

    def __init__(self, region: str, instance_id: str = "i-pending", instance_type: str = "g4dn.xlarge"):
        self.documents = {"/latest/meta-data/placement/region": region, "/latest/meta-data/instance-life-cycle": "spot"}
        self.describe(instance_id, instance_type)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _imds_handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="imds-standin", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def describe(self, instance_id: str, instance_type: str = "g4dn.xlarge") -> None:
        """Serve this instance's identity (known only after the launch, while the server must exist before)."""
        self.documents["/latest/meta-data/instance-id"] = instance_id
        self.documents["/latest/meta-data/instance-type"] = instance_type

    def announce_interruption(self, action: str = "terminate", seconds: int = 120) -> None:
        deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        self.documents["/latest/meta-data/spot/instance-action"] = json.dumps({"action": action, "time": deadline})

    def __enter__(self) -> "MetadataStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _imds_handler(imds: MetadataStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
            ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            self._answer(200 if ok else 400, imds.TOKEN if ok else "")

        def do_GET(self) -> None:  # noqa: N802
            if self.headers.get("X-aws-ec2-metadata-token") != imds.TOKEN:
                self._answer(401, "")
                return
            document = imds.documents.get(self.path)
            self._answer(404, "") if document is None else self._answer(200, document)

        def _answer(self, code: int, body: str) -> None:
            payload = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    return Handler


@contextmanager
def local_test_host(cloud, client: docker.DockerClient, image: str, key_name: str, key_path: str,
                    forwards: dict[str, int] | None = None, user_data: str = "",
                    purpose: str = "gpu-test") -> Iterator[TestHost]:
    """The local target's instance: moto records a one-time spot launch (SSH from 127.0.0.1/32 only) and a host
    container with the key pair's public half plays the machine. Both are gone on exit."""
    ec2 = cloud.client("ec2")
    with launched_test_instance(ec2, local_ubuntu_image(ec2), key_name, LOCAL_SSH_CIDR, cloud.tags(),
                                ssh_group_name(cloud.run_id, purpose), user_data=user_data,
                                running_timeout_s=60) as instance, \
            local_host(client, image, cloud.run_id, public_key_line(key_path, key_name), forwards,
                       instance.instance_id, name=f"spotscribe-host-{instance.instance_id}") as host:
        details = HostDetails(instance.instance_id, instance.instance_type, "127.0.0.1", host.ssh_port, SSH_USER,
                              key_path, "local", cloud.region, cloud.run_id, instance.public_ip or "")
        yield TestHost(instance, details, host.host_keys, host)


CLOUD_INIT_USER_DATA = "/var/lib/cloud/instance/user-data.txt"


def user_data_of(ec2, instance_id: str) -> str:
    """The user data EC2 holds for the instance (what cloud-init would fetch from IMDS)."""
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"].get("Value", "")
    return base64.b64decode(value).decode() if value else ""


def run_user_data_as_cloud_init(session: SshSession, user_data: str, timeout_s: float,
                                on_line: Callable[[str], None] | None = None) -> CommandResult:
    """What cloud-init's scripts-user stage does on a host without cloud-init: store the script where cloud-init
    keeps it and run it once, as root."""
    session.run(f"sudo -n install -D -m 700 /dev/stdin {CLOUD_INIT_USER_DATA}", timeout_s=30,
                stdin=user_data.encode(), check=True)
    return session.run(f"sudo -n bash {CLOUD_INIT_USER_DATA}", timeout_s=timeout_s, on_line=on_line)
