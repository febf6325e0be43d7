"""Every shell script in the project is valid bash and shellcheck-clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fixtures.capability import require_tools

ROOT = Path(__file__).resolve().parent.parent


def shell_scripts() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.sh", ".ci/run"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return sorted(p for p in listed if (ROOT / p).exists())


def test_the_project_has_shell_scripts():
    assert "scripts/setup.sh" in shell_scripts()


@pytest.mark.parametrize("script", shell_scripts())
def test_script_passes_shellcheck(script):
    require_tools("shellcheck")
    result = subprocess.run(["shellcheck", "-x", "-s", "bash", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout
