from geometry import distance, make_point, translate


def test_distance():
    assert distance(make_point(0, 0), make_point(3, 4)) == 5


def test_translate():
    p = make_point(1, 2)
    q = translate(p, 2, -1)
    assert distance(q, make_point(3, 1)) == 0
    assert distance(p, make_point(1, 2)) == 0
