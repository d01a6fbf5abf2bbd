import math


def circle_area(r):
    return math.pi * r * r


def circle_perimeter(r):
    return 2 * math.pi * r


def rectangle_area(w, h):
    return w * h


def rectangle_perimeter(w, h):
    return 2 * (w + h)


def triangle_area(a, b, c):
    s = (a + b + c) / 2
    return math.sqrt(s * (s - a) * (s - b) * (s - c))
