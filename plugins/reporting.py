"""Reporters: the status file, per-step logs and Allure labels. Under xdist they run on the controller only."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from fleet.status import StepOutcome, merge_status, one_line
from fleet.steplog import StepLogs
from fleet.steps import PHASES, step_from_path
from plugins.options import CONFIG_KEY

STEP_NOTE = "spotscribe_step_note"
SECTION_PREFIX = "spotscribe: "


def _step_of(nodeid: str):
    return step_from_path(nodeid.split("::", 1)[0])


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return one_line(reason.removeprefix("Skipped: "), 200)


def _failure_line(report: pytest.TestReport) -> str:
    """`test_name: first line of the error` (with the phase when it failed outside the test body)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    lines = str(report.longrepr or "").strip().splitlines()
    message = crash.message if crash is not None else (lines[-1] if lines else "")
    where = "" if report.when == "call" else f" [{report.when}]"
    return one_line(f"{report.nodeid.split('::', 1)[-1]}{where}: {message}", 300)


class StatusFileReporter:
    """Counts each step's outcomes and rewrites the status file once, at the end of the session."""

    name = "spotscribe-status-file"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.outcomes: dict[int, StepOutcome] = defaultdict(StepOutcome)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        step = _step_of(report.nodeid)
        if step is None:
            return
        outcome = self.outcomes[step.number]
        if report.when == "call" and report.passed:
            outcome.passed += 1
        elif report.failed:
            if report.when == "call":
                outcome.failed += 1
            else:
                outcome.errors += 1
            outcome.failures.append(_failure_line(report))
        elif report.skipped and report.when in ("setup", "call"):
            outcome.skipped += 1
            outcome.skip_reasons[_skip_reason(report)] += 1
        if report.when == "teardown":
            outcome.notes.extend(value for key, value in report.user_properties if key == STEP_NOTE)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.outcomes:
            merge_status(self.path, dict(self.outcomes))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.outcomes:
            return
        terminalreporter.section("spotscribe steps")
        for number in sorted(self.outcomes):
            outcome = self.outcomes[number]
            terminalreporter.write_line(f"step-{number} {outcome.status}: {outcome.summary()}")
        terminalreporter.write_line(f"status file: {self.path}")


def _own_sections(report: pytest.TestReport) -> list[tuple[str, str]]:
    """The captured sections of this phase only (a call report also carries its setup's sections)."""
    return [(title, text) for title, text in report.sections if title.endswith(f" {report.when}") and text.strip()]


class StepLogWriter:
    """Writes every result of a step, with its captured output and failure, to logs/step-XXX/output.log."""

    name = "spotscribe-step-logs"

    def __init__(self, root: Path):
        self.logs = StepLogs(root)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        step = _step_of(report.nodeid)
        if step is None or (report.when != "call" and report.passed and not _own_sections(report)):
            return
        longrepr = report.longreprtext if report.failed else (None if not report.skipped else _skip_reason(report))
        self.logs.write_result(step.number, report.nodeid, report.when, report.outcome, report.duration,
                               _own_sections(report), longrepr)


class AllureLabels:
    """With --alluredir: epic = phase, feature = step, for every suite test."""

    name = "spotscribe-allure-labels"

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            step = step_from_path(item.path.as_posix())
            if step is None:
                continue
            item.add_marker(pytest.mark.allure_label(f"phase{step.phase} {PHASES[step.phase]}", label_type="epic"))
            item.add_marker(pytest.mark.allure_label(f"step{step.number} {step.title}", label_type="feature"))


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _allure_enabled(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "allure_report_dir", None))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if _allure_enabled(config):
        config.pluginmanager.register(AllureLabels(), AllureLabels.name)
    if _is_xdist_worker(config):
        return
    cfg = config.stash[CONFIG_KEY]
    root = Path(config.rootpath)
    status_path = Path(cfg.status_file.value)
    config.pluginmanager.register(StatusFileReporter(status_path if status_path.is_absolute() else root / status_path),
                                  StatusFileReporter.name)
    config.pluginmanager.register(StepLogWriter(root / "logs"), StepLogWriter.name)


class StepRecorder:
    """What a test adds to its step's log and notes (and, with Allure on, to its attachments)."""

    def __init__(self, item: pytest.Item, allure_on: bool):
        self.item, self.allure_on = item, allure_on

    def log(self, title: str, text: str) -> None:
        self.item.add_report_section("call", SECTION_PREFIX + title, text)
        if self.allure_on:
            import allure

            allure.attach(text, name=title, attachment_type=allure.attachment_type.TEXT)

    def note(self, text: str) -> None:
        """A line for the step's notes in the status file (e.g. 'GPU Available: No')."""
        self.item.user_properties.append((STEP_NOTE, one_line(text, 200)))


@pytest.fixture
def step(request: pytest.FixtureRequest) -> StepRecorder:
    """Record output into the step log (`step.log(title, text)`) and notes into the status file (`step.note`)."""
    return StepRecorder(request.node, _allure_enabled(request.config))

