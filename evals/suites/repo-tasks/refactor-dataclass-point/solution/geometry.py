import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float
    y: float

    def distance_to(self, other: "Point") -> float:
        return math.hypot(self.x - other.x, self.y - other.y)

    def translate(self, dx: float, dy: float) -> "Point":
        return Point(self.x + dx, self.y + dy)


def make_point(x, y):
    return Point(x, y)


def distance(a, b):
    return a.distance_to(b)


def translate(p, dx, dy):
    return p.translate(dx, dy)
