"""Gemma 4 control tokens and the tokenizer interface the rest of the package relies on.

Ids are never hard-coded for real models: a tokenizer resolves them by string (docs/format.md,
'Special tokens').
`ByteTokenizer` is a dependency-free tokenizer (control markers as single ids, everything else
as UTF-8 bytes) used by `ScriptedEngine` and tests; it is not a model's tokenizer.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

BOS = "<bos>"
EOS = "<eos>"
PAD = "<pad>"
TURN_OPEN = "<|turn>"
TURN_CLOSE = "<turn|>"
THINK = "<|think|>"
CHANNEL_OPEN = "<|channel>"
CHANNEL_CLOSE = "<channel|>"
TOOL_OPEN = "<|tool>"
TOOL_CLOSE = "<tool|>"
TOOL_CALL_OPEN = "<|tool_call>"
TOOL_CALL_CLOSE = "<tool_call|>"
TOOL_RESPONSE_OPEN = "<|tool_response>"
TOOL_RESPONSE_CLOSE = "<tool_response|>"
STR = '<|"|>'
IMAGE = "<|image|>"
AUDIO = "<|audio|>"
VIDEO = "<|video|>"

# Every marker that is a single control token (docs/format.md, 'Special tokens'), with its usual
# id. The ids are only used by ByteTokenizer; real tokenizers are asked by string.
CONTROL_TOKENS: dict[str, int] = {
    PAD: 0,
    EOS: 1,
    BOS: 2,
    TOOL_OPEN: 46,
    TOOL_CLOSE: 47,
    TOOL_CALL_OPEN: 48,
    TOOL_CALL_CLOSE: 49,
    TOOL_RESPONSE_OPEN: 50,
    TOOL_RESPONSE_CLOSE: 51,
    STR: 52,
    THINK: 98,
    CHANNEL_OPEN: 100,
    CHANNEL_CLOSE: 101,
    TURN_OPEN: 105,
    TURN_CLOSE: 106,
    IMAGE: 258880,
    AUDIO: 258881,
    VIDEO: 258884,
}

# Generation ends at any of these (docs/format.md, 'Stop tokens').
STOP_MARKERS: tuple[str, ...] = (TURN_CLOSE, TOOL_RESPONSE_OPEN, EOS)


@runtime_checkable
class Tokenizer(Protocol):
    """What the model layer, engines and parser need from a tokenizer."""

    def encode(self, text: str) -> list[int]:
        """Whole-string tokenization without adding BOS; control strings become control ids."""
        ...

    def encode_text(self, text: str) -> list[int]:
        """Tokenize payload text: control strings inside it stay ordinary text, not control ids."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Decode ids; control ids appear as their exact strings."""
        ...

    def control_id(self, marker: str) -> int:
        """The single id of a control marker such as ``<turn|>`` (KeyError if absent)."""
        ...

    def control_marker(self, token_id: int) -> str | None:
        """The control marker for this id, or None for an ordinary token."""
        ...

    def new_decoder(self) -> IncrementalDecoder:
        """A fresh incremental decoder for ordinary (non-control) ids."""
        ...


class IncrementalDecoder(Protocol):
    def step(self, token_id: int) -> str:
        """Feed one ordinary id; returns the text it completes ('' while a character is partial)."""
        ...


class _Utf8Decoder:
    def __init__(self, offset: int) -> None:
        self._offset = offset
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def step(self, token_id: int) -> str:
        return self._decoder.decode(bytes([token_id - self._offset]))


class ByteTokenizer:
    """Control markers as single ids, every other byte as ``BYTE_OFFSET + byte``.

    Deterministic, dependency-free and fast; enough for scripted engines and tests.
    """

    BYTE_OFFSET = 1000

    def __init__(self) -> None:
        self._by_id = {i: s for s, i in CONTROL_TOKENS.items()}
        # Longest first so that e.g. "<|tool_call>" wins over a shorter marker prefix.
        self._markers = sorted(CONTROL_TOKENS, key=len, reverse=True)

    def encode_text(self, text: str) -> list[int]:
        off = self.BYTE_OFFSET
        return [off + b for b in text.encode("utf-8")]

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        i = 0
        start = 0
        while i < len(text):
            if text[i] == "<":
                for m in self._markers:
                    if text.startswith(m, i):
                        ids += self.encode_text(text[start:i])
                        ids.append(CONTROL_TOKENS[m])
                        i += len(m)
                        start = i
                        break
                else:
                    i += 1
            else:
                i += 1
        ids += self.encode_text(text[start:])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        out: list[str] = []
        buf = bytearray()
        for t in ids:
            marker = self._by_id.get(t)
            if marker is None:
                buf.append(t - self.BYTE_OFFSET)
                continue
            if buf:
                out.append(buf.decode("utf-8", errors="replace"))
                buf.clear()
            out.append(marker)
        if buf:
            out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def control_id(self, marker: str) -> int:
        return CONTROL_TOKENS[marker]

    def control_marker(self, token_id: int) -> str | None:
        return self._by_id.get(token_id)

    def new_decoder(self) -> IncrementalDecoder:
        return _Utf8Decoder(self.BYTE_OFFSET)
