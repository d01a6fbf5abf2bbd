def totals_by_category(path):
    """Sum the amount column of a CSV file per category."""
    totals = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for line in lines[1:]:
        name, category, amount = line.split(",")
        totals[category] = totals.get(category, 0.0) + float(amount)
    return totals
