import textwrap

import pytest

from wrap import wrap_text


def test_blank():
    assert wrap_text("", 10) == []
    assert wrap_text("   \n ", 10) == []


def test_fits_on_one_line():
    assert wrap_text("hello world", 11) == ["hello world"]


def test_breaks_between_words():
    assert wrap_text("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]


def test_long_word_alone():
    assert wrap_text("a extraordinarily b", 5) == ["a", "extraordinarily", "b"]


def test_whitespace_runs():
    assert wrap_text("one   two\nthree\tfour", 9) == ["one two", "three", "four"]


@pytest.mark.parametrize("width", [5, 8, 13, 20, 40])
def test_matches_textwrap(width):
    text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
    expected = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    assert wrap_text(text, width) == expected
