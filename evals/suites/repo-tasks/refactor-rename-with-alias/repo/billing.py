def calc_tot(itms, tax_rate=0.0):
    """Total price of (price, quantity) pairs, tax included, rounded to cents."""
    subtotal = sum(price * qty for price, qty in itms)
    return round(subtotal * (1 + tax_rate), 2)


def invoice_line(itms, tax_rate=0.0):
    return f"TOTAL {calc_tot(itms, tax_rate):.2f}"
