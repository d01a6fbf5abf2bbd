UNITS = {"h": 3600, "m": 60}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as "1h30m"."""
    total = 0
    for i in range(0, len(text), 2):
        number, unit = text[i], text[i + 1]
        total += int(number) * UNITS[unit]
    return total
