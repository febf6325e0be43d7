"""Audit an image for leaked credentials: every file of every layer (overlay2 layer directories, so files that a
later layer deleted are seen too) and the build history, for AWS key patterns, credential files and given
strings (the values of a `.env`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import docker

# An access key id standing alone (not inside a longer base64 or identifier run), and a secret key assigned.
AWS_KEY = rb"(?<![A-Za-z0-9/+=])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9/+=])"
AWS_SECRET = rb"(?i:aws_secret_access_key)\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"
# AWS's documentation keys end in EXAMPLE (botocore ships them in its examples): published, never valid.
DOCUMENTED_EXAMPLE = re.compile(rb"^(?:AKIA|ASIA)[0-9A-Z]{9}EXAMPLE$")
CREDENTIAL_FILES = re.compile(r"(?:^|/)(?:\.env|\.env\.[^/]+|\.netrc|\.pypirc|\.aws/credentials|\.docker/config\.json)$")
MAX_SCAN_BYTES = 8 * 1024 * 1024  # larger files are shared libraries, models and wheels' data


@dataclass(frozen=True)
class Finding:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def secret_pattern(needles: Iterable[str] = ()) -> re.Pattern:
    """AWS key patterns plus each literal needle (e.g. `.env` values)."""
    alternatives = [AWS_KEY, AWS_SECRET, *(re.escape(n.encode()) for n in needles if n)]
    return re.compile(b"|".join(alternatives))


def layer_directories(client: docker.DockerClient, image: str) -> list[Path]:
    """The image's layer directories, lowest first (overlay2 only: the storage driver used here and in CI)."""
    driver = client.images.get(image).attrs["GraphDriver"]
    if driver["Name"] != "overlay2":
        raise RuntimeError(f"layer audit reads overlay2 layer directories; this engine uses {driver['Name']}")
    data = driver["Data"]
    lower = [Path(p) for p in data.get("LowerDir", "").split(":") if p]
    return [*reversed(lower), Path(data["UpperDir"])]


def matches(pattern: re.Pattern, content: bytes) -> list[str]:
    found = {m.group(0) for m in pattern.finditer(content)}
    return sorted(m.decode(errors="replace")[:60] for m in found if not DOCUMENTED_EXAMPLE.match(m))


def scan_directory(directory: Path, pattern: re.Pattern) -> tuple[int, list[Finding]]:
    """(files scanned, findings) for one layer directory."""
    scanned, findings = 0, []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(root, name)
            relative = "/" + str(path.relative_to(directory))
            if CREDENTIAL_FILES.search(relative):
                findings.append(Finding(relative, "credential file"))
            if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_SCAN_BYTES:
                continue
            scanned += 1
            for hit in matches(pattern, path.read_bytes()):
                findings.append(Finding(relative, f"matches {hit!r}"))
    return scanned, findings


def history_findings(client: docker.DockerClient, image: str, pattern: re.Pattern) -> list[Finding]:
    findings = []
    for entry in client.api.history(image):
        for hit in matches(pattern, (entry.get("CreatedBy") or "").encode()):
            findings.append(Finding(f"history {entry.get('Id', '')[:19]}", f"matches {hit!r}"))
    return findings


class LayerAuditor:
    """Scans each layer directory once (images that share layers share the work)."""

    def __init__(self, client: docker.DockerClient, pattern: re.Pattern):
        self.client, self.pattern = client, pattern
        self.layers: dict[Path, tuple[int, list[Finding]]] = {}

    def audit(self, image: str) -> tuple[int, list[Finding]]:
        """(files scanned, findings) over the image's layers and history."""
        scanned, findings = 0, history_findings(self.client, image, self.pattern)
        for directory in layer_directories(self.client, image):
            if directory not in self.layers:
                self.layers[directory] = scan_directory(directory, self.pattern)
            count, found = self.layers[directory]
            scanned += count
            findings += [Finding(f"layer {directory.parent.name[:12]} {f.where}", f.what) for f in found]
        return scanned, findings
