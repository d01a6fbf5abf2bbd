import pytest

from inventory import Inventory, OutOfStock


def test_remove():
    inv = Inventory()
    inv.add("a", 2)
    assert inv.remove("a") == 1
    with pytest.raises(OutOfStock):
        inv.remove("a", 5)
