from datetime import date


def _parse(text):
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"not a YYYY-MM-DD date: {text!r}")
    return date.fromisoformat(text)


def days_between(a, b):
    """Days from ISO date a to ISO date b."""
    return (_parse(b) - _parse(a)).days
