"""HFTokenizer: ``prompts.tokens.Tokenizer`` over a Hugging Face ``tokenizer.json``.

Uses the ``tokenizers`` library only (no transformers, no torch), so the HTTP engine and the
model layer can tokenize without the heavy engine installed. Control ids are resolved by string
and checked to be single tokens at load time (docs/format.md, 'Special tokens').
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...prompts import tokens as T
from ...prompts.tokens import IncrementalDecoder

# Markers every Gemma 4 tokenizer must hold as single tokens; the media ones are optional
# (text-only checkpoints may lack them).
REQUIRED_MARKERS: tuple[str, ...] = tuple(
    m for m in T.CONTROL_TOKENS if m not in (T.IMAGE, T.AUDIO, T.VIDEO)
)


class _StreamDecoder:
    def __init__(self, tokenizer: Any) -> None:
        from tokenizers.decoders import DecodeStream

        self._tokenizer = tokenizer
        self._stream = DecodeStream(skip_special_tokens=False)

    def step(self, token_id: int) -> str:
        return self._stream.step(self._tokenizer, token_id) or ""


class HFTokenizer:
    """A Gemma 4 tokenizer from a ``tokenizer.json`` file or a model folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from tokenizers import Tokenizer as _Tokenizer

        p = Path(path)
        file = p / "tokenizer.json" if p.is_dir() else p
        if not file.is_file():
            raise ConfigError(
                f"no tokenizer.json at {p}: point --model at a Hugging Face checkpoint folder "
                "that contains tokenizer.json (or use --model tiny)"
            )
        self.path = file
        self._tok = _Tokenizer.from_file(str(file))
        # A second instance for payload text: control strings stay ordinary text.
        self._plain = _Tokenizer.from_file(str(file))
        self._plain.encode_special_tokens = True
        self._ids: dict[str, int] = {}
        for marker in T.CONTROL_TOKENS:
            i = self._tok.token_to_id(marker)
            if i is not None:
                self._ids[marker] = i
        missing = [m for m in REQUIRED_MARKERS if m not in self._ids]
        if missing:
            raise ConfigError(
                f"{file} is not a Gemma 4 tokenizer: it lacks the control tokens {missing}. "
                "Use a Gemma 4 checkpoint (google/gemma-4-*) or --model tiny"
            )
        for marker, i in self._ids.items():
            got = self._tok.encode(marker, add_special_tokens=False).ids
            if got != [i]:
                raise ConfigError(
                    f"{file}: control token {marker!r} does not encode as the single id {i} "
                    f"(got {got}); the tokenizer is not usable for Gemma 4"
                )
        self._markers: dict[int, str] = {i: m for m, i in self._ids.items()}

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    @property
    def bos_id(self) -> int:
        return self._ids[T.BOS]

    def stop_ids(self) -> list[int]:
        """Ids of the stop markers (docs/format.md, 'Stop tokens'), resolved by string."""
        return [self._ids[m] for m in T.STOP_MARKERS]

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_text(self, text: str) -> list[int]:
        return list(self._plain.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=False))

    def control_id(self, marker: str) -> int:
        return self._ids[marker]

    def control_marker(self, token_id: int) -> str | None:
        return self._markers.get(token_id)

    def new_decoder(self) -> IncrementalDecoder:
        return _StreamDecoder(self._tok)

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)
