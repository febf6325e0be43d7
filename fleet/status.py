"""The implementation status file (`.docker-implementation-status`): per-step outcomes in the plan's format.

    step-100-completed=2026-12-04T10:30:00Z
    step-100-status=SUCCESS
    step-100-notes=6 passed; all prerequisites verified
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fleet.envfile import atomic_write

SUCCESS, FAILED, SKIPPED = "SUCCESS", "FAILED", "SKIPPED"
_LINE = re.compile(r"^step-(?P<step>\d{3})-(?P<field>completed|status|notes)=(?P<value>.*)$")
_MAX_NOTE = 600


@dataclass
class StepOutcome:
    """What one step's tests did in one run."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed or self.errors:
            return FAILED
        return SUCCESS if self.passed else SKIPPED

    def summary(self) -> str:
        counts = [f"{n} {label}" for n, label in ((self.passed, "passed"), (self.failed, "failed"),
                                                   (self.errors, "error"), (self.skipped, "skipped")) if n]
        parts = [", ".join(counts) or "no tests ran"]
        parts += [f"failed: {f}" for f in self.failures]
        parts += [f"skipped ({n}): {reason}" for reason, n in self.skip_reasons.items()]
        parts += list(dict.fromkeys(self.notes))
        return one_line("; ".join(parts))


@dataclass
class StepBlock:
    completed: str
    status: str
    notes: str


def one_line(text: str, limit: int = _MAX_NOTE) -> str:
    """Collapse whitespace so a note fits the file's one-value-per-line format."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def read_status(path: Path) -> "OrderedDict[int, StepBlock]":
    blocks: OrderedDict[int, dict] = OrderedDict()
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            match = _LINE.match(line.strip())
            if match:
                blocks.setdefault(int(match["step"]), {})[match["field"]] = match["value"]
    return OrderedDict(
        (step, StepBlock(b.get("completed", ""), b.get("status", ""), b.get("notes", ""))) for step, b in blocks.items()
    )


def merge_status(path: Path, outcomes: dict[int, StepOutcome], now: datetime | None = None) -> "OrderedDict[int, StepBlock]":
    """Replace the blocks of the steps in `outcomes`, keep the others, and rewrite the file atomically."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    blocks = read_status(path)
    for step, outcome in outcomes.items():
        blocks[step] = StepBlock(stamp, outcome.status, outcome.summary())
    ordered = OrderedDict(sorted(blocks.items()))
    atomic_write(Path(path), render_status(ordered))
    return ordered


def render_status(blocks: dict[int, StepBlock]) -> str:
    lines = []
    for step, block in blocks.items():
        lines += [
            f"step-{step}-completed={block.completed}",
            f"step-{step}-status={block.status}",
            f"step-{step}-notes={block.notes}",
            "",
        ]
    return "\n".join(lines)
