"""Step and phase markers come from the suite module's path; unknown steps are refused."""

import pytest

from fleet.steps import StepPathError, step_from_path


@pytest.mark.parametrize(
    "path, expected",
    [
        ("suites/phase1_foundation/test_step100_prerequisites.py", (100, 1)),
        ("/abs/suites/phase4_worker/test_step130_worker_e2e.py", (130, 4)),
        ("suites/phase6_ops/test_step151.py", (151, 6)),
    ],
)
def test_step_from_path(path, expected):
    step = step_from_path(path)
    assert (step.number, step.phase) == expected


def test_paths_outside_suites_have_no_step():
    assert step_from_path("tests/test_markers.py") is None


@pytest.mark.parametrize("path", ["suites/phase1_x/test_step199_nope.py", "suites/phase2_x/test_step100_wrong.py"])
def test_unknown_or_misplaced_step_is_an_error(path):
    with pytest.raises(StepPathError):
        step_from_path(path)


def test_markers_select_by_step_and_phase(project):
    project.suite("suites/phase1_foundation/test_step100_a.py", "def test_a(): pass\n")
    project.suite("suites/phase1_foundation/test_step101_b.py", "def test_b(): pass\n")
    project.suite("suites/phase2_ecr/test_step110_c.py", "def test_c(): pass\n")
    project.pytester.runpytest("-m", "step101").assert_outcomes(passed=1)
    project.pytester.runpytest("-m", "phase1").assert_outcomes(passed=2)
    project.pytester.runpytest("-m", "phase2 or step100").assert_outcomes(passed=2)


def test_hand_markers_are_registered_and_strict(project):
    project.suite("suites/phase1_foundation/test_step100_a.py", """
        import pytest

        @pytest.mark.smoke
        def test_fast(): pass

        @pytest.mark.slow
        def test_slow(): pass
    """)
    project.pytester.runpytest("-m", "smoke").assert_outcomes(passed=1)
    project.suite("suites/phase1_foundation/test_step101_typo.py", """
        import pytest

        @pytest.mark.smok
        def test_typo(): pass
    """)
    result = project.pytester.runpytest()
    result.stdout.fnmatch_lines(["*'smok' not found in `markers` configuration option*"])


def test_suite_with_unknown_step_fails_collection(project):
    project.suite("suites/phase1_foundation/test_step109_unknown.py", "def test_a(): pass\n")
    result = project.pytester.runpytest()
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*step109 is not a step of the plan*"])


def test_gpu_tests_skip_with_reason_without_gpu_option(project):
    project.suite("suites/phase1_foundation/test_step102_g.py", """
        import pytest

        @pytest.mark.gpu
        def test_gpu(): pass
    """)
    result = project.pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*GPU test: run with --gpu*"])
