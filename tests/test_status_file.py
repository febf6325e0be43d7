"""The status file: the plan's format, merge with earlier runs, FAILED/SKIPPED rules, identical under -n 2."""

import re
from datetime import datetime, timezone

import pytest

from fleet.status import StepBlock, StepOutcome, merge_status, read_status, render_status

MIXED = {
    "suites/phase1_foundation/test_step100_ok.py": """
        def test_one(): pass
        def test_two(): pass
    """,
    "suites/phase1_foundation/test_step101_bad.py": """
        def test_good(): pass
        def test_broken(): assert 1 == 2, "the greeting was missing"
    """,
    "suites/phase1_foundation/test_step102_skip.py": """
        import pytest

        @pytest.mark.skip(reason="no engine here")
        def test_a(): pass

        def test_b(): pytest.skip("no engine here")
    """,
}


def write_suites(project, suites=MIXED):
    for path, source in suites.items():
        project.suite(path, source)


def statuses(text: str) -> dict:
    return dict(re.findall(r"^step-(\d+)-status=(\w+)$", text, re.M))


def test_format_is_the_plans(project):
    write_suites(project, {k: v for k, v in MIXED.items() if "step100" in k})
    project.pytester.runpytest().assert_outcomes(passed=2)
    lines = project.status().strip().splitlines()
    assert re.fullmatch(r"step-100-completed=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[0])
    assert lines[1:] == ["step-100-status=SUCCESS", "step-100-notes=2 passed"]


def test_one_failure_fails_the_step_and_names_it(project):
    write_suites(project)
    project.pytester.runpytest()
    text = project.status()
    assert statuses(text) == {"100": "SUCCESS", "101": "FAILED", "102": "SKIPPED"}
    notes = re.search(r"^step-101-notes=(.*)$", text, re.M)[1]
    assert notes.startswith("1 passed, 1 failed")
    assert "test_broken" in notes and "the greeting was missing" in notes


def test_skips_are_summarised_with_reasons(project):
    write_suites(project)
    project.pytester.runpytest()
    notes = re.search(r"^step-102-notes=(.*)$", project.status(), re.M)[1]
    assert notes == "2 skipped; skipped (2): no engine here"


def test_errors_in_fixtures_fail_the_step(project):
    project.suite("suites/phase1_foundation/test_step100_err.py", """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("moto did not start")

        def test_a(broken): pass
    """)
    project.pytester.runpytest()
    text = project.status()
    assert statuses(text) == {"100": "FAILED"}
    assert "1 error" in text and "moto did not start" in text


def test_steps_not_run_keep_their_block(project):
    write_suites(project)
    project.pytester.runpytest()
    before = project.status()
    old_101 = re.search(r"step-101-[\s\S]*?step-101-notes=.*", before)[0]
    project.pytester.runpytest("-m", "step100")
    after = project.status()
    assert re.search(r"step-101-[\s\S]*?step-101-notes=.*", after)[0] == old_101
    assert statuses(after) == {"100": "SUCCESS", "101": "FAILED", "102": "SKIPPED"}


def test_status_file_option_and_environment(project, monkeypatch):
    write_suites(project, {k: v for k, v in MIXED.items() if "step100" in k})
    project.pytester.runpytest("--status-file", "custom-status")
    assert statuses((project.path / "custom-status").read_text()) == {"100": "SUCCESS"}
    monkeypatch.setenv("SPOTSCRIBE_STATUS_FILE", str(project.path / "from-env"))
    project.pytester.runpytest()
    assert (project.path / "from-env").exists()


def test_step_notes_from_tests_reach_the_file(project):
    project.suite("suites/phase1_foundation/test_step102_note.py", """
        def test_a(step):
            step.note("GPU Available: No")
            step.log("container output", "GPU Available: No\\nReason: none")
    """)
    project.pytester.runpytest().assert_outcomes(passed=1)
    assert "step-102-notes=1 passed; GPU Available: No" in project.status()
    assert "GPU Available: No\nReason: none" in project.step_log(102)


def test_xdist_gives_the_same_statuses_written_once(project):
    write_suites(project)
    serial = project.pytester.runpytest_subprocess()
    serial_text = project.status()
    (project.path / ".docker-implementation-status").unlink()
    parallel = project.pytester.runpytest_subprocess("-n", "2")
    parallel.assert_outcomes(passed=3, failed=1, skipped=2)
    parallel_text = project.status()
    strip = lambda t: re.sub(r"completed=\S+", "completed=T", t)  # noqa: E731
    assert strip(parallel_text) == strip(serial_text)
    assert serial.ret == parallel.ret == 1
    assert not list(project.path.glob(".docker-implementation-status.*"))  # no stray temp files


def test_merge_keeps_unknown_steps_and_sorts(tmp_path):
    path = tmp_path / "status"
    path.write_text("step-151-completed=x\nstep-151-status=SUCCESS\nstep-151-notes=old\n")
    outcome = StepOutcome(passed=1)
    merge_status(path, {100: outcome}, now=datetime(2026, 12, 4, tzinfo=timezone.utc))
    blocks = read_status(path)
    assert list(blocks) == [100, 151]
    assert blocks[151].notes == "old"
    assert blocks[100].completed == "2026-12-04T00:00:00Z"


@pytest.mark.parametrize("outcome, status", [
    (StepOutcome(passed=2), "SUCCESS"),
    (StepOutcome(passed=2, failed=1), "FAILED"),
    (StepOutcome(errors=1, skipped=3), "FAILED"),
    (StepOutcome(skipped=3), "SKIPPED"),
    (StepOutcome(), "SKIPPED"),
])
def test_status_rule(outcome, status):
    assert outcome.status == status


def test_notes_stay_on_one_line():
    outcome = StepOutcome(failed=1, failures=["test_x: line one\nline two"])
    text = render_status({100: StepBlock("t", outcome.status, outcome.summary())})
    assert text.strip().splitlines()[2] == "step-100-notes=1 failed; failed: test_x: line one line two"
