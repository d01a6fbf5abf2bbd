import importlib
import os

import shapes


def test_is_a_package():
    assert hasattr(shapes, "__path__")
    assert not os.path.exists("shapes.py")


def test_submodules():
    circle = importlib.import_module("shapes.circle")
    polygon = importlib.import_module("shapes.polygon")
    assert circle.circle_area(2) == shapes.circle_area(2)
    assert polygon.rectangle_area(2, 5) == 10
    assert polygon.triangle_area(3, 4, 5) == 6
    assert not hasattr(circle, "rectangle_area")
    assert not hasattr(polygon, "circle_area")


def test_reexports_are_the_same_objects():
    from shapes.circle import circle_perimeter
    from shapes.polygon import rectangle_perimeter

    assert shapes.circle_perimeter is circle_perimeter
    assert shapes.rectangle_perimeter is rectangle_perimeter
