import pytest

from settings import SettingsError, load

DEFAULTS = {"port": 8000, "ratio": 0.5, "debug": False, "name": "app", "hosts": ["a"]}


def test_no_overrides():
    assert load(DEFAULTS, {}) == DEFAULTS


def test_types():
    env = {"APP_PORT": "9000", "APP_RATIO": "0.25", "APP_DEBUG": "yes", "APP_NAME": "svc", "APP_HOSTS": " x, y ,,z "}
    got = load(DEFAULTS, env)
    assert got == {"port": 9000, "ratio": 0.25, "debug": True, "name": "svc", "hosts": ["x", "y", "z"]}
    assert type(got["port"]) is int and type(got["ratio"]) is float


@pytest.mark.parametrize("text, value", [("true", True), ("FALSE", False), ("1", True), ("0", False), ("On", True), ("off", False), ("No", False)])
def test_bools(text, value):
    assert load(DEFAULTS, {"APP_DEBUG": text})["debug"] is value


def test_unknown_ignored_and_defaults_untouched():
    defaults = dict(DEFAULTS, hosts=["a"])
    got = load(defaults, {"APP_OTHER": "1", "PORT": "1", "APP_HOSTS": "b"})
    assert got["port"] == 8000 and "other" not in got
    assert defaults["hosts"] == ["a"]


@pytest.mark.parametrize("env", [{"APP_PORT": "eighty"}, {"APP_DEBUG": "maybe"}, {"APP_RATIO": "x"}])
def test_errors_name_the_variable(env):
    with pytest.raises(SettingsError, match=next(iter(env))):
        load(DEFAULTS, env)
