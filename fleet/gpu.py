"""Is there an NVIDIA GPU on this machine, and which?"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GpuInfo:
    available: bool
    names: tuple[str, ...] = ()
    reason: str = ""

    def describe(self) -> str:
        return ", ".join(self.names) if self.available else f"none ({self.reason})"


def detect_gpu(timeout_s: float = 10.0) -> GpuInfo:
    """Ask nvidia-smi for the GPUs; an absent tool or driver means none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        has_dev = Path("/dev/nvidia0").exists()
        return GpuInfo(False, reason="/dev/nvidia0 present but no nvidia-smi" if has_dev else "no nvidia-smi, no /dev/nvidia0")
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return GpuInfo(False, reason=f"nvidia-smi did not answer in {timeout_s:.0f} s")
    names = tuple(line.strip() for line in out.stdout.splitlines() if line.strip())
    if out.returncode != 0 or not names:
        return GpuInfo(False, reason=f"nvidia-smi failed: {(out.stderr or out.stdout).strip()[:200]}")
    return GpuInfo(True, names)
