"""Images: the local base image (debootstrap + docker import) and builds cached by a digest of their context."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager

import docker
from docker.errors import ImageNotFound
from docker.utils.build import exclude_paths
from filelock import FileLock

from fleet.docker_engine import engine_client

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
LOCK_DIR = ROOT / ".spotscribe" / "locks"
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "ca-certificates")
# The tag names the recipe, so changing suite or packages makes a new base instead of reusing a stale one.
LOCAL_BASE = "spotscribe/base:{}-{}".format(
    BASE_SUITE, hashlib.sha256(" ".join((BASE_SUITE, *BASE_PACKAGES)).encode()).hexdigest()[:8])
DIGEST_LABEL = "spotscribe.context-digest"

@dataclass(frozen=True)
class BuildResult:
    tag: str
    digest: str
    cached: bool
    seconds: float
    size_bytes: int

    def describe(self) -> str:
        how = "cache hit (context unchanged)" if self.cached else f"built in {self.seconds:.1f} s"
        return f"{self.tag}: {how}, {self.size_bytes / 1e6:.0f} MB"

def debian_mirror(sources_dir: Path = Path("/etc/apt/sources.list.d")) -> str:
    """The Debian mirror this machine's apt uses (so debootstrap goes where apt already goes)."""
    for path in sorted(sources_dir.glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?(\s|$)", line)
            if match:
                return match.group(1)
    raise RuntimeError("no Debian mirror found in apt's sources; debootstrap needs one")

def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except ImageNotFound:
        return False

def ensure_local_base(client: docker.DockerClient | None = None, tag: str = LOCAL_BASE) -> BuildResult:
    """Make the local bookworm base image (no registry here) unless it already exists."""
    client = client or engine_client()
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(LOCK_DIR / "base-image.lock"), timeout=900):
        if image_exists(client, tag):
            return BuildResult(tag, "", True, 0.0, client.images.get(tag).attrs["Size"])
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="spotscribe-rootfs-") as rootfs:
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", BASE_SUITE, rootfs,
                 debian_mirror()],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900,
            )
            shutil.rmtree(Path(rootfs) / "var/cache/apt/archives", ignore_errors=True)
            tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", tag], stdin=tar.stdout,
                           check=True, stdout=subprocess.DEVNULL, timeout=600)
            tar.wait(timeout=60)
        seconds = time.monotonic() - started
        log.info("local base image %s made in %.1f s", tag, seconds)
        return BuildResult(tag, "", False, seconds, client.images.get(tag).attrs["Size"])

def context_digest(context: Path, dockerfile: str, buildargs: dict[str, str] | None = None) -> str:
    """sha256 over what the build sees: files admitted by .dockerignore (path, mode, bytes), Dockerfile, args."""
    context = Path(context)
    ignore = context / ".dockerignore"
    patterns = [p for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")] if ignore.exists() else []
    digest = hashlib.sha256()
    for rel in sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile)):
        path = context / rel
        if path.is_file():
            digest.update(rel.encode() + b"\0" + oct(path.stat().st_mode & 0o777).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    dockerfile_path = context / dockerfile
    digest.update(b"dockerfile\0" + dockerfile_path.read_bytes())
    for key, value in sorted((buildargs or {}).items()):
        digest.update(f"arg\0{key}={value}\0".encode())
    return digest.hexdigest()


def image_tag(name: str, digest: str) -> str:
    return f"spotscribe/{name}:ctx-{digest[:12]}"


def cached_result(client: docker.DockerClient, tag: str, digest: str) -> BuildResult | None:
    """The existing image for this context digest, or None."""
    if not image_exists(client, tag):
        return None
    return BuildResult(tag, digest, True, 0.0, client.images.get(tag).attrs["Size"])


def build_cached(
    name: str,
    context: Path,
    dockerfile: str = "Dockerfile",
    buildargs: dict[str, str] | None = None,
    client: docker.DockerClient | None = None,
    timeout_s: int = 3600,
    network_mode: str | None = None,
    prepare: Callable[[], ContextManager[dict[str, str]]] | None = None,
) -> BuildResult:
    """Build `spotscribe/<name>:<digest>` unless an image with that context digest already exists.

    `prepare`, entered only when a build happens, yields extra build args that do not change the result
    (e.g. the URL of a served wheelhouse) and so stay out of the digest; `network_mode="host"` lets the
    build reach such a server on 127.0.0.1.
    """
    client = client or engine_client()
    digest = context_digest(context, dockerfile, buildargs)
    tag = image_tag(name, digest)
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(LOCK_DIR / f"build-{digest[:16]}.lock"), timeout=timeout_s):
        cached = cached_result(client, tag, digest)
        if cached is not None:
            return cached
        started = time.monotonic()
        with prepare() if prepare else contextlib.nullcontext({}) as extra:
            stream = client.api.build(path=str(context), dockerfile=dockerfile, tag=tag,
                                      buildargs={**(buildargs or {}), **extra}, labels={DIGEST_LABEL: digest},
                                      rm=True, forcerm=True, decode=True, timeout=timeout_s,
                                      network_mode=network_mode)
            _follow_build(stream, tag)
        seconds = time.monotonic() - started
    size = client.images.get(tag).attrs["Size"]
    log.info("built %s in %.1f s (%d MB)", tag, seconds, size // 1_000_000)
    return BuildResult(tag, digest, False, seconds, size)

class BuildFailed(RuntimeError):
    """docker build stopped with an error; the message carries the build's last lines."""

def _follow_build(stream, tag: str) -> None:
    tail: list[str] = []
    for chunk in stream:
        if "error" in chunk:
            raise BuildFailed(f"building {tag} failed: {chunk['error'].strip()}\n" + "".join(tail[-30:]))
        text = chunk.get("stream", "")
        if text:
            tail.append(text)
            for line in text.splitlines():
                if line.strip():
                    log.debug("[build %s] %s", tag, line)

def local_buildargs(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Build args for the local target: the local base image instead of a registry image."""
    return {"BASE_IMAGE": LOCAL_BASE, **(extra or {})}

def repo_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)



def stale_cached_images(client: docker.DockerClient, keep: int, prefix: str = "spotscribe/") -> list[str]:
    """Tags of cached builds (`<prefix><name>:ctx-…`) older than the `keep` newest of each name."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for image in client.images.list(filters={"label": DIGEST_LABEL}):
        for tag in image.tags:
            repo, _, version = tag.rpartition(":")
            if repo.startswith(prefix) and version.startswith("ctx-"):
                by_name.setdefault(repo, []).append((image.attrs["Created"], tag))
    stale = []
    for entries in by_name.values():
        stale += [tag for _, tag in sorted(entries, reverse=True)[keep:]]
    return stale


def prune_cached_images(client: docker.DockerClient | None = None, keep: int = 2,
                        prefix: str = "spotscribe/") -> list[str]:
    """Untag stale cached builds (Docker frees their layers once no kept image builds on them);
    an image a container still uses is kept."""
    client = client or engine_client()
    pending, removed = stale_cached_images(client, keep, prefix), []
    for _ in range(len(pending)):  # each pass frees the parents of what the last one removed
        progress = False
        for tag in list(pending):
            try:
                client.images.remove(tag)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # dependent child image or a container: try again next pass
                    continue
                if exc.status_code != 404:
                    raise
            pending.remove(tag)
            removed.append(tag)
            progress = True
        if not pending or not progress:
            break
    log.info("pruned %d stale cached image(s); %d kept for now", len(removed), len(pending))
    return removed
