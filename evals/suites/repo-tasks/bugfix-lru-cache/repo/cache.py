class LRUCache:
    """A least-recently-used cache holding at most ``capacity`` entries."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._keys = []
        self._values = {}

    def get(self, key, default=None):
        return self._values.get(key, default)

    def put(self, key, value) -> None:
        self._keys.append(key)
        self._values[key] = value
        if len(self._keys) > self.capacity:
            oldest = self._keys.pop(0)
            del self._values[oldest]

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key) -> bool:
        return key in self._values
