"""fleet.localhosts without Docker: socket forwards, the IMDS stand-in, the host container's options; and the
SSH helpers' pure parts."""

from __future__ import annotations

import socket
import threading

import paramiko
import pytest
import requests

from fixtures.capability import require_tools
from fleet.localhosts import DIND_OPTIONS, MetadataStandIn, SocketForwards, host_container_options
from fleet.ssh import CommandResult, HostKeyPolicy, RemoteCommandFailed, UnknownHostKey, _chunks


@pytest.fixture
def echo_server():
    """A one-shot TCP echo server on 127.0.0.1."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(1024).upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


def test_socket_forward_reaches_the_loopback_port(echo_server):
    require_tools("socat")
    with SocketForwards({"echo": echo_server}) as forwards:
        assert forwards.spec() == f"echo:{echo_server}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(forwards.directory / "echo.sock"))
            client.sendall(b"ping")
            assert client.recv(1024) == b"PING"
        directory = forwards.directory
    assert not directory.exists()


def test_metadata_stand_in_is_imdsv2_only():
    with MetadataStandIn("eu-west-1", "i-0abc") as imds:
        base = f"http://127.0.0.1:{imds.port}/latest"
        assert requests.get(f"{base}/meta-data/instance-id", timeout=5).status_code == 401
        token = requests.put(f"{base}/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
                             timeout=5).text
        headers = {"X-aws-ec2-metadata-token": token}
        assert requests.get(f"{base}/meta-data/instance-id", headers=headers, timeout=5).text == "i-0abc"
        assert requests.get(f"{base}/meta-data/placement/region", headers=headers, timeout=5).text == "eu-west-1"
        assert requests.get(f"{base}/meta-data/spot/instance-action", headers=headers, timeout=5).status_code == 404
        imds.announce_interruption()
        notice = requests.get(f"{base}/meta-data/spot/instance-action", headers=headers, timeout=5).json()
        assert notice["action"] == "terminate"


def test_host_container_keeps_its_own_network_and_publishes_ssh_on_loopback(tmp_path):
    options = host_container_options("img", "run-1", "ssh-rsa AAAA k", tmp_path, "moto:5000", "i-1", "h")
    assert "network_mode" not in options
    assert options["ports"] == {"22/tcp": ("127.0.0.1", None)}
    assert options["cap_drop"] == ["SYS_RESOURCE"] and "privileged" not in options
    assert {k: options[k] for k in DIND_OPTIONS} == DIND_OPTIONS
    assert options["labels"]["spotscribe.run-id"] == "run-1"
    assert options["volumes"][str(tmp_path)]["bind"] == "/run/spotscribe/sockets"
    assert options["environment"]["SPOTSCRIBE_FORWARDS"] == "moto:5000"


def test_host_key_policy_accepts_pinned_and_refuses_others():
    pinned, other = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)
    policy = HostKeyPolicy([f"ssh-rsa {pinned.get_base64()} root@host"])
    client = paramiko.SSHClient()
    policy.missing_host_key(client, "[127.0.0.1]:2222", pinned)
    with pytest.raises(UnknownHostKey, match="not among its 1 pinned"):
        policy.missing_host_key(client, "[127.0.0.1]:2222", other)
    HostKeyPolicy([]).missing_host_key(client, "h", other)  # nothing pinned: first use is accepted (and logged)


def test_command_result_check_raises_with_output():
    CommandResult("true", 0, "", "", 0.1).check()
    with pytest.raises(RemoteCommandFailed, match="exit 2"):
        CommandResult("false", 2, "out", "err", 0.1).check()


def test_stdin_chunks_from_bytes_streams_and_iterables(tmp_path):
    data = bytes(range(256)) * 1000
    path = tmp_path / "blob"
    path.write_bytes(data)
    with path.open("rb") as stream:
        assert b"".join(_chunks(stream)) == data
    assert b"".join(_chunks(data)) == data
    assert b"".join(_chunks(iter([b"a", b"b"]))) == b"ab"
