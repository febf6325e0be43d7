"""Step 120: the GPU image builds (on top of the WhisperX runtime, sharing its CUDA 12 + cuDNN 9 layer), runs on
CPU and says so without a GPU; with --gpu: nvidia-smi inside, WhisperX on CUDA, and the benchmark report."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from docker.types import DeviceRequest

from fixtures.images import result_line, word_error_rate
from fleet.images import repo_path

HERE = repo_path("docker", "whisperx-gpu")
REFERENCE = (repo_path("docker", "whisperx-base") / "test-audio.txt").read_text()
ALL_GPUS = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
MAX_WER = 0.4
CUDA_LIBRARIES = ("libcublas.so.12", "libcublasLt.so.12", "libcudnn.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9")
BENCHMARKS = repo_path("reports", "benchmarks")


def run_gpu_image(containers, image: str, *args: str, gpu: bool = False, entrypoint=None) -> tuple[int, str]:
    container = containers.run(image, command=list(args), entrypoint=entrypoint, read_only=True,
                               tmpfs={"/tmp": "size=1g"}, cap_drop=["ALL"], network_mode="none",
                               device_requests=ALL_GPUS if gpu else None)
    code = container.wait(timeout=600)["StatusCode"]
    return code, container.logs().decode(errors="replace")


def run_benchmark(image: str, run_id: str, out_dir, allow_cpu: bool, runs: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGE": image, "RUNS": str(runs), "OUT_DIR": str(out_dir), "RUN_ID": run_id,
           "ALLOW_CPU": "1" if allow_cpu else "0"}
    return subprocess.run(["bash", str(HERE / "benchmark-gpu.sh")], env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.smoke
def test_gpu_image_builds_on_the_whisperx_runtime(whisperx_gpu_image, whisperx_cpu_image, catalog_images,
                                                  docker_engine, step):
    step.log("image", catalog_images.chain("whisperx-gpu"))
    cpu_layers = docker_engine.images.get(whisperx_cpu_image.tag).attrs["RootFS"]["Layers"]
    gpu = docker_engine.images.get(whisperx_gpu_image.tag).attrs
    assert gpu["RootFS"]["Layers"][:len(cpu_layers)] == cpu_layers, "the GPU image does not share the runtime"
    added = gpu["Size"] - docker_engine.images.get(whisperx_cpu_image.tag).attrs["Size"]
    assert added < 1_000_000, f"the GPU image adds {added} bytes on top of the runtime"
    env = dict(item.split("=", 1) for item in gpu["Config"]["Env"])
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    step.note(f"GPU image = WhisperX runtime ({gpu['Size'] / 1e9:.2f} GB) + {added} bytes")


def test_cuda_12_and_cudnn_9_libraries_load(whisperx_gpu_image, containers, step):
    probe = ("import ctypes, json, torch, ctranslate2\n"
             f"for lib in {CUDA_LIBRARIES!r}: ctypes.CDLL(lib)\n"
             "print(json.dumps({'torch_cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(),"
             " 'ctranslate2': ctranslate2.__version__}))")
    code, output = run_gpu_image(containers, whisperx_gpu_image.tag, "-c", probe, entrypoint=["python3"])
    assert code == 0, output
    versions = json.loads(output.strip().splitlines()[-1])
    step.log("CUDA user-space in the image", json.dumps(versions))
    assert versions["torch_cuda"].startswith("12.")
    assert versions["cudnn"] >= 90000
    assert tuple(int(p) for p in versions["ctranslate2"].split(".")[:2]) >= (4, 5)


def test_without_a_gpu_it_runs_on_cpu_and_says_so(whisperx_gpu_image, containers, step):
    code, output = run_gpu_image(containers, whisperx_gpu_image.tag)
    step.log("test-gpu-transcription.py (no GPU)", output[-4000:])
    assert code == 0, output[-3000:]
    assert "GPU Available: No" in output.splitlines()
    assert "No GPU visible: running WhisperX on CPU" in output
    result = result_line(output)
    assert result["device"] == "cpu"
    assert word_error_rate(REFERENCE, result["text"]) <= MAX_WER
    step.note("no GPU: WhisperX ran on CPU and said so")


def test_require_gpu_fails_clearly_without_one(whisperx_gpu_image, containers):
    code, output = run_gpu_image(containers, whisperx_gpu_image.tag, "--require-gpu")
    assert code == 2
    assert "a GPU was required (--require-gpu) but none is visible" in output


def test_benchmark_script_records_a_cpu_run(whisperx_gpu_image, spotscribe, tmp_path, step):
    """The benchmark script itself, on CPU (ALLOW_CPU=1), into a temporary directory."""
    result = run_benchmark(whisperx_gpu_image.tag, spotscribe.run_id, tmp_path, allow_cpu=True, runs=2)
    step.log("benchmark-gpu.sh (ALLOW_CPU=1)", result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(next(tmp_path.glob("gpu-benchmark-*.json")).read_text())["result"]
    assert report["device"] == "cpu" and report["runs"] == 2 and len(report["real_time_factors"]) == 2
    for key in ("engine", "model", "compute_type", "batch_size", "machine"):
        assert report[key], key


@pytest.mark.gpu
def test_nvidia_smi_inside_the_container(whisperx_gpu_image, containers, step):
    code, output = run_gpu_image(containers, whisperx_gpu_image.tag, "-L", gpu=True, entrypoint=["nvidia-smi"])
    step.log("nvidia-smi -L", output)
    assert code == 0, output
    assert output.startswith("GPU 0:")
    step.note(output.splitlines()[0])


@pytest.mark.gpu
def test_whisperx_runs_on_cuda(whisperx_gpu_image, containers, step):
    code, output = run_gpu_image(containers, whisperx_gpu_image.tag, "--require-gpu", gpu=True)
    step.log("test-gpu-transcription.py --require-gpu", output[-4000:])
    assert code == 0, output[-3000:]
    assert "GPU Available: Yes" in output.splitlines()
    result = result_line(output)
    assert result["device"] == "cuda" and result["compute_type"] == "float16"
    assert result["gpu"]["cudnn"] >= 90000
    assert word_error_rate(REFERENCE, result["text"]) <= MAX_WER


@pytest.mark.gpu
def test_gpu_benchmark_into_reports(whisperx_gpu_image, spotscribe, step):
    before = set(BENCHMARKS.glob("gpu-benchmark-*.json"))
    result = run_benchmark(whisperx_gpu_image.tag, spotscribe.run_id, BENCHMARKS, allow_cpu=False, runs=5)
    step.log("benchmark-gpu.sh", result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = set(BENCHMARKS.glob("gpu-benchmark-*.json")) - before
    report = json.loads(path.read_text())["result"]
    assert report["device"] == "cuda" and report["gpu_peak_memory_bytes"] > 0
    step.note(f"GPU benchmark: median RTF {report['real_time_factor_median']}, "
              f"peak {report['gpu_peak_memory_bytes'] / 1e6:.0f} MB -> {path.name}")
