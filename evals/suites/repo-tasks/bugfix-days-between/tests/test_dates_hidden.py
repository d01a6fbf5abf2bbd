import pytest

from dates import days_between


@pytest.mark.parametrize(
    "a, b, n",
    [
        ("2024-01-31", "2024-03-01", 30),
        ("2023-01-31", "2023-03-01", 29),
        ("2024-01-01", "2025-01-01", 366),
        ("2023-06-15", "2023-06-15", 0),
        ("2024-03-01", "2024-02-28", -2),
        ("1999-12-31", "2000-01-01", 1),
    ],
)
def test_days_between(a, b, n):
    assert days_between(a, b) == n


@pytest.mark.parametrize("bad", ["2024-02-30", "2024-13-01", "yesterday", "2024/01/01"])
def test_invalid(bad):
    with pytest.raises(ValueError):
        days_between(bad, "2024-01-01")
