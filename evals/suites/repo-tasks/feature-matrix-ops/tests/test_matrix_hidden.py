import pytest

from matrix import Matrix


def test_shape():
    assert Matrix([[1, 2, 3], [4, 5, 6]]).shape == (2, 3)


def test_transpose():
    m = Matrix([[1, 2, 3], [4, 5, 6]])
    assert m.transpose() == Matrix([[1, 4], [2, 5], [3, 6]])
    assert m == Matrix([[1, 2, 3], [4, 5, 6]])


def test_matmul():
    a = Matrix([[1, 2], [3, 4]])
    b = Matrix([[5, 6], [7, 8]])
    assert a @ b == Matrix([[19, 22], [43, 50]])
    assert Matrix([[1, 2, 3]]) @ Matrix([[1], [2], [3]]) == Matrix([[14]])


def test_add():
    assert Matrix([[1, 2]]) + Matrix([[3, 4]]) == Matrix([[4, 6]])


def test_eq():
    assert Matrix([[1]]) != Matrix([[2]])
    assert Matrix([[1, 2]]) != Matrix([[1], [2]])
    assert (Matrix([[1]]) == "x") is False


def test_shape_errors():
    with pytest.raises(ValueError, match="2x3"):
        Matrix([[1, 2, 3], [4, 5, 6]]) @ Matrix([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="1x2"):
        Matrix([[1, 2]]) + Matrix([[1, 2, 3]])


def test_operands_unchanged():
    a = Matrix([[1, 2], [3, 4]])
    a @ a
    a + a
    a.transpose()
    assert a.rows == [[1, 2], [3, 4]]
