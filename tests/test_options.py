"""Options resolve command line > environment > ini > default, and the header says where each came from."""

import pytest

from fleet.settings import parse_bool, resolve


def test_resolution_order():
    env = {"SPOTSCRIBE_TARGET": "aws"}
    assert resolve("local", env, "SPOTSCRIBE_TARGET", "aws", "t", "local").source == "command line"
    assert resolve(None, env, "SPOTSCRIBE_TARGET", "local", "t", "local").value == "aws"
    assert resolve(None, {}, "SPOTSCRIBE_TARGET", "aws", "t", "local").source == "ini (t)"
    assert resolve(None, {}, "SPOTSCRIBE_TARGET", "", "t", "local").source == "default"
    assert resolve(None, {"X": ""}, "X", None, "t", "d").value == "d"


@pytest.mark.parametrize("text, value", [("1", True), ("yes", True), ("false", False), ("0", False)])
def test_parse_bool(text, value):
    assert parse_bool(text) is value


def test_parse_bool_refuses_garbage():
    with pytest.raises(ValueError):
        parse_bool("maybe")


def header(project, *args):
    project.suite("suites/phase1_foundation/test_step100_a.py", "def test_a(): pass\n")
    return project.pytester.runpytest(*args)


def test_header_shows_default_target(project):
    header(project).stdout.fnmatch_lines(["spotscribe: target=local (from default), env=dev (from default)*"])


def test_ini_beats_default(project):
    project.pytester.makeini("[pytest]\nspotscribe_target = aws\nspotscribe_env = staging\n")
    header(project).stdout.fnmatch_lines(["spotscribe: target=aws (from ini (spotscribe_target)), "
                                          "env=staging (from ini (spotscribe_env))*"])


def test_environment_beats_ini(project, monkeypatch):
    project.pytester.makeini("[pytest]\nspotscribe_target = local\n")
    monkeypatch.setenv("SPOTSCRIBE_TARGET", "aws")
    header(project).stdout.fnmatch_lines(["spotscribe: target=aws (from environment (SPOTSCRIBE_TARGET))*"])


def test_command_line_beats_environment(project, monkeypatch):
    monkeypatch.setenv("SPOTSCRIBE_TARGET", "aws")
    monkeypatch.setenv("SPOTSCRIBE_ENV", "prod")
    header(project, "--target", "local", "--env", "qa").stdout.fnmatch_lines(
        ["spotscribe: target=local (from command line), env=qa (from command line)*"])


def test_bad_target_in_environment_is_a_usage_error(project, monkeypatch):
    monkeypatch.setenv("SPOTSCRIBE_TARGET", "azure")
    result = header(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*target must be one of local, aws, not 'azure'*"])


def test_header_reports_docker_and_gpu(project):
    result = header(project)
    result.stdout.fnmatch_lines(["docker: *", "gpu: *"])


def test_gpu_option_without_gpu_is_an_error(project, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvidia-smi here
    result = header(project, "--gpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gpu was asked for (command line) but this machine has no usable NVIDIA GPU*"])
