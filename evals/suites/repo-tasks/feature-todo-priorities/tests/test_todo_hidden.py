import pytest

from todo import TodoList


def make():
    t = TodoList()
    t.add("write report", priority="low")
    t.add("fix bug", priority="high")
    t.add("lunch")
    t.add("deploy", priority="high")
    t.add("email")
    return t


def test_pending_order():
    assert make().pending() == ["fix bug", "deploy", "lunch", "email", "write report"]


def test_complete():
    t = make()
    t.complete("fix bug")
    t.complete("email")
    assert t.pending() == ["deploy", "lunch", "write report"]
    assert t.titles() == ["write report", "fix bug", "lunch", "deploy", "email"]


def test_errors():
    t = make()
    with pytest.raises(ValueError):
        t.add("x", priority="urgent")
    with pytest.raises(KeyError):
        t.complete("nope")
