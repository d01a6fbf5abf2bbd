"""A generation cut off (max_tokens) inside a tool call is re-decoded, never taken as the answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent import Agent, ScriptedEngine, tool


@tool
def echo(text: str) -> str:
    """Echo the text."""
    return text


@pytest.mark.parametrize(
    "cut",
    [
        "Let me look.<|tool_call>call:echo_and_more_words_here{text:1}",  # cut in the name
        'Let me look.<|tool_call>call:echo{text:<|"|>a long text that never ends',  # in the args
    ],
)
async def test_output_cut_off_inside_a_call_is_redecoded(tmp_path: Path, cut: str) -> None:
    engine = ScriptedEngine([cut, "done"])
    agent = Agent(engine=engine, workspace=tmp_path, tools=[echo], max_output_tokens=30)
    result = await agent.run("go")
    assert result.output == "done" and len(engine.requests) == 2
    assert engine.requests[1].prompt_ids == engine.requests[0].prompt_ids  # a re-decode
