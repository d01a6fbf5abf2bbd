import csv


def totals_by_category(path):
    """Sum the amount column of a CSV file per category."""
    totals = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("category") and not row.get("amount"):
                continue
            category = row["category"]
            totals[category] = totals.get(category, 0.0) + float(row["amount"])
    return {k: round(v, 2) for k, v in totals.items()}
