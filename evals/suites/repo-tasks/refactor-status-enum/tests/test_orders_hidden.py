import enum
import inspect

import orders
from orders import Order, Status, count_by_status


def test_status_enum():
    assert issubclass(Status, enum.Enum) and issubclass(Status, str)
    assert {s.value for s in Status} == {"new", "paid", "shipped", "cancelled"}
    assert Status.PAID == "paid"


def test_order_holds_enum():
    o = Order(1, "paid")
    assert o.status is Status.PAID
    o.advance()
    assert o.status is Status.SHIPPED
    assert Order(2).status is Status.NEW
    c = Order(3)
    c.cancel()
    assert c.status is Status.CANCELLED


def test_accepts_both():
    assert count_by_status([Order(1), Order(2)], Status.NEW) == 2
    assert count_by_status([Order(1), Order(2)], "new") == 2


def test_no_bare_strings_left():
    src = inspect.getsource(orders.Order)
    for word in ('"new"', '"paid"', '"shipped"', '"cancelled"'):
        assert word not in src
