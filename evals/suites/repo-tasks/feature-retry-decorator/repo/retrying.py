import time


def retry(times=3, exceptions=(Exception,), delay=0.0, sleep=time.sleep):
    """Retry the decorated function on the given exceptions."""
    raise NotImplementedError
