import enum


class Status(str, enum.Enum):
    NEW = "new"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


NEXT = {Status.NEW: Status.PAID, Status.PAID: Status.SHIPPED}


class Order:
    def __init__(self, order_id, status=Status.NEW):
        try:
            status = Status(status)
        except ValueError:
            raise ValueError(status) from None
        self.order_id = order_id
        self.status = status

    def advance(self):
        if self.status not in NEXT:
            raise ValueError(f"cannot advance a {self.status.value} order")
        self.status = NEXT[self.status]
        return self.status

    def cancel(self):
        if self.status in (Status.SHIPPED, Status.CANCELLED):
            raise ValueError(f"cannot cancel a {self.status.value} order")
        self.status = Status.CANCELLED


def count_by_status(orders, status):
    status = Status(status)
    return sum(1 for o in orders if o.status == status)
