"""The README's SDK quickstart, runnable anywhere.

python examples/quickstart.py                 # scripted model output (no engine needed)
python examples/quickstart.py --model tiny    # the real CPU vLLM engine, tiny random model
python examples/quickstart.py --model google/gemma-4-E4B-it   # real Gemma 4 on a GPU
"""

from __future__ import annotations

import argparse
import asyncio

from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.events import RunFinished, ToolCallFinished


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def make_agent(model: str | None) -> Agent:
    if model is None:
        # What a Gemma 4 model writes: a call to `add`, then (after the result) the answer.
        engine = ScriptedEngine(["<|tool_call>call:add{a:2,b:40}<tool_call|>", "2 + 40 = 42."])
        return Agent(engine=engine, tools=[add])
    return Agent(model=model, tools=[add], thinking=True, max_steps=4)


async def main(model: str | None) -> None:
    agent = make_agent(model)
    async for event in agent.stream("What is 2 + 40? Use the tool."):  # the single source of truth
        match event:
            case ToolCallFinished(call=call, result=result):
                print(f"tool {call.name}({call.arguments}) -> {result.content}")
            case RunFinished(output=output, reason=reason, steps=steps):
                print(f"answer: {output} ({reason}, {steps} steps)")
    await agent.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    asyncio.run(main(parser.parse_args().model))
