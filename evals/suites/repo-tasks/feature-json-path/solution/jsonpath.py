import re

_STEP = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")
_MISSING = object()


def _parse(path):
    steps = []
    pos = 0
    expect_key = True
    while pos < len(path):
        if path[pos] == ".":
            if pos == 0 or pos == len(path) - 1 or path[pos + 1] == ".":
                raise ValueError(f"malformed path: {path!r}")
            pos += 1
            expect_key = True
            continue
        m = _STEP.match(path, pos)
        if not m or (m.group(1) is not None and not expect_key):
            raise ValueError(f"malformed path: {path!r}")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        expect_key = False
        pos = m.end()
    return steps


def get_path(data, path, default=None):
    """Read a value from nested dicts and lists by a dotted path."""
    current = data
    for step in _parse(path):
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return default
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return default
            current = current[step]
    return current
