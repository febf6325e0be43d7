"""With --alluredir every suite result carries epic = phase and feature = step, and step logs are attached."""

import json


def test_results_are_labelled_by_phase_and_step(project):
    project.suite("suites/phase1_foundation/test_step102_a.py", """
        def test_a(step):
            step.log("detect output", "GPU Available: No")
    """)
    out = project.path / "allure"
    # a subprocess: allure-pytest keeps process-global listeners, and the outer run may have its own
    project.pytester.runpytest_subprocess(f"--alluredir={out}").assert_outcomes(passed=1)
    result = json.loads(next(out.glob("*-result.json")).read_text())
    labels = {(label["name"], label["value"]) for label in result["labels"]}
    assert ("epic", "phase1 foundation") in labels
    assert ("feature", "step102 gpu detection") in labels
    attachment = next(a for a in result["attachments"] if a["name"] == "detect output")
    assert (out / attachment["source"]).read_text() == "GPU Available: No"
