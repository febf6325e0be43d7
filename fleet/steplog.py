"""Per-step logs: `logs/step-XXX/output.log`, one file per step, rewritten on the step's first result of a run."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path


class StepLogs:
    """Appends to each step's log; a step's file is truncated the first time this run writes to it."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._started: set[int] = set()

    def path(self, step: int) -> Path:
        return self.root / f"step-{step}" / "output.log"

    def write(self, step: int, text: str) -> None:
        path = self.path(step)
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "a" if step in self._started else "w"
        self._started.add(step)
        with path.open(mode) as fh:
            fh.write(text if text.endswith("\n") else text + "\n")

    def write_result(self, step: int, nodeid: str, when: str, outcome: str, duration: float,
                     sections: list[tuple[str, str]], longrepr: str | None) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = [f"[{stamp}] {outcome.upper():7} {nodeid} ({when}, {duration:.2f} s)"]
        for title, content in sections:
            lines.append(f"---- {title} ----")
            lines.append(content.rstrip())
        if longrepr:
            lines.append("---- failure ----")
            lines.append(longrepr.rstrip())
        self.write(step, "\n".join(lines))
