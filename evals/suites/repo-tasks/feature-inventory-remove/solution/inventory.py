class OutOfStock(ValueError):
    """More was asked for than is in stock."""


def _check_quantity(quantity):
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise ValueError("quantity must be a positive integer")


class Inventory:
    def __init__(self):
        self._stock = {}

    def add(self, name: str, quantity: int = 1) -> int:
        _check_quantity(quantity)
        self._stock[name] = self._stock.get(name, 0) + quantity
        return self._stock[name]

    def remove(self, name: str, quantity: int = 1) -> int:
        if name not in self._stock:
            raise KeyError(name)
        _check_quantity(quantity)
        have = self._stock[name]
        if quantity > have:
            raise OutOfStock(f"only {have} {name} in stock")
        left = have - quantity
        if left:
            self._stock[name] = left
        else:
            del self._stock[name]
        return left

    def count(self, name: str) -> int:
        return self._stock.get(name, 0)

    def items(self):
        return sorted(self._stock.items())

    def __contains__(self, name) -> bool:
        return name in self._stock
