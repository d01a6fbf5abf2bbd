from billing import invoice_line


def test_invoice_line():
    assert invoice_line([(2.5, 2), (1.0, 3)], tax_rate=0.1) == "TOTAL 8.80"
