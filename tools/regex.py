"""Regular expressions made from the model's input: compiled, or a ``ToolError`` it can read."""

from __future__ import annotations

import re
import warnings

from .errors import ToolError


def compile_regex(regex: str, flags: int = 0, *, what: str) -> re.Pattern[str]:
    """Compile a regular expression made from the model's input, or a ToolError naming
    ``what`` (e.g. "regular expression 'a(b'") and why."""
    try:
        with warnings.catch_warnings():
            # "Possible nested set" and the like: valid today, and not the model's concern.
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(regex, flags)
    except re.error as exc:
        raise ToolError(f"invalid {what}: {exc}") from None
    except (OverflowError, RecursionError) as exc:  # a{99999999999}, thousands of '('
        raise ToolError(f"invalid {what}: it is too large or nested too deeply ({exc})") from None


__all__ = ["compile_regex"]
