import dataclasses

import pytest

from geometry import Point, distance, make_point, translate


def test_point_is_frozen_dataclass():
    assert dataclasses.is_dataclass(Point)
    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 5


def test_methods():
    assert Point(0, 0).distance_to(Point(3, 4)) == 5
    assert Point(1, 1).translate(1, 2) == Point(2, 3)


def test_functions_use_points():
    p = make_point(1, 2)
    assert isinstance(p, Point) and p == Point(1, 2)
    assert translate(p, 1, 1) == Point(2, 3)
    assert distance(Point(0, 0), Point(0, 2)) == 2
    assert hash(Point(1, 2)) == hash(make_point(1, 2))
