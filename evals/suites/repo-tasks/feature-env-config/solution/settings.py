class SettingsError(ValueError):
    """A setting could not be read."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _convert(default, text):
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, list):
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def load(defaults: dict, environ: dict) -> dict:
    """The settings: defaults, overridden by APP_* variables of environ."""
    result = {k: (list(v) if isinstance(v, list) else v) for k, v in defaults.items()}
    for key, default in defaults.items():
        var = f"APP_{key.upper()}"
        if var in environ:
            try:
                result[key] = _convert(default, environ[var])
            except ValueError as e:
                raise SettingsError(f"{var}: {e}") from e
    return result
