import pytest

from inventory import Inventory


def test_add_and_count():
    inv = Inventory()
    assert inv.add("apple", 3) == 3
    assert inv.add("apple") == 4
    assert inv.count("apple") == 4
    assert inv.items() == [("apple", 4)]


def test_add_rejects_bad_quantity():
    with pytest.raises(ValueError):
        Inventory().add("x", 0)
