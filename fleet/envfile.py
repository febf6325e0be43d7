"""Read and write `.env` files (KEY=value lines), atomically and keeping keys the writer does not own."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        env[key.strip().removeprefix("export ").strip()] = value.strip().strip('"').strip("'")
    return env


def write_env(path: Path, values: dict[str, str], header: str | None = None) -> Path:
    """Merge `values` into the file at `path` (created if absent), replacing it atomically."""
    path = Path(path)
    current = read_env(path) if path.exists() else {}
    current.update({k: str(v) for k, v in values.items()})
    lines = [f"# {header}"] if header else []
    lines += [f"{k}={v}" for k, v in current.items()]
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
