def get_path(data, path, default=None):
    """Read a value from nested dicts and lists by a dotted path."""
    raise NotImplementedError
