import pytest

from durations import parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1h30m", 5400),
        ("90s", 90),
        ("2d 4h", 2 * 86400 + 4 * 3600),
        ("1H30M", 5400),
        ("15m", 900),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4),
        ("0s", 0),
        ("120m", 7200),
    ],
)
def test_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10", "5x", "h", "1h 30", "abc", "1.5h"])
def test_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)
