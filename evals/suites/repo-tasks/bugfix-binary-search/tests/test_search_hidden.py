import bisect
import random

import pytest

from search import find_first


def test_empty():
    assert find_first([], 3) == -1


def test_single():
    assert find_first([3], 3) == 0
    assert find_first([3], 4) == -1


def test_last_element():
    assert find_first([1, 2, 3, 4, 5], 5) == 4


def test_first_of_duplicates():
    assert find_first([1, 2, 2, 2, 2, 3], 2) == 1
    assert find_first([7, 7, 7, 7], 7) == 0


def test_random_against_bisect():
    rng = random.Random(1234)
    for _ in range(500):
        items = sorted(rng.randint(0, 20) for _ in range(rng.randint(0, 30)))
        target = rng.randint(-1, 21)
        i = bisect.bisect_left(items, target)
        expected = i if i < len(items) and items[i] == target else -1
        assert find_first(items, target) == expected


def test_is_logarithmic():
    class Counting(list):
        reads = 0

        def __getitem__(self, i):
            Counting.reads += 1
            return list.__getitem__(self, i)

    items = Counting(range(1_000_000))
    assert find_first(items, 765_432) == 765_432
    assert Counting.reads < 200
