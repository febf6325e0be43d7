"""fleet.registry.LocalRegistry: starts on 127.0.0.1, enforces its credentials, cleans up even when start fails."""

from __future__ import annotations

import shutil
import socket

import pytest
import requests

from fixtures.capability import missing
from fleet.registry import Credentials, LocalRegistry, RegistryUnavailable, registry_config

CREDENTIALS = Credentials("AWS", "123456789012-auth-token")


@pytest.fixture
def registry_binary():
    if shutil.which("docker-registry") is None:
        missing("docker-registry not installed (Debian package docker-registry)")


def test_config_binds_where_asked_and_enables_auth_only_with_credentials(tmp_path):
    with_auth = registry_config(tmp_path, "127.0.0.1:5001", tmp_path / "htpasswd")
    assert '"addr": "127.0.0.1:5001"' in with_auth and '"htpasswd"' in with_auth
    assert '"auth"' not in registry_config(tmp_path, "127.0.0.1:5001", None)


def test_answers_with_credentials_only(registry_binary):
    with LocalRegistry(credentials=CREDENTIALS) as registry:
        assert registry.host_port.startswith("127.0.0.1:")
        assert requests.get(f"{registry.url}/v2/", timeout=5).status_code == 401
        assert requests.get(f"{registry.url}/v2/", auth=("AWS", "wrong"), timeout=5).status_code == 401
        assert requests.get(f"{registry.url}/v2/", auth=CREDENTIALS.as_auth(), timeout=5).status_code == 200
        assert registry.tags("nothing-here") == []


def test_stop_removes_storage_and_is_idempotent(registry_binary):
    registry = LocalRegistry().start()
    root, process = registry.root, registry.process
    registry.stop()
    registry.stop()
    assert process.poll() is not None
    assert not root.exists()


def test_start_failure_leaves_nothing_behind(registry_binary):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        registry = LocalRegistry(port=busy.getsockname()[1], start_timeout_s=10)
        with pytest.raises(RegistryUnavailable):
            registry.start()
    assert registry.process is None and registry.root is None
