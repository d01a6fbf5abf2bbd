import inspect
import warnings

import pytest

import billing


def test_new_name():
    assert billing.calculate_total([(2.5, 2), (1.0, 3)], tax_rate=0.1) == 8.8
    assert billing.calculate_total(items=[(1.0, 1)]) == 1.0


def test_alias_warns():
    with pytest.warns(DeprecationWarning, match="calculate_total"):
        assert billing.calc_tot([(1.0, 2)]) == 2.0
    with pytest.warns(DeprecationWarning):
        billing.calc_tot([(1.0, 2)])


def test_callers_use_new_name():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert billing.invoice_line([(1.0, 1)]) == "TOTAL 1.00"
    assert "calculate_total(" in inspect.getsource(billing.invoice_line)
