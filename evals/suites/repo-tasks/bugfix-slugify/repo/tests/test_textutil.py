from textutil import slugify, title_case


def test_simple():
    assert slugify("Hello") == "hello"


def test_title_case():
    assert title_case("hello big world") == "Hello Big World"
