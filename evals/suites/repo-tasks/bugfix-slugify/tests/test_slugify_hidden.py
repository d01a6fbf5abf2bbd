import pytest

from textutil import slugify


@pytest.mark.parametrize(
    "text, slug",
    [
        ("Hello, World!", "hello-world"),
        ("  leading and trailing  ", "leading-and-trailing"),
        ("multiple   spaces -- and dashes", "multiple-spaces-and-dashes"),
        ("Café au lait", "cafe-au-lait"),
        ("Ünïcödé Straße", "unicode-strae"),
        ("already-a-slug", "already-a-slug"),
        ("Version 2.0 released", "version-2-0-released"),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug
