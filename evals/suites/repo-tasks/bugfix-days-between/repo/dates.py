def _parse(text):
    year, month, day = (int(x) for x in text.split("-"))
    return year, month, day


def days_between(a, b):
    """Days from ISO date a to ISO date b."""
    ya, ma, da = _parse(a)
    yb, mb, db = _parse(b)
    return (yb - ya) * 360 + (mb - ma) * 30 + (db - da)
