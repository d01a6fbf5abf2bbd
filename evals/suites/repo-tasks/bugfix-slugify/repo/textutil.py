"""Small text helpers."""


def slugify(text: str) -> str:
    """Return a URL slug for ``text``: lowercase words joined by single hyphens."""
    out = []
    for ch in text.lower():
        if ch.isalnum():
            out.append(ch)
        else:
            out.append("-")
    return "".join(out)


def title_case(text: str) -> str:
    return " ".join(w.capitalize() for w in text.split())
