import copy

from intervals import merge


def test_empty():
    assert merge([]) == []


def test_disjoint_sorted():
    assert merge([[1, 2], [4, 5]]) == [[1, 2], [4, 5]]


def test_overlap():
    assert merge([[1, 4], [2, 6], [8, 10]]) == [[1, 6], [8, 10]]


def test_touching():
    assert merge([[1, 3], [3, 5]]) == [[1, 5]]


def test_unsorted():
    assert merge([[8, 10], [1, 3], [2, 6]]) == [[1, 6], [8, 10]]


def test_contained():
    assert merge([[1, 10], [2, 3], [4, 5]]) == [[1, 10]]


def test_does_not_modify_input():
    data = [[1, 3], [2, 4]]
    before = copy.deepcopy(data)
    merge(data)
    assert data == before
