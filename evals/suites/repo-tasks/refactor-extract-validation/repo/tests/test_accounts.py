import pytest

import accounts
from accounts import InvalidEmail, change_email, register


@pytest.fixture(autouse=True)
def clean():
    accounts.USERS.clear()


def test_register_normalizes():
    assert register("ann", "  Ann@Example.COM ") == "ann@example.com"
    assert accounts.USERS["ann"] == "ann@example.com"


@pytest.mark.parametrize("bad", ["no-at", "a@@b.c", "@x.org", "a@nodot", "a@.x", "a@x."])
def test_register_rejects(bad):
    with pytest.raises(InvalidEmail):
        register("x", bad)


def test_change_email():
    register("bob", "bob@a.org")
    assert change_email("bob", "BOB@b.org") == "bob@b.org"
    with pytest.raises(KeyError):
        change_email("nobody", "n@b.org")
    with pytest.raises(InvalidEmail):
        change_email("bob", "broken")
