import math


def make_point(x, y):
    return {"x": x, "y": y}


def distance(a, b):
    return math.hypot(a["x"] - b["x"], a["y"] - b["y"])


def translate(p, dx, dy):
    return make_point(p["x"] + dx, p["y"] + dy)
