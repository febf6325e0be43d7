"""The rollout plan's steps: numbers, phases, titles, and how a suite's path names its step."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    number: int
    phase: int
    title: str

    @property
    def marker(self) -> str:
        return f"step{self.number}"

    @property
    def phase_marker(self) -> str:
        return f"phase{self.phase}"


PHASES = {
    1: "foundation",
    2: "ecr and cpu images",
    3: "gpu hosts",
    4: "worker",
    5: "integration and rollback",
    6: "deployment and operations",
}

STEPS = {
    s.number: s
    for s in (
        Step(100, 1, "prerequisites"),
        Step(101, 1, "minimal image"),
        Step(102, 1, "gpu detection"),
        Step(110, 2, "ecr repository"),
        Step(111, 2, "whisperx cpu image"),
        Step(112, 2, "sqs container"),
        Step(120, 3, "gpu image"),
        Step(121, 3, "spot gpu test instance"),
        Step(122, 3, "docker and nvidia toolkit install"),
        Step(130, 4, "transcription worker"),
        Step(131, 4, "cloudwatch logs and metrics"),
        Step(132, 4, "auto-scaling user data"),
        Step(140, 5, "integration cases"),
        Step(141, 5, "rollback drill"),
        Step(150, 6, "blue-green deploy"),
        Step(151, 6, "operations runbook"),
    )
}

_SUITE_PATH = re.compile(r"(?:^|/)phase(?P<phase>\d+)_[^/]+/test_step(?P<step>\d{3})(?:_[^/]*)?\.py")


class StepPathError(ValueError):
    """A suite module whose path does not name a known step of its phase."""


def step_from_path(path: str) -> Step | None:
    """The step a suite module belongs to, from `…/phaseN_x/test_stepNNN_y.py`; None outside suites."""
    match = _SUITE_PATH.search(path.replace("\\", "/"))
    if not match:
        return None
    number, phase = int(match["step"]), int(match["phase"])
    step = STEPS.get(number)
    if step is None:
        raise StepPathError(f"{path}: step{number} is not a step of the plan ({', '.join(map(str, STEPS))})")
    if step.phase != phase:
        raise StepPathError(f"{path}: step{number} belongs to phase{step.phase}, not phase{phase}")
    return step
