"""Benchmark the Gemma 4 output parser (prints figures; nothing is asserted).

Whole-text parse and token-by-token streaming parse of 100 KB and 1 MB tool-call-heavy outputs
and of ONE call carrying 100 KB (a write_file of a big file). Where vLLM imports, its Gemma 4
parser runs on the same deltas side by side (it is much slower: the run is capped per case).

    .venv/bin/python bench/parser.py [--vllm-budget SECONDS]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root is the package

try:
    from gemma_agent.prompts import StreamParser, parse_output
    from gemma_agent.prompts import tokens as T
except ImportError:  # running from a checkout that is not installed
    raise SystemExit("install the package first: make install (or pip install -e .)") from None

TOOLS = [
    {"type": "function", "function": {"name": "write_file", "description": "Write a file.", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"]}}},
    {"type": "function", "function": {"name": "grep", "description": "Search.", "parameters": {
        "type": "object", "properties": {"pattern": {"type": "string"}, "max_hits": {"type": "integer"},
                                         "paths": {"type": "array", "items": {"type": "string"}},
                                         "regex": {"type": "boolean"}}, "required": ["pattern"]}}},
    {"type": "function", "function": {"name": "read_file", "description": "Read.", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}, "offset": {"type": "integer"}}}}},
]  # fmt: skip

CODE = '''def handler(event, context):
    """Handle {event} with care: a, b = 1, 2 -> {'k': [1, 2]}"""
    for i in range(10):
        if event.get("x") == i:
            return {"status": 200, "body": f"{i}: ok, done"}
    return None
'''


def tool_heavy_output(size: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    S = T.STR
    parts: list[str] = []
    total = 0
    while total < size:
        block = rng.choice(["write", "grep", "read", "think"])
        if block == "write":
            body = CODE * rng.randint(1, 6)
            piece = f"{T.TOOL_CALL_OPEN}call:write_file{{content:{S}{body}{S},path:{S}src/m{rng.randint(1, 99)}.py{S}}}{T.TOOL_CALL_CLOSE}"
        elif block == "grep":
            piece = (f"{T.TOOL_CALL_OPEN}call:grep{{max_hits:{rng.randint(1, 500)},paths:[{S}src{S},{S}tests{S}],"
                     f"pattern:{S}def (\\w+)\\({S},regex:true}}{T.TOOL_CALL_CLOSE}")  # fmt: skip
        elif block == "read":
            piece = f"{T.TOOL_CALL_OPEN}call:read_file{{offset:{rng.randint(0, 900)},path:{S}README.md{S}}}{T.TOOL_CALL_CLOSE}"
        else:
            piece = f"{T.CHANNEL_OPEN}thought\nI should look at the handler, then write the fix.\n{T.CHANNEL_CLOSE}Checking.\n"
        parts.append(piece)
        total += len(piece)
    parts.append(T.TOOL_RESPONSE_OPEN)
    return "".join(parts)


def one_big_call(size: int) -> str:
    body = (CODE * (size // len(CODE) + 1))[:size]
    return f"{T.TOOL_CALL_OPEN}call:write_file{{content:{T.STR}{body}{T.STR},path:{T.STR}big.py{T.STR}}}{T.TOOL_CALL_CLOSE}{T.TOOL_RESPONSE_OPEN}"


_MARKERS = "|".join(re.escape(m) for m in sorted(T.CONTROL_TOKENS, key=len, reverse=True))
# BPE-like pieces: control tokens whole, words of up to 6 chars with a leading space, single symbols.
_TOKEN_RE = re.compile(_MARKERS + r"| ?[A-Za-z0-9_]{1,6}|\s+|.", re.S)


def token_deltas(text: str) -> list[str]:
    deltas = _TOKEN_RE.findall(text)
    assert "".join(deltas) == text
    return deltas


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ours_whole(text: str) -> Any:
    return parse_output(text, TOOLS)


def ours_stream(deltas: list[str]) -> Any:
    p = StreamParser(TOOLS)
    for d in deltas:
        p.feed_text(d)
    return p.finish()


def vllm_runner() -> Callable[[list[str], float], float | None] | None:
    """A function running vLLM's Gemma4Parser over deltas (None when vllm does not import)."""
    try:
        import logging

        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
        from vllm.parser.gemma4 import Gemma4Parser
    except Exception as e:
        print(f"vLLM parser not available ({type(e).__name__}: {e}); skipping the comparison")
        return None
    logging.getLogger("vllm").setLevel(logging.ERROR)
    vocab = dict(T.CONTROL_TOKENS)  # grows: every distinct delta becomes one vocabulary entry
    pieces = {i: m for m, i in vocab.items()}

    def piece_id(piece: str) -> int:
        if piece not in vocab:
            vocab[piece] = 300_000 + len(vocab)
            pieces[vocab[piece]] = piece
        return vocab[piece]

    class PieceTokenizer:
        """The little of a tokenizer the parser reads: the vocabulary and decode."""

        def get_vocab(self) -> dict[str, int]:
            return vocab

        def convert_tokens_to_ids(self, tokens: Any) -> Any:
            return [vocab.get(t) for t in tokens] if isinstance(tokens, list) else vocab.get(tokens)

        def decode(self, ids: Any, **_: Any) -> str:
            return "".join(pieces[i] for i in ids)

    request = ChatCompletionRequest(
        model="gemma", messages=[{"role": "user", "content": "go"}], tools=TOOLS
    )

    def run(deltas: list[str], budget: float) -> float | None:
        ids = [piece_id(d) for d in deltas]
        parser = Gemma4Parser(PieceTokenizer(), request.tools)
        t0 = time.perf_counter()
        last = len(deltas) - 1
        for i, d in enumerate(deltas):
            parser.parse_delta(d, [ids[i]], request, finished=i == last)
            if time.perf_counter() - t0 > budget:
                print(
                    f"    vLLM: gave up after {budget:.0f} s at {i / len(deltas):.1%} of the deltas"
                )
                return None
        return time.perf_counter() - t0

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--vllm-budget", type=float, default=60.0, help="seconds per vLLM case (0: skip)"
    )
    args = ap.parse_args()
    cases = [
        ("tool-heavy 100 KB", tool_heavy_output(100_000)),
        ("tool-heavy 1 MB", tool_heavy_output(1_000_000)),
        ("one call of 100 KB", one_big_call(100_000)),
    ]
    vllm = vllm_runner() if args.vllm_budget > 0 else None
    stream_secs: dict[str, float] = {}
    print(f"mean delta: tokens of ~{len(cases[1][1]) / len(token_deltas(cases[1][1])):.1f} chars")
    print(
        f"{'case':<20} {'MB':>6} {'deltas':>8} {'whole MB/s':>11} {'stream MB/s':>12} {'stream/whole':>13}"
    )
    for name, text in cases:
        deltas = token_deltas(text)
        mb = len(text.encode()) / 1e6
        whole = timed(lambda text=text: ours_whole(text))
        stream = timed(lambda deltas=deltas: ours_stream(deltas))
        assert ours_stream(deltas) == ours_whole(text)
        stream_secs[name] = stream
        print(
            f"{name:<20} {mb:>6.2f} {len(deltas):>8} {mb / whole:>11.1f} {mb / stream:>12.1f} {stream / whole:>13.2f}"
        )
        if vllm is not None:
            secs = vllm(deltas, args.vllm_budget)
            if secs is not None:
                print(
                    f"    vLLM Gemma4Parser streamed: {mb / secs:.3f} MB/s ({secs:.2f} s); ours is {secs / stream:.0f}x faster"
                )
    ratio = stream_secs["tool-heavy 1 MB"] / stream_secs["tool-heavy 100 KB"]
    print(f"streaming cost 1 MB / 100 KB: {ratio:.1f}x (linear = ~10x)")


if __name__ == "__main__":
    main()
