import pytest

from jsonpath import get_path

DATA = {
    "users": [
        {"name": "ann", "address": {"city": "Oslo"}},
        {"name": "bob", "address": {"city": "Lima"}, "tags": ["a", "b"]},
    ],
    "count": 2,
    "matrix": [[1, 2], [3, 4]],
}


@pytest.mark.parametrize(
    "path, value",
    [
        ("count", 2),
        ("users[1].address.city", "Lima"),
        ("users[-1].name", "bob"),
        ("users[1].tags[0]", "a"),
        ("matrix[1][0]", 3),
        ("", DATA),
    ],
)
def test_found(path, value):
    assert get_path(DATA, path) == value


def test_top_level_list():
    assert get_path([10, 20], "[1]") == 20


@pytest.mark.parametrize("path", ["missing", "users[5].name", "count.x", "users.name", "users[0].tags[0]"])
def test_default(path):
    assert get_path(DATA, path, default="-") == "-"


@pytest.mark.parametrize("path", ["a..b", "a[x]", "a[1", ".a", "a."])
def test_malformed(path):
    with pytest.raises(ValueError):
        get_path(DATA, path)
