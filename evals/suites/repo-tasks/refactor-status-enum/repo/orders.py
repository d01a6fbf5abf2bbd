NEXT = {"new": "paid", "paid": "shipped"}


class Order:
    def __init__(self, order_id, status="new"):
        if status not in ("new", "paid", "shipped", "cancelled"):
            raise ValueError(status)
        self.order_id = order_id
        self.status = status

    def advance(self):
        if self.status not in NEXT:
            raise ValueError(f"cannot advance a {self.status} order")
        self.status = NEXT[self.status]
        return self.status

    def cancel(self):
        if self.status in ("shipped", "cancelled"):
            raise ValueError(f"cannot cancel a {self.status} order")
        self.status = "cancelled"


def count_by_status(orders, status):
    return sum(1 for o in orders if o.status == status)
