import pytest

from roman import from_roman, to_roman


@pytest.mark.parametrize("s, n", [("III", 3), ("IV", 4), ("IX", 9), ("XLII", 42), ("MCMXCIV", 1994), ("mmxxiv", 2024), ("CDXLIV", 444)])
def test_from_roman(s, n):
    assert from_roman(s) == n


def test_round_trip():
    for n in range(1, 4000):
        assert from_roman(to_roman(n)) == n


@pytest.mark.parametrize("bad", ["", "ABC", "12", "X V"])
def test_invalid(bad):
    with pytest.raises(ValueError):
        from_roman(bad)
