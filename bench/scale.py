"""Prefix-cache hits of agent sessions spread over `vllm serve` replicas, by routing.

Starts two real `vllm serve` replicas of the tiny model on loopback (the second on 127.0.0.2:
routers want distinct hosts), runs concurrent agent sessions (tool calls required, so every run
lasts --steps steps) through `OpenAIHTTPEngine`, and prints the share of prompt tokens served
from the prefix cache over steps 2+ for:

* one replica (the reference),
* two replicas, least requests in flight (the routing before session affinity),
* two replicas, session affinity (rendezvous hashing of the session id; the default),
* two replicas behind `vllm-router --policy cache_aware` (when `vllm-router` is installed),

then the request balance (max/min requests per replica) of --balance-sessions sessions under
affinity. Each setup starts from empty caches (``/reset_prefix_cache``, dev mode). Goals: affinity
and vllm-router within 5 points of one replica; balance within 1.5x.

    .venv/bin/python bench/scale.py [--sessions 4] [--steps 10] [--balance-sessions 8]
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
def router(urls: list[str], logs: Path) -> Iterator[str]:
    exe = shutil.which("vllm-router") or str(Path(sys.executable).parent / "vllm-router")
    port = free_port("127.0.0.1")
    command = [
        exe, "--worker-urls", *urls, "--policy", "cache_aware",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with process(command, logs / "vllm-router.log", dict(os.environ)) as proc:
        wait_up(url, proc, "vllm-router", "/v1/models")
        yield url


async def look(path: str) -> str:
    """Look at a file or folder of the project."""
    return f"{path}: 12 lines\n" + "".join(f"line {i}: x = {i}\n" for i in range(12))


async def sessions(engine: OpenAIHTTPEngine, n: int, steps: int, tag: str) -> tuple[int, int, int]:
    """Run ``n`` concurrent sessions; (prompt, cached, steps) over steps 2+."""

    async def one(i: int) -> list[ModelTurn]:
        agent = Agent(
            engine=engine,
            tools=[look],
            tool_choice="required",
            instructions=INSTRUCTIONS,
            max_steps=steps,
            max_output_tokens=48,
            persist=False,
            temperature=1.0,
            seed=i,
        )
        result = await agent.run(f"[{tag} {i}] Find why test_{i} fails and say which file.")
        return [m for m in result.turns if isinstance(m, ModelTurn)]

    runs = await asyncio.gather(*(one(i) for i in range(n)))
    prompt = cached = count = 0
    for turns in runs:
        for turn in turns[1:]:
            if turn.usage is not None:
                prompt += turn.usage.prompt_tokens
                cached += turn.usage.cached_prompt_tokens
                count += 1
    return prompt, cached, count


async def measure(
    name: str, urls: list[str], replicas: list[str], tok: HFTokenizer, args: argparse.Namespace,
    policy: str = "affinity", n: int | None = None,
) -> dict[str, int]:  # fmt: skip
    async with httpx.AsyncClient() as client:
        for url in replicas:
            await client.post(f"{url}/reset_prefix_cache")
    engine = await OpenAIHTTPEngine.connect(
        urls,
        tok,
        variant="tiny",
        model="tiny",
        policy=policy,  # type: ignore[arg-type]
    )
    try:
        started = time.perf_counter()
        prompt, cached, count = await sessions(engine, n or args.sessions, args.steps, name)
        seconds = time.perf_counter() - started
        sent = engine.sent()
    finally:
        await engine.aclose()
    share = cached / prompt if prompt else 0.0
    print(
        f"{name:<34} {share:>7.1%} {cached:>8}/{prompt:<8} {count:>5} {seconds:>6.1f}s  "
        f"requests {list(sent.values())}",
        flush=True,
    )
    return sent


async def main(args: argparse.Namespace) -> None:
    model = tiny_model_path()
    tok = HFTokenizer(model)
    logs = Path(tempfile.mkdtemp(prefix="gemma-agent-scale-"))
    print(f"logs: {logs}")
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(replica(model, "127.0.0.1", args.max_model_len, logs))
        b = stack.enter_context(replica(model, "127.0.0.2", args.max_model_len, logs))
        print(f"{args.sessions} concurrent sessions x {args.steps} steps; cached share of steps 2+")
        print(f"{'setup':<34} {'cached':>7} {'tokens':>17} {'steps':>5} {'time':>7}")
        await measure("one replica (reference)", [a], [a, b], tok, args)
        await measure("2 replicas, least in flight", [a, b], [a, b], tok, args, "least_in_flight")
        await measure("2 replicas, session affinity", [a, b], [a, b], tok, args)
        has_router = (
            shutil.which("vllm-router") or (Path(sys.executable).parent / "vllm-router").exists()
        )
        if has_router and not args.no_router:
            url = stack.enter_context(router([a, b], logs))
            await measure("2 replicas behind vllm-router", [url], [a, b], tok, args)
        else:
            print("vllm-router: not installed (pip install vllm-router), skipped")
        n = args.balance_sessions
        sent = await measure(f"balance: {n} sessions, affinity", [a, b], [a, b], tok, args, n=n)
        counts = list(sent.values())
        print(f"balance max/min = {max(counts) / max(min(counts), 1):.2f} (goal <= 1.5)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--balance-sessions", type=int, default=8)
    p.add_argument("--max-model-len", type=int, default=4096)
    p.add_argument("--no-router", action="store_true")
    asyncio.run(main(p.parse_args()))
