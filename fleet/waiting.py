"""The one bounded poll: every wait in the project ends, and says what it waited for when it gives up."""

from __future__ import annotations

import time
from typing import Any, Callable


class WaitTimeout(TimeoutError, AssertionError):
    """`what` did not happen in time (an AssertionError too, so a test that waits fails, not errors)."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy and return that; raise WaitTimeout after `timeout` s.

    The predicate may raise to stop early (a process that exited, a container that died)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
