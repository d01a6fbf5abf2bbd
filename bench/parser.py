"""Benchmark the Gemma 4 output parser (prints figures; nothing is asserted).

Whole-text parse and token-by-token streaming parse of 100 KB and 1 MB tool-call-heavy outputs
and of ONE call carrying 100 KB (a write_file of a big file), each the best of --repeat runs, in
wall time and in CPU time of this process (steadier on a shared machine), with the load average.
With the tiny model's tokenizer at hand (agent/engines/tiny.py), the same outputs are also
streamed by id, one token id per feed_ids call. Where vLLM imports, its Gemma 4 parser runs on
the same deltas side by side (it is much slower: the run is capped per case).

    .venv/bin/python bench/parser.py [--repeat N] [--vllm-budget SECONDS] [--no-ids]
"""

from __future__ import annotations

import argparse
import os
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


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, float]:
    """Best wall time and best CPU time of ``repeat`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        c1, t1 = time.process_time(), time.perf_counter()
        wall, cpu = min(wall, t1 - t0), min(cpu, c1 - c0)
    return wall, cpu


def ours_whole(text: str) -> Any:
    return parse_output(text, TOOLS)


def ours_stream(deltas: list[str]) -> Any:
    p = StreamParser(TOOLS)
    for d in deltas:
        p.feed_text(d)
    return p.finish()


def ours_stream_ids(ids: list[list[int]], tokenizer: Any) -> Any:
    p = StreamParser(TOOLS, tokenizer=tokenizer)
    for one in ids:
        p.feed_ids(one)
    return p.finish()


def tiny_tokenizer() -> Any:
    """The tiny Gemma 4 model's HF tokenizer when it is built or can be (None otherwise)."""
    try:
        from gemma_agent.agent.engines.tiny import tiny_model_path
        from gemma_agent.agent.engines.tokenizer import HFTokenizer

        return HFTokenizer(tiny_model_path())
    except Exception as e:
        print(f"tiny tokenizer not available ({type(e).__name__}: {e}); skipping the id runs")
        return None


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


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (the best is shown)")
    ap.add_argument(
        "--vllm-budget", type=float, default=60.0, help="seconds per vLLM case (0: skip)"
    )
    ap.add_argument("--no-ids", action="store_true", help="skip the by-id runs")
    args = ap.parse_args()
    cases = [
        ("tool-heavy 100 KB", tool_heavy_output(100_000)),
        ("tool-heavy 1 MB", tool_heavy_output(1_000_000)),
        ("one call of 100 KB", one_big_call(100_000)),
    ]
    vllm = vllm_runner() if args.vllm_budget > 0 else None
    tokenizer = None if args.no_ids else tiny_tokenizer()
    stream_cpu: dict[str, float] = {}
    print(load())
    print(f"mean delta: tokens of ~{len(cases[1][1]) / len(token_deltas(cases[1][1])):.1f} chars")
    print(
        f"{'case':<20} {'MB':>5} {'deltas':>7} | {'whole MB/s':>10} {'stream MB/s':>11}"
        f" {'ratio':>5} | {'CPU: whole':>10} {'stream':>6} {'ratio':>5} {'ns/delta':>8}"
    )
    for name, text in cases:
        deltas = token_deltas(text)
        mb = len(text.encode()) / 1e6
        whole, whole_cpu = timed(lambda text=text: ours_whole(text), args.repeat)
        stream, cpu = timed(lambda deltas=deltas: ours_stream(deltas), args.repeat)
        assert ours_stream(deltas) == ours_whole(text)
        stream_cpu[name] = cpu
        print(
            f"{name:<20} {mb:>5.2f} {len(deltas):>7} | {mb / whole:>10.1f} {mb / stream:>11.1f}"
            f" {stream / whole:>5.2f} | {mb / whole_cpu:>10.1f} {mb / cpu:>6.1f}"
            f" {cpu / whole_cpu:>5.2f} {cpu / len(deltas) * 1e9:>8.0f}"
        )
        if tokenizer is not None:
            ids = [[i] for i in tokenizer.encode(text)]
            wall_ids, cpu_ids = timed(lambda ids=ids: ours_stream_ids(ids, tokenizer), args.repeat)
            assert ours_stream_ids(ids, tokenizer) == ours_whole(text)
            print(
                f"{'  by id (tiny BPE)':<20} {mb:>5.2f} {len(ids):>7} | {'':>10} {mb / wall_ids:>11.1f}"
                f" {'':>5} | {'':>10} {mb / cpu_ids:>6.1f} {'':>5} {cpu_ids / len(ids) * 1e9:>8.0f}"
            )
        if vllm is not None:
            secs = vllm(deltas, args.vllm_budget)
            if secs is not None:
                print(
                    f"    vLLM Gemma4Parser streamed: {mb / secs:.3f} MB/s ({secs:.2f} s); ours is {secs / stream:.0f}x faster"
                )
    ratio = stream_cpu["tool-heavy 1 MB"] / stream_cpu["tool-heavy 100 KB"]
    print(f"streaming CPU cost 1 MB / 100 KB: {ratio:.1f}x (linear = ~10x)")
    print(load())


if __name__ == "__main__":
    main()
