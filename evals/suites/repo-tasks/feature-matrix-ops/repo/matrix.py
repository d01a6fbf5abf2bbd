class Matrix:
    def __init__(self, rows):
        rows = [list(r) for r in rows]
        if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
            raise ValueError("a matrix needs equal-length, non-empty rows")
        self.rows = rows

    def __repr__(self):
        return f"Matrix({self.rows!r})"
