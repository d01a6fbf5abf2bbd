class Inventory:
    def __init__(self):
        self._stock = {}

    def add(self, name: str, quantity: int = 1) -> int:
        if not isinstance(quantity, int) or quantity <= 0:
            raise ValueError("quantity must be a positive integer")
        self._stock[name] = self._stock.get(name, 0) + quantity
        return self._stock[name]

    def count(self, name: str) -> int:
        return self._stock.get(name, 0)

    def items(self):
        return sorted(self._stock.items())

    def __contains__(self, name) -> bool:
        return name in self._stock
