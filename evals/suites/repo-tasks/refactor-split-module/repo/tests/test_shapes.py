import math

import shapes
from shapes import rectangle_area


def test_areas():
    assert rectangle_area(2, 3) == 6
    assert math.isclose(shapes.circle_area(1), math.pi)
    assert shapes.triangle_area(3, 4, 5) == 6


def test_perimeters():
    assert shapes.rectangle_perimeter(2, 3) == 10
    assert math.isclose(shapes.circle_perimeter(1), 2 * math.pi)
