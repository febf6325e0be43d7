"""Helpers for the framework's own tests: a pytester project wired with spotscribe's plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ["plugins.options", "plugins.markers", "plugins.reporting"]


class SuiteProject:
    """A throwaway project with spotscribe's plugins, suite modules written by the test."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
        self.pytester = pytester
        self.path = pytester.path
        for var in ("SPOTSCRIBE_TARGET", "SPOTSCRIBE_GPU", "SPOTSCRIBE_ENV", "SPOTSCRIBE_STATUS_FILE", "CI"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("PYTHONPATH", str(ROOT))
        pytester.makeconftest(f"pytest_plugins = {PLUGINS!r}\n")
        pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")

    def suite(self, relpath: str, source: str) -> Path:
        path = self.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def status(self) -> str:
        return (self.path / ".docker-implementation-status").read_text()

    def step_log(self, step: int) -> str:
        return (self.path / "logs" / f"step-{step}" / "output.log").read_text()


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> SuiteProject:
    return SuiteProject(pytester, monkeypatch)
