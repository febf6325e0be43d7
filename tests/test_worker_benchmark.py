"""The worker benchmark runs end to end (tiny run) and writes the report its README promises."""

from __future__ import annotations

import json

import pytest

from benchmarks.worker import main


@pytest.mark.slow
def test_benchmark_writes_a_complete_report(tmp_path, capsys):
    assert main(["--jobs", "2", "--engines", "faster-whisper", "--passage", "short", "--out", str(tmp_path)]) == 0
    report = json.loads(next(tmp_path.glob("worker-*.json")).read_text())
    assert report["machine"]["cpu_count"] >= 1
    assert report["audio"]["seconds"] > 1
    (result,) = report["results"]
    assert (result["engine"], result["device"], result["jobs"]) == ("faster-whisper", "cpu", 2)
    for key in ("model_load_seconds", "time_to_ready_seconds"):
        assert result[key] > 0
    rtf, overhead = result["real_time_factor"], result["overhead_seconds"]
    assert 0 < rtf["p50"] <= rtf["p95"]
    assert 0 <= overhead["p50"] <= overhead["p95"]
    assert "report:" in capsys.readouterr().out
