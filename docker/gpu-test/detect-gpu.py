#!/usr/bin/env python3
"""Step 102: say whether this container sees an NVIDIA GPU: "GPU Available: Yes" or "GPU Available: No".

Looks for what the NVIDIA container runtime injects when a GPU is requested (nvidia-smi, /dev/nvidia*).
Exit 0 either way; with --require, exit 2 when no GPU is visible.
"""

import argparse
import glob
import shutil
import subprocess
import sys


def query_gpus():
    """GPU names from nvidia-smi, or ([], reason)."""
    smi = shutil.which("nvidia-smi")
    devices = sorted(glob.glob("/dev/nvidia[0-9]*"))
    if smi is None:
        reason = "device nodes without nvidia-smi" if devices else "no nvidia-smi and no /dev/nvidia* device"
        return [], reason
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return [], "nvidia-smi did not answer within 20 s"
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not names:
        return [], "nvidia-smi failed: " + (out.stderr or out.stdout).strip()[:200]
    return names, ""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--require", action="store_true", help="exit 2 when no GPU is visible")
    args = parser.parse_args()
    gpus, reason = query_gpus()
    if gpus:
        print("GPU Available: Yes")
        for index, line in enumerate(gpus):
            print(f"GPU {index}: {line}")
    else:
        print("GPU Available: No")
        print(f"Reason: {reason}")
    sys.stdout.flush()
    if args.require and not gpus:
        print("ERROR: a GPU was required (--require) but none is visible; run with --gpus all on a GPU host",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
