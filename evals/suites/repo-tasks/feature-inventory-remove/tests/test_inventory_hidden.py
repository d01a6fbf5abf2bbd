import pytest

import inventory
from inventory import Inventory


def stocked():
    inv = Inventory()
    inv.add("apple", 5)
    inv.add("pear", 2)
    return inv


def test_remove_lowers_stock():
    inv = stocked()
    assert inv.remove("apple", 2) == 3
    assert inv.count("apple") == 3
    assert inv.remove("apple") == 2


def test_remove_to_zero_deletes():
    inv = stocked()
    assert inv.remove("pear", 2) == 0
    assert "pear" not in inv
    assert inv.items() == [("apple", 5)]


def test_unknown_item():
    with pytest.raises(KeyError):
        stocked().remove("kiwi")


@pytest.mark.parametrize("qty", [0, -1, 1.5, "2"])
def test_bad_quantity(qty):
    inv = stocked()
    with pytest.raises(ValueError):
        inv.remove("apple", qty)
    assert inv.count("apple") == 5


def test_out_of_stock():
    assert issubclass(inventory.OutOfStock, ValueError)
    inv = stocked()
    with pytest.raises(inventory.OutOfStock):
        inv.remove("pear", 3)
    assert inv.count("pear") == 2
