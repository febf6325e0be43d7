"""Per-step logs: outcomes, captured output and failures under logs/step-XXX/output.log, fresh each run."""


def test_log_has_outcomes_output_and_failure(project):
    project.suite("suites/phase1_foundation/test_step101_log.py", """
        def test_prints():
            print("container said hello")

        def test_fails():
            assert False, "no greeting"
    """)
    project.pytester.runpytest()
    log = project.step_log(101)
    assert "PASSED  suites/phase1_foundation/test_step101_log.py::test_prints (call" in log
    assert "container said hello" in log
    assert "FAILED  suites/phase1_foundation/test_step101_log.py::test_fails (call" in log
    assert "no greeting" in log


def test_each_run_starts_the_step_log_afresh(project):
    project.suite("suites/phase1_foundation/test_step100_a.py", "def test_a(): print('run marker')\n")
    project.pytester.runpytest()
    project.pytester.runpytest()
    assert project.step_log(100).count("run marker") == 1


def test_steps_not_run_keep_their_log(project):
    project.suite("suites/phase1_foundation/test_step100_a.py", "def test_a(): print('hundred')\n")
    project.suite("suites/phase1_foundation/test_step101_b.py", "def test_b(): print('hundred-one')\n")
    project.pytester.runpytest()
    project.pytester.runpytest("-m", "step100")
    assert "hundred-one" in project.step_log(101)


def test_logs_written_by_controller_under_xdist(project):
    for n in range(4):
        project.suite(f"suites/phase1_foundation/test_step100_{n}.py", f"def test_{n}(): print('out {n}')\n")
    project.pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=4)
    log = project.step_log(100)
    assert all(f"out {n}" in log for n in range(4))
    assert log.count("PASSED ") == 4
