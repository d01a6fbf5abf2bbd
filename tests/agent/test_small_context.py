"""Small contexts degrade gracefully: a tool result larger than the room left is clipped to fit
(the rest stays recallable) and the run goes on; only a system turn + task that alone do not fit
end it, with a message that says what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.events import HistoryCompacted, Notice
from gemma_agent.agent.messages import ModelTurn
from gemma_agent.tools import coding_tools

from .helpers import call


def big_file(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    lines = [f"line {i:05d}: " + "lorem ipsum dolor sit amet " * 10 for i in range(40)]
    (work / "big.txt").write_text("\n".join(lines) + "\nTHE END\n")
    assert (work / "big.txt").stat().st_size > 11_000
    return work


@pytest.mark.parametrize("compactor", ["default", None])
async def test_a_result_larger_than_the_room_left_is_clipped_and_the_run_goes_on(
    tmp_path: Path, compactor: Any
) -> None:
    work = big_file(tmp_path)
    reads = 2 if compactor else 1  # without compaction only the fresh result may be cut
    engine = ScriptedEngine(
        [*[call("read_file", path="big.txt")] * reads, "Read it."], max_model_len=8192
    )
    kw: dict[str, Any] = {} if compactor == "default" else {"compactor": None}
    agent = Agent(
        engine=engine, tools=coding_tools(), workspace=work, max_output_tokens=512,
        sessions_dir=tmp_path / "sessions", **kw,
    )  # fmt: skip
    events = [e async for e in agent.stream("Read big.txt")]
    finished = events[-1]
    assert finished.reason == "final_answer", finished.error
    fits = [e for e in events if isinstance(e, HistoryCompacted) and e.tier == "fit_fresh_results"]
    assert fits and all(e.tokens_after <= 8192 - 512 for e in fits)
    assert any(isinstance(e, Notice) and "too large for the context" in e.message for e in events)
    # Every prompt the engine got fit, with room for the output.
    assert all(len(r.request.prompt_ids) + 512 <= 8192 for r in engine.requests)
    rounds = [m for m in agent.history() if isinstance(m, ModelTurn) and m.tool_results]
    result = rounds[-1].tool_results[0]  # with compaction on, the first round was summarized
    text = str(result.content)
    assert "line 00000" in text and "THE END" in text and "chars clipped" in text
    if compactor:  # the rest is recallable
        assert result.spill_id is not None and "recall_output" in text
    else:  # no compaction, no recall tool: nothing points to one
        assert "recall_output" not in text and "recall_output" not in agent.registry


async def test_a_system_turn_and_task_that_do_not_fit_say_what_to_do(tmp_path: Path) -> None:
    engine = ScriptedEngine(["never"], max_model_len=2048)
    agent = Agent(
        engine=engine, tools=coding_tools(), workspace=tmp_path, sessions_dir=tmp_path / "s"
    )
    result = await agent.run("Do it.")
    assert result.reason == "context_overflow"
    assert result.error is not None
    assert "system turn" in result.error and "--max-model-len" in result.error
    assert "fewer tools" in result.error and not engine.requests
