"""The eval runner on two replicas (`gemma-agent eval --engine http --base-url A --base-url B
--concurrency 32`): the attempts spread over both, and each attempt's session stays on one.

The replicas are fake `vllm serve` processes on loopback (threads that answer a tool call, then
a final answer), so the test checks the routing of a whole eval run in a few seconds."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter

from gemma_agent.cli import main

from ...evals.helpers import adder_suite
from .fakeserver import Answer, FakeReplica, Seen, Stream, completion, serve_fake

TASKS, SAMPLES = 4, 8  # 32 sessions: all on one replica by chance has odds of 2**-31


def test_eval_sessions_spread_over_replicas_and_stay_on_one(tiny_model_path, tmp_path) -> None:
    from gemma_agent.agent.engines.tokenizer import HFTokenizer

    tok = HFTokenizer(tiny_model_path)
    call = tok.encode("<|tool_call>call:list_dir{}<tool_call|>")
    final = tok.encode("done")
    steps: Counter[str] = Counter()  # requests per session, over both replicas
    lock = threading.Lock()

    def answer(seen: Seen) -> Answer:
        with lock:
            key = seen.headers["x-session-id"]
            steps[key] += 1
            first = steps[key] == 1
        return Stream(completion(call if first else final))  # one tool call, then the answer

    suite = adder_suite(tmp_path / "suite", TASKS)
    out = tmp_path / "out"
    with contextlib.ExitStack() as stack:
        replicas: list[FakeReplica] = [
            stack.enter_context(contextlib.contextmanager(serve_fake)(answer, host))
            for host in ("127.0.0.1", "127.0.0.2")
        ]
        code = main(
            [
                "eval",
                str(suite),
                "--engine",
                "http",
                "--model",
                str(tiny_model_path),
                "--variant",
                "tiny",
                *[a for r in replicas for a in ("--base-url", r.url)],
                "--concurrency",
                str(TASKS * SAMPLES),
                "--samples",
                str(SAMPLES),
                "--output",
                str(out),
                "--no-progress",
            ]
        )
    assert code == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == TASKS * SAMPLES
    assert all(r["steps"] == 2 for r in results), results  # the call, then the answer

    homes: dict[str, set[int]] = {}
    for n, replica in enumerate(replicas):
        for seen in replica.seen:
            homes.setdefault(seen.headers["x-session-id"], set()).add(n)
    assert len(homes) == TASKS * SAMPLES  # one session per attempt
    assert all(len(h) == 1 for h in homes.values()), homes  # each stayed on its replica
    assert all(steps[k] == 2 for k in homes)
    per_replica = Counter(n for h in homes.values() for n in h)
    assert set(per_replica) == {0, 1}, per_replica  # both replicas served sessions
