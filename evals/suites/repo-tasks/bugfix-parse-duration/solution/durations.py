import re

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"\s*(\d+)([a-z])\s*")


def parse_duration(text: str) -> int:
    """Seconds in a duration such as "1h30m"."""
    text = text.lower()
    if not text.strip():
        raise ValueError("empty duration")
    total, pos = 0, 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or m.group(2) not in UNITS:
            raise ValueError(f"invalid duration: {text!r}")
        total += int(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    return total
