from cache import LRUCache


def test_evicts_least_recent():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("c", 3)
    assert "a" not in c and c.get("b") == 2 and c.get("c") == 3


def test_get_refreshes():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    c.put("c", 3)
    assert "b" not in c
    assert c.get("a") == 1 and c.get("c") == 3


def test_update_existing_key():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("a", 10)
    assert len(c) == 1
    c.put("b", 2)
    assert c.get("a") == 10 and len(c) == 2


def test_put_refreshes():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("a", 3)
    c.put("c", 4)
    assert "b" not in c and c.get("a") == 3


def test_len_never_exceeds_capacity():
    c = LRUCache(3)
    for i in range(10):
        c.put(i % 4, i)
        assert len(c) <= 3
