"""`gemma-agent acp` on a ScriptedEngine, as a real process for the tests:

    python acp_scripted.py SCENARIO [gemma-agent acp flags...]

The engine's outputs are the scenario's; everything else (the CLI's agent, its tools, the
approval policy, the sessions) is what `gemma-agent acp` runs.
"""

from __future__ import annotations

import sys

from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.editors import run_acp

T, C = ScriptedEngine.thought, ScriptedEngine.tool_call

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
    "fs": [
        C("read_file", path="notes.txt"),
        C("write_file", path="out.txt", content="from the agent\n"),
        C("edit_file", path="notes.txt", edits=[{"old_text": "unsaved", "new_text": "edited"}]),
        "done",
    ],
}


def main() -> int:
    scenario, flags = sys.argv[1], sys.argv[2:]
    args = build_parser().parse_args(["acp", *flags])
    return run_acp(args, engine=ScriptedEngine(SCENARIOS[scenario]))


if __name__ == "__main__":
    raise SystemExit(main())
