"""Backoff bounds: jittered exponential waits never exceed their cap and grow with the attempt."""

from __future__ import annotations

import statistics

import pytest

from worker.queue_handler import MAX_VISIBILITY, backoff, backoff_seconds


@pytest.mark.parametrize("base, cap", [(2.0, 300.0), (0.5, 30.0), (0.0, 300.0)])
def test_backoff_stays_within_bounds(base, cap):
    strategy = backoff(base, cap)
    for attempt in range(1, 60):
        wait = backoff_seconds(strategy, attempt)
        assert 0 <= wait <= min(cap, base * 2 ** (attempt - 1))


def test_backoff_is_jittered_and_grows():
    strategy = backoff(1.0, 1000.0)
    early = [backoff_seconds(strategy, 2) for _ in range(200)]
    late = [backoff_seconds(strategy, 8) for _ in range(200)]
    assert len(set(early)) > 100  # jitter: not one fixed delay
    assert statistics.mean(late) > 10 * statistics.mean(early)


def test_release_delay_fits_sqs():
    assert backoff_seconds(backoff(2.0, MAX_VISIBILITY), 1000) <= MAX_VISIBILITY
