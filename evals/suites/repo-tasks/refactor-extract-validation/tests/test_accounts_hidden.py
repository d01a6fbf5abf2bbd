import inspect

import pytest

import accounts


def test_validate_email_public():
    assert accounts.validate_email(" X@Y.org ") == "x@y.org"
    with pytest.raises(accounts.InvalidEmail):
        accounts.validate_email("a@nodot")


def test_no_duplicated_validation():
    for fn in (accounts.register, accounts.change_email):
        src = inspect.getsource(fn)
        assert "validate_email(" in src
        assert 'count("@")' not in src and ".split(\"@\")" not in src
