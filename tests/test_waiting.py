"""The one bounded poll: returns the first truthy value, gives up naming what it waited for, stops early on raise."""

import itertools

import pytest

from fleet.waiting import WaitTimeout, wait_until


def test_returns_first_truthy_value():
    values = iter([None, 0, "", "ready"])
    assert wait_until(lambda: next(values), timeout=5, what="ready", interval=0) == "ready"


def test_gives_up_naming_what_it_waited_for():
    calls = itertools.count()
    with pytest.raises(WaitTimeout, match="waiting for the registry"):
        wait_until(lambda: next(calls) < 0, timeout=0.2, what="the registry", interval=0.01)
    assert next(calls) > 1


def test_timeout_fails_a_test_rather_than_erroring_it():
    assert issubclass(WaitTimeout, AssertionError) and issubclass(WaitTimeout, TimeoutError)


def test_predicate_can_stop_the_wait_early():
    def exited():
        raise RuntimeError("process exited")

    with pytest.raises(RuntimeError, match="process exited"):
        wait_until(exited, timeout=30, what="never")
