"""Small text helpers."""

import re
import unicodedata


def slugify(text: str) -> str:
    """Return a URL slug for ``text``: lowercase words joined by single hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def title_case(text: str) -> str:
    return " ".join(w.capitalize() for w in text.split())
