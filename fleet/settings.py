"""Resolve a setting the way every spotscribe option is resolved: command line > environment > ini > default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "command line", "environment (NAME)", "ini (name)", "default"

    def __str__(self) -> str:
        return f"{self.value} (from {self.source})"


def parse_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def resolve(
    cli: Any,
    environ: Mapping[str, str],
    env_name: str,
    ini: Any,
    ini_name: str,
    default: Any,
    convert: Callable[[str], Any] = str,
) -> Resolved:
    """The first of CLI value, environment variable, ini value and default that is set."""
    if cli is not None:
        return Resolved(cli, "command line")
    if environ.get(env_name, "") != "":
        return Resolved(convert(environ[env_name]), f"environment ({env_name})")
    if ini not in (None, "", []):
        return Resolved(convert(ini), f"ini ({ini_name})")
    return Resolved(default, "default")
