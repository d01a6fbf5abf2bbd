"""Sub-agents on the real CPU vLLM engine with the tiny random model (marked ``engine``).

vLLM has had Gemma 4 bugs under concurrent requests (``<pad>`` tokens, a lost EOS). A parent
whose own turns are scripted starts four children through the real ``task`` tool; the children
run on the real engine, greedy with a fixed seed. Run concurrently (``max_subagents=4``) and one
by one (``max_subagents=1``), every child request must get the same prompt and the same output
token ids, every child the same ending and answer, and no output may hold a pad token.
The children's calls are grammar-constrained (``tool_choice="required"``) with free-text string
arguments (``final_answer``, ``recall_output``), so most tokens are a real argmax over the
vocabulary; a call cut at ``max_output_tokens`` is re-decoded, repeating a request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.agent.engines.base import EngineDelta, EngineRequest
from gemma_agent.agent.subagents import AgentType
from gemma_agent.events import RunFinished, SubagentEvent, ToolCallFinished, ToolCallStarted
from gemma_agent.prompts import tokens as T

pytestmark = [
    pytest.mark.engine,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(300),
]

call = ScriptedEngine.tool_call
PARENT = "You are the parent. Delegate the work."
TAGS = ("a", "b", "c", "d")
# Different tasks: each child's greedy output is its own, so a mix-up between concurrent
# requests would show.
TASKS = {
    "a": "TASK-a Look around the kitchen and report what you see.",
    "b": "TASK-b Peek at the colors of the hall, then say which one.",
    "c": "TASK-c Explore the garden quickly.",
    "d": "TASK-d Find out whether the cellar is red or green and report it in detail.",
}
PROBE = AgentType(
    "probe",
    "Looks around a place and reports.",
    "You are an explorer working for another agent. Look, peek, then report briefly.",
    tools=("look", "peek"),
    read_only=True,
    max_steps=2,
)


@tool(read_only=True)
def look() -> str:
    """Look around."""
    return "a table, two chairs and a lamp"


@tool(read_only=True)
def peek(color: Literal["red", "green"]) -> str:
    """Peek at a color."""
    return f"it is {color}"


@dataclasses.dataclass(frozen=True)
class Exchange:
    prompt: tuple[int, ...]
    output: tuple[int, ...]
    finish: str | None


class ParentScriptedEngine:
    """The parent's requests (its instructions are in the prompt) are answered from a script;
    every other request (a child's) goes to the real engine, recorded under its TASK tag."""

    def __init__(self, real: Any, script: list[str]) -> None:
        self.real = real
        self.info = real.info
        self.tokenizer = real.tokenizer
        self.script = ScriptedEngine(
            script, tokenizer=real.tokenizer, variant=real.info.variant,
            max_model_len=real.info.max_model_len, supports_grammar=True,
        )  # fmt: skip
        self.children: dict[str, list[Exchange]] = {}
        self.in_flight = self.max_in_flight = 0

    def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        text = self.tokenizer.decode(list(request.prompt_ids))
        if PARENT in text:  # the four task calls need more than a child's output budget
            return self.script.generate(dataclasses.replace(request, max_tokens=4096))
        found = re.search(r"TASK-(\w)", text)
        assert found, text[-400:]
        return self._child(found.group(1), request)

    async def _child(self, tag: str, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        prompt = tuple(request.prompt_ids)
        out: list[int] = []
        finish = None
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            async for delta in self.real.generate(request):
                out += delta.token_ids
                finish = delta.finish_reason or finish
                yield delta
        finally:
            self.in_flight -= 1
        self.children.setdefault(tag, []).append(Exchange(prompt, tuple(out), finish))

    def count_tokens(self, text: str) -> int:
        return int(self.real.count_tokens(text))

    async def aclose(self) -> None:
        pass  # the session's engine is the fixture's to close


async def run_parent(engine: Any, workspace: Path, *, max_subagents: int) -> dict[str, Any]:
    """One parent run whose first turn makes the four task calls; per tag: the child's
    exchanges with the engine, its ending, and the result its task call returned."""
    script = [
        "".join(call("task", agent_type="probe", description=f"probe {t}", prompt=TASKS[t])
                for t in TAGS),
        call("final_answer", answer="All four reported."),
    ]  # fmt: skip
    wrapped = ParentScriptedEngine(engine, script)
    agent = Agent(
        engine=wrapped,
        tools=[look, peek],
        instructions=PARENT,
        workspace=workspace,
        subagents=[PROBE],
        max_subagents=max_subagents,
        tool_choice="required",  # the children's every step is a grammar-constrained call
        max_steps=3,
        max_output_tokens=48,
        temperature=0.0,
        seed=0,
        compactor=None,
        persist=False,
        checkpoints=False,
    )
    events = [e async for e in agent.stream("Explore the house.")]
    fin = events[-1]
    assert isinstance(fin, RunFinished) and fin.output == "All four reported.", fin
    wrapped.script.assert_complete()
    tag_of = {e.call.id: re.findall(r"TASK-(\w)", e.call.arguments["prompt"])[0]
              for e in events if isinstance(e, ToolCallStarted) and e.call.name == "task"}  # fmt: skip
    assert sorted(tag_of.values()) == list(TAGS)
    ends = {tag_of[e.call_id]: e.event for e in events
            if isinstance(e, SubagentEvent) and isinstance(e.event, RunFinished)}  # fmt: skip
    results = {tag_of[e.call.id]: (e.result.content, e.result.is_error) for e in events
               if isinstance(e, ToolCallFinished) and e.call.id in tag_of}  # fmt: skip
    assert sorted(ends) == sorted(results) == list(TAGS)
    return {
        t: {
            "exchanges": wrapped.children[t],
            "end": (ends[t].reason, ends[t].steps, ends[t].output, ends[t].error),
            "generated": ends[t].usage.generated_tokens if ends[t].usage else None,
            "result": results[t],
        }
        for t in TAGS
    } | {"max_in_flight": wrapped.max_in_flight}


async def test_four_concurrent_children_decode_as_they_do_one_by_one(
    vllm_engine: Any, tmp_path: Path
) -> None:
    # Same workspace for both runs: the children's prompts are then identical token for token.
    one_by_one = await run_parent(vllm_engine, tmp_path, max_subagents=1)
    together = await run_parent(vllm_engine, tmp_path, max_subagents=4)
    assert one_by_one.pop("max_in_flight") == 1
    assert together.pop("max_in_flight") == 4  # the four first requests were batched

    pad = vllm_engine.tokenizer.control_id(T.PAD)
    for t in TAGS:
        seq, con = one_by_one[t], together[t]
        assert seq["exchanges"], t
        for ex in seq["exchanges"] + con["exchanges"]:
            assert ex.output and pad not in ex.output, (t, ex)
            assert ex.finish == "stop" or ex.finish == "length", (t, ex)
        # Each request's prompt and greedy output, token for token; then what they led to.
        for i, (s, c) in enumerate(zip(seq["exchanges"], con["exchanges"], strict=True)):
            assert s.prompt == c.prompt, (t, i, "prompt")
            assert s.output == c.output, (
                t, i, vllm_engine.tokenizer.decode(list(s.output)),
                vllm_engine.tokenizer.decode(list(c.output)),
            )  # fmt: skip
        assert seq["end"] == con["end"] and seq["result"] == con["result"], t
        assert seq["generated"] == con["generated"] == sum(len(e.output) for e in seq["exchanges"])
        assert "<pad>" not in str(seq["result"][0])
    # The children did not all end alike: their tasks differ, so the comparison has teeth.
    assert len({str(one_by_one[t]["exchanges"][0].output) for t in TAGS}) > 1
