import pytest

from retrying import retry


def flaky(failures, exc=RuntimeError):
    state = {"calls": 0}

    def fn(x, y=1):
        """doc"""
        state["calls"] += 1
        if state["calls"] <= failures:
            raise exc("boom")
        return x + y

    return fn, state


def test_succeeds_after_failures():
    fn, state = flaky(2)
    sleeps = []
    wrapped = retry(times=3, delay=0.5, sleep=sleeps.append)(fn)
    assert wrapped(1, y=2) == 3
    assert state["calls"] == 3
    assert sleeps == [0.5, 1.0]


def test_gives_up():
    fn, state = flaky(5)
    wrapped = retry(times=3, sleep=lambda s: None)(fn)
    with pytest.raises(RuntimeError):
        wrapped(1)
    assert state["calls"] == 3


def test_other_exceptions_propagate_at_once():
    fn, state = flaky(1, exc=KeyError)
    wrapped = retry(times=3, exceptions=(ValueError,), sleep=lambda s: None)(fn)
    with pytest.raises(KeyError):
        wrapped(1)
    assert state["calls"] == 1


def test_wraps():
    fn, _ = flaky(0)
    wrapped = retry()(fn)
    assert wrapped.__name__ == "fn" and wrapped.__doc__ == "doc"


def test_bad_times():
    with pytest.raises(ValueError):
        retry(times=0)
