"""SSH to a host (an EC2 instance or a local host container): run commands with bounded timeouts, stream output.

Host keys are pinned when the caller knows them (local: read from the container; aws: the instance's console
output); with none known the first key seen is accepted and logged with its fingerprint (trust on first use).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable

import paramiko
from tenacity import retry, retry_if_exception_type, retry_if_not_exception_type, stop_after_delay, wait_fixed

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
POLL_S = 0.05
Input = bytes | BinaryIO | Iterable[bytes]
RETRYABLE_CONNECT_ERRORS = (OSError, EOFError, paramiko.SSHException)


@dataclass(frozen=True)
class SshTarget:
    """Where to log in: address, port, user, private key; `host_keys` are OpenSSH public-key lines to pin."""

    host: str
    port: int
    user: str
    key_path: str
    host_keys: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self) -> "CommandResult":
        """Self when the command succeeded; RemoteCommandFailed (with the output's tail) otherwise."""
        if not self.ok:
            raise RemoteCommandFailed(self)
        return self

    def transcript(self) -> str:
        """`$ command`, its output and exit status, as a log wants them."""
        parts = [f"$ {self.command}", self.stdout.rstrip(), self.stderr.rstrip(),
                 f"[exit {self.exit_status}, {self.seconds:.1f} s]"]
        return "\n".join(p for p in parts if p)


class RemoteCommandFailed(RuntimeError):
    def __init__(self, result: CommandResult):
        super().__init__(f"remote command failed (exit {result.exit_status}): {result.command}\n"
                         f"{(result.stdout + result.stderr)[-2000:]}")
        self.result = result


class RemoteTimeout(TimeoutError):
    """A remote command ran past its timeout; its channel was closed."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


class UnknownHostKey(paramiko.SSHException):
    """The host offered a key that is not pinned: possibly not the host we launched."""


# Refusals, not "not up yet": retrying them would only delay the error.
FINAL_ERRORS = (UnknownHostKey, paramiko.AuthenticationException)


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Accept a host key only if it is pinned; with no pins, trust the first key seen and log its fingerprint."""

    def __init__(self, pinned: Iterable[str] = ()):
        self.pinned = {line.split()[1] for line in pinned if len(line.split()) >= 2}

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self.pinned and key.get_base64() not in self.pinned:
            raise UnknownHostKey(f"{hostname} offered {key.get_name()} {fingerprint(key)}, "
                                 f"which is not among its {len(self.pinned)} pinned host key(s)")
        how = "pinned" if self.pinned else "first use (no pinned keys)"
        log.info("host key of %s accepted (%s): %s %s", hostname, how, key.get_name(), fingerprint(key))


class SshSession(AbstractContextManager):
    """One SSH connection to `target`; `run()` executes a command with a bounded timeout."""

    def __init__(self, target: SshTarget, connect_timeout_s: float = 10.0, ready_timeout_s: float = 60.0):
        self.target = target
        self.connect_timeout_s, self.ready_timeout_s = connect_timeout_s, ready_timeout_s
        self._client: paramiko.SSHClient | None = None

    def connect(self) -> "SshSession":
        """Connect, retrying while sshd is not up yet (at most `ready_timeout_s`); a refused key is final."""
        key = paramiko.PKey.from_path(self.target.key_path)

        @retry(retry=retry_if_exception_type(RETRYABLE_CONNECT_ERRORS) & retry_if_not_exception_type(FINAL_ERRORS),
               stop=stop_after_delay(self.ready_timeout_s), wait=wait_fixed(1), reraise=True)
        def attempt() -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(HostKeyPolicy(self.target.host_keys))
            try:
                client.connect(self.target.host, port=self.target.port, username=self.target.user,
                               pkey=key, timeout=self.connect_timeout_s,
                               banner_timeout=self.connect_timeout_s, auth_timeout=self.connect_timeout_s,
                               allow_agent=False, look_for_keys=False)
            except BaseException:
                client.close()
                raise
            return client

        self._client = attempt()
        log.info("ssh connected to %s", self.target.describe())
        return self

    @property
    def client(self) -> paramiko.SSHClient:
        if self._client is None:
            raise RuntimeError("not connected: call connect() or use the session as a context manager")
        return self._client

    def run(self, command: str, timeout_s: float = 120.0, stdin: Input | None = None,
            on_line: Callable[[str], None] | None = None, check: bool = False) -> CommandResult:
        """Run `command`, feeding `stdin`, collecting (and streaming to `on_line`) its output; RemoteTimeout
        after `timeout_s`."""
        started = time.monotonic()
        channel = self.client.get_transport().open_session(timeout=self.connect_timeout_s)
        try:
            channel.exec_command(command)
            stream = _OutputStream(channel, on_line)
            _feed(channel, stdin, stream, started + timeout_s)
            stream.drain_until_exit(started + timeout_s, command)
            result = CommandResult(command, channel.recv_exit_status(), stream.stdout(), stream.stderr(),
                                   time.monotonic() - started)
        finally:
            channel.close()
        log.debug("%s: %s", self.target.describe(), result.transcript())
        return result.check() if check else result

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()

    def __enter__(self) -> "SshSession":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()


class _OutputStream:
    """Collects a channel's stdout/stderr, handing complete lines of either to `on_line`."""

    def __init__(self, channel: paramiko.Channel, on_line: Callable[[str], None] | None):
        self.channel, self.on_line = channel, on_line
        self._out, self._err, self._partial = bytearray(), bytearray(), b""

    def pump(self) -> bool:
        """Read whatever is ready; True if anything was."""
        got = False
        while self.channel.recv_ready():
            self._take(self._out, self.channel.recv(CHUNK))
            got = True
        while self.channel.recv_stderr_ready():
            self._take(self._err, self.channel.recv_stderr(CHUNK))
            got = True
        return got

    def drain_until_exit(self, deadline: float, command: str) -> None:
        while not (self.channel.exit_status_ready() and not self.channel.recv_ready()
                   and not self.channel.recv_stderr_ready()):
            if time.monotonic() > deadline:
                raise RemoteTimeout(f"remote command still running at its deadline: {command}\n"
                                    f"{(self.stdout() + self.stderr())[-2000:]}")
            if not self.pump():
                time.sleep(POLL_S)
        self.pump()
        if self.on_line and self._partial:
            self.on_line(self._partial.decode(errors="replace"))
            self._partial = b""

    def _take(self, sink: bytearray, data: bytes) -> None:
        sink.extend(data)
        if self.on_line is None:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self.on_line(line.decode(errors="replace"))

    def stdout(self) -> str:
        return self._out.decode(errors="replace")

    def stderr(self) -> str:
        return self._err.decode(errors="replace")


def _feed(channel: paramiko.Channel, stdin: Input | None, stream: _OutputStream, deadline: float) -> None:
    """Send `stdin` (bytes or a binary stream) to the command, reading its output meanwhile, then close stdin."""
    if stdin is None:
        channel.shutdown_write()
        return
    for chunk in _chunks(stdin):
        view = memoryview(chunk)
        while view:
            if time.monotonic() > deadline:
                raise RemoteTimeout("remote command did not take its input before the deadline")
            if channel.send_ready():
                view = view[channel.send(view[:CHUNK]):]
            elif not stream.pump():
                time.sleep(POLL_S)
        stream.pump()
    channel.shutdown_write()


def _chunks(stdin: Input) -> Iterable[bytes]:
    """Bytes, a binary stream or an iterable of byte chunks (e.g. docker's `image.save()`), as chunks."""
    if isinstance(stdin, (bytes, bytearray)):
        for offset in range(0, len(stdin), CHUNK):
            yield bytes(stdin[offset:offset + CHUNK])
    elif hasattr(stdin, "read"):
        while chunk := stdin.read(CHUNK):
            yield chunk
    else:
        yield from stdin

