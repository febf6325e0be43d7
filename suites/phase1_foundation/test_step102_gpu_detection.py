"""Step 102: the GPU-detect container says Yes or No, works without a GPU, and with --gpu must say Yes."""

from __future__ import annotations

import os
import subprocess

import pytest
from docker.types import DeviceRequest

from fleet.images import LOCAL_BASE, repo_path

HERE = repo_path("docker", "gpu-test")
ALL_GPUS = [DeviceRequest(count=-1, capabilities=[["gpu"]])]


@pytest.fixture(scope="module")
def detect_image(image_builder):
    return image_builder.build("gpu-detect", HERE, "Dockerfile.gpu-detect")


def run_detect(containers, image: str, *args: str, gpu: bool = False) -> tuple[int, str]:
    container = containers.run(image, command=list(args), read_only=True,
                               device_requests=ALL_GPUS if gpu else None)
    code = container.wait(timeout=60)["StatusCode"]
    return code, container.logs().decode()


@pytest.mark.smoke
def test_without_gpu_request_says_no(detect_image, containers, step):
    code, output = run_detect(containers, detect_image.tag)
    step.log("detect-gpu.py (no device request)", output)
    assert code == 0
    assert "GPU Available: No" in output.splitlines()
    step.note("GPU Available: No (container started without a GPU device request)")


def test_require_flag_fails_clearly_without_gpu(detect_image, containers):
    code, output = run_detect(containers, detect_image.tag, "--require")
    assert code == 2
    assert "GPU Available: No" in output
    assert "--gpus all" in output


def test_script_matches_this_host(detect_image, spotscribe, step):
    env = {**os.environ, "IMAGE": detect_image.tag, "BASE_IMAGE": LOCAL_BASE, "RUN_ID": spotscribe.run_id,
           "GPU": "1" if spotscribe.gpu.value else "0"}
    result = subprocess.run(["bash", str(HERE / "test-gpu-detection.sh")], env=env, capture_output=True, text=True,
                            timeout=180)
    step.log("test-gpu-detection.sh", result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = "Yes" if spotscribe.gpu.value else "No"
    assert f"PASS: GPU Available: {expected}" in result.stdout


@pytest.mark.gpu
def test_with_gpu_request_says_yes(detect_image, containers, step):
    code, output = run_detect(containers, detect_image.tag, "--require", gpu=True)
    step.log("detect-gpu.py (--gpus all)", output)
    assert code == 0, output
    assert "GPU Available: Yes" in output.splitlines()
    step.note("GPU Available: Yes — " + next(line for line in output.splitlines() if line.startswith("GPU 0")))
