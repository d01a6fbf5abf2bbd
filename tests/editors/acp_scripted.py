"""`gemma-agent acp` on a ScriptedEngine, as a real process for the tests:

    python acp_scripted.py SCENARIO [gemma-agent acp flags...]

The engine's outputs are the scenario's; everything else (the CLI's agent, its tools, the
approval policy, the sessions) is what `gemma-agent acp` runs.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from gemma_agent import ScriptedEngine
from gemma_agent.agent.subagents import EXPLORE, GENERAL
from gemma_agent.cli import build_parser
from gemma_agent.editors import run_acp

T, C = ScriptedEngine.thought, ScriptedEngine.tool_call


def task(prompt: str, kind: str = "explore", what: str = "look around") -> str:
    return C("task", agent_type=kind, description=what, prompt=prompt)


class Router:
    """Sub-agents on one engine: answers each request from the script of the agent that sent
    it, a child's (a built-in type's system turn; the TASK-x tag of its prompt) or the parent's."""

    CHILDREN = (EXPLORE.instructions[:60], GENERAL.instructions[:60])

    def __init__(self, scripts: dict[str, list[str]]) -> None:
        self.scripts = scripts

    def __call__(self, request: Any) -> str:
        text = request.prompt_text
        key = "parent"
        if any(marker in text for marker in self.CHILDREN):
            found = re.search(r"TASK-(\w+)", text)
            assert found, text[-400:]
            key = found.group(1)
        return self.scripts[key].pop(0)


def routed(scripts: dict[str, list[str]]) -> list[Any]:
    return [Router(scripts)] * sum(len(s) for s in scripts.values())


# What a command in the editor's terminal sees: its folder, the editor's secret (cleared), a
# write outside the workspace (into the sandbox's private /tmp, or the host's without one),
# stdin (closed), and its exit code.
SHOWN = (
    'echo "pwd:$PWD"; echo "secret:[${GEMMA_TEST_SECRET:-}]"; echo "term:$TERM"; '
    'touch ../outside.txt; read -t 5 line; echo "stdin:$?"; exit 3'
)
PLAN = [
    {"text": "write hello.txt", "status": "in_progress"},
    {"text": "say so", "status": "pending"},
]
SCENARIOS = {
    "plan": [
        T("First a plan.") + C("update_plan", items=PLAN),
        C("write_file", path="hello.txt", content="hello\n"),
        C("edit_file", path="hello.txt", edits=[{"old_text": "hello", "new_text": "hello world"}]),
        T("All done.") + "I wrote hello.txt.",
        "Continued.",
    ],
    "permission": [
        C("write_file", path="a.txt", content="A\n"),
        "first done",
        C("write_file", path="b.txt", content="B\n"),
        "second done",
        C("write_file", path="c.txt", content="C\n"),
        "third done",
        C("write_file", path="d.txt", content="D\n"),
        "fourth done",
    ],
    "cancel": [C("run_shell", command="sleep 60"), "still here"],
    "load": ["Continued."],
    "subagents": routed(
        {
            "parent": [
                T("Two helpers.") + task("TASK-a find it") + task("TASK-g write it", "general"),
                T("Both reported.") + "All done.",
            ],
            "a": [C("read_file", path="notes.txt"), T("CHILD-THOUGHT") + "CHILD-TEXT in notes.txt"],
            "g": [C("write_file", path="out.txt", content="from a child\n"), "CHILD-TEXT wrote it"],
        }
    ),
    "subagent-ask": routed(
        {
            "parent": [task("TASK-g write it", "general"), "Noted."],
            "g": [C("write_file", path="out.txt", content="x\n"), "wrote it"],
        }
    ),
    "terminal": [
        C("run_shell", command=SHOWN),
        "ran it",
        C("run_shell", command="echo never"),
        "not run",
        C("run_shell", command="echo started; sleep 30", timeout=1),
        "timed out",
    ],
    "mcp": [
        C("time__get_current_time", timezone="UTC"),
        C("tiny__shout", text="hi", times=2),
        "done",
    ],
    "final": [T("Nothing to run.") + C("final_answer", answer="The answer is 42.")],
    "subagent-terminal": routed(
        {
            "parent": [task("TASK-g run it", "general"), "Noted."],
            "g": [C("run_shell", command="echo from-the-child"), "ran it"],
        }
    ),
    "fs": [
        C("read_file", path="notes.txt"),
        C("write_file", path="out.txt", content="from the agent\n"),
        C("edit_file", path="notes.txt", edits=[{"old_text": "unsaved", "new_text": "edited"}]),
        "done",
    ],
}


def switched_engines() -> Any:
    """The engines the model picker starts: each says which model and which start it is;
    E2B never starts (as a model that does not fit)."""
    starts: list[str] = []

    async def start(args: Any) -> ScriptedEngine:
        from gemma_agent.errors import EngineUnavailable

        starts.append(args.model)
        if args.model == "E2B":
            raise EngineUnavailable("E2B does not fit here")
        return ScriptedEngine([f"on {args.model} (start {len(starts)})"] * 4, model=args.model)

    return start


def main() -> int:
    scenario, flags = sys.argv[1], sys.argv[2:]
    args = build_parser().parse_args(["acp", *flags])
    engine = ScriptedEngine(SCENARIOS[scenario])
    return run_acp(args, engine=engine, engine_factory=switched_engines())


if __name__ == "__main__":
    raise SystemExit(main())
