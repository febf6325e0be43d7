"""The worker user data: rendered from the template, valid bash and shellcheck-clean, settings quoted safely,
the committed example current, small enough for EC2."""

from __future__ import annotations

import subprocess

import pytest

from fixtures.capability import require_tools
from fleet.cli import main
from fleet.userdata import EXAMPLE_DEPLOYMENT, EXAMPLE_OUTPUT, render, render_example, settings_block, settings_for

EC2_USER_DATA_LIMIT = 16384


def local_settings(**overrides):
    deployment = EXAMPLE_DEPLOYMENT.__class__(**{**EXAMPLE_DEPLOYMENT.__dict__, "endpoint_url": "http://127.0.0.1:5000"})
    return settings_for(deployment, "127.0.0.1:5123/whisper-docker-dev:t1", **overrides)


@pytest.fixture(params=["aws", "local"])
def rendered(request, tmp_path):
    settings = settings_for(EXAMPLE_DEPLOYMENT, "img:1") if request.param == "aws" else local_settings()
    path = tmp_path / "user-data.sh"
    path.write_text(render(settings))
    return path


def test_rendered_user_data_is_valid_bash(rendered):
    result = subprocess.run(["bash", "-n", str(rendered)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_rendered_user_data_passes_shellcheck(rendered):
    require_tools("shellcheck")
    result = subprocess.run(["shellcheck", "-s", "bash", str(rendered)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_user_data_fits_ec2s_limit(rendered):
    assert len(rendered.read_bytes()) < EC2_USER_DATA_LIMIT


def test_committed_example_is_rendered_from_the_current_template():
    assert EXAMPLE_OUTPUT.read_text() == render_example(), "run: python -m fleet userdata render --example"


def test_settings_survive_shell_quoting():
    hostile = "it's $(reboot) `id` \"quoted\"; rm -rf /"
    settings = local_settings(log_group=hostile, extra_worker_env={"NOTE": hostile})
    script = settings_block(settings) + '\nprintf "%s\\n" "$LOG_GROUP" "${WORKER_ENVIRONMENT[@]}"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == hostile
    assert f"NOTE={hostile}" in lines
    assert f"QUEUE_URL={settings.queue_url}" in lines


def test_only_the_local_target_gets_an_endpoint_and_dummy_keys():
    aws = settings_for(EXAMPLE_DEPLOYMENT, "img:1")
    assert "AWS_ENDPOINT_URL" not in aws.worker_env() and "AWS_ACCESS_KEY_ID" not in aws.worker_env()
    assert aws.shell_settings()["LOCAL_AWS_ACCESS_KEY_ID"] == ""
    local = local_settings()
    assert local.worker_env()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"


def test_worker_is_started_as_the_plan_says():
    text = render_example()
    for needle in ("--restart \"on-failure:", "--network host", "--log-driver awslogs", "cache-max-size",
                   "shutdown -h now", "aws ecr get-login-password", '"max-size"'):
        assert needle in text, needle
    assert "0.0.0.0/0" not in text


def test_fleet_userdata_render_writes_the_example(tmp_path):
    output = tmp_path / "docker-worker-userdata.sh"
    assert main(["userdata", "render", "--example", "--output", str(output)]) == 0
    assert output.read_text() == render_example()
    assert output.stat().st_mode & 0o111
