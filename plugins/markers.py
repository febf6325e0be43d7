"""Markers: step/phase from each suite module's path; smoke/gpu/aws/slow by hand; GPU and AWS gating."""

from __future__ import annotations

import pytest

from fleet.steps import PHASES, STEPS, StepPathError, step_from_path
from plugins.options import CONFIG_KEY

HAND_MARKERS = {
    "smoke": "fast checks run before every deploy (pytest -m smoke)",
    "gpu": "needs an NVIDIA GPU; runs only with --gpu",
    "aws": "needs a real AWS account; runs only with --target aws",
    "slow": "takes more than a few seconds",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in HAND_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    for step in STEPS.values():
        config.addinivalue_line("markers", f"{step.marker}: step {step.number} ({step.title}), set from the path")
    for number, title in PHASES.items():
        config.addinivalue_line("markers", f"phase{number}: phase {number} ({title}), set from the path")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cfg = config.stash[CONFIG_KEY]
    for item in items:
        try:
            step = step_from_path(item.path.as_posix())
        except StepPathError as exc:
            raise pytest.UsageError(str(exc)) from None
        if step is not None:
            item.add_marker(step.marker)
            item.add_marker(step.phase_marker)
        if item.get_closest_marker("gpu") and not cfg.gpu.value:
            item.add_marker(pytest.mark.skip(reason="GPU test: run with --gpu on a machine with an NVIDIA GPU"))
        if item.get_closest_marker("aws") and cfg.is_local:
            item.add_marker(pytest.mark.skip(reason="needs a real AWS account: run with --target aws"))
