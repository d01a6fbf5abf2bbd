import pytest

from orders import Order, count_by_status


def test_flow():
    o = Order(1)
    assert o.advance() == "paid"
    assert o.advance() == "shipped"
    with pytest.raises(ValueError):
        o.advance()
    with pytest.raises(ValueError):
        o.cancel()


def test_cancel():
    o = Order(2, "paid")
    o.cancel()
    assert o.status == "cancelled"


def test_count():
    orders = [Order(1), Order(2, "paid"), Order(3, "paid")]
    assert count_by_status(orders, "paid") == 2


def test_bad_status():
    with pytest.raises(ValueError):
        Order(1, "lost")
