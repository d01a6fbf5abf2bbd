import pytest

from cache import LRUCache


def test_basic_put_get():
    c = LRUCache(2)
    c.put("a", 1)
    assert c.get("a") == 1
    assert c.get("missing", 0) == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        LRUCache(0)
