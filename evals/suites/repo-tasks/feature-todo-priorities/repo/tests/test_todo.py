import pytest

from todo import TodoList


def test_add_titles():
    t = TodoList()
    t.add("a")
    t.add("b")
    assert t.titles() == ["a", "b"]


def test_empty_title():
    with pytest.raises(ValueError):
        TodoList().add("  ")
