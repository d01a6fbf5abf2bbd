class SettingsError(ValueError):
    """A setting could not be read."""


def load(defaults: dict, environ: dict) -> dict:
    """The settings: defaults, overridden by APP_* variables of environ."""
    return dict(defaults)
