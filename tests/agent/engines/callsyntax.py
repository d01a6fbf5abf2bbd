"""A strict reader of Gemma 4 tool calls for engine tests (independent of prompts/)."""

from __future__ import annotations

import re
from typing import Any

S = '<|"|>'
_NUM = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Reader:
    def __init__(self, text: str) -> None:
        self.t = text
        self.i = 0

    def expect(self, s: str) -> None:
        if not self.t.startswith(s, self.i):
            raise ValueError(f"expected {s!r} at {self.i}: {self.t[self.i : self.i + 30]!r}")
        self.i += len(s)

    def value(self) -> Any:
        t, i = self.t, self.i
        if t.startswith(S, i):
            j = t.index(S, i + len(S))
            self.i = j + len(S)
            return t[i + len(S) : j]
        if t.startswith("{", i):
            return self.mapping()
        if t.startswith("[", i):
            self.i += 1
            out = []
            if not t.startswith("]", self.i):
                out.append(self.value())
                while t.startswith(",", self.i):
                    self.i += 1
                    out.append(self.value())
            self.expect("]")
            return out
        for word, v in (("true", True), ("false", False), ("null", None)):
            if t.startswith(word, i):
                self.i += len(word)
                return v
        m = _NUM.match(t, i)
        if not m:
            raise ValueError(f"bad value at {i}: {t[i : i + 30]!r}")
        self.i = m.end()
        s = m.group(0)
        return float(s) if any(c in s for c in ".eE") else int(s)

    def mapping(self) -> dict[str, Any]:
        self.expect("{")
        out: dict[str, Any] = {}
        if not self.t.startswith("}", self.i):
            while True:
                m = _KEY.match(self.t, self.i)
                if not m:
                    raise ValueError(f"bad key at {self.i}")
                self.i = m.end()
                self.expect(":")
                out[m.group(0)] = self.value()
                if not self.t.startswith(",", self.i):
                    break
                self.i += 1
        self.expect("}")
        return out


def read_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Calls of an output that must be `[thought] call+ <|tool_response>` exactly."""
    r = Reader(text)
    if text.startswith("<|channel>"):
        r.i = text.index("<channel|>") + len("<channel|>")
    calls = []
    while r.t.startswith("<|tool_call>", r.i):
        r.expect("<|tool_call>call:")
        j = r.t.index("{", r.i)
        name = r.t[r.i : j]
        r.i = j
        args = r.mapping()
        r.expect("<tool_call|>")
        calls.append((name, args))
    r.expect("<|tool_response>")
    if r.i != len(text) or not calls:
        raise ValueError(f"trailing text or no call: {text[r.i :]!r}")
    return calls
