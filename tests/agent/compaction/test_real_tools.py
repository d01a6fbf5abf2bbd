"""Compaction over results of the real built-in coding tools: computed facts read their real
output shapes, stubs keep command outcomes, and `recall_output` brings a cleared result back
from the same spill store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gemma_agent.agent.compaction import (
    ClearOldToolResults,
    CompactionContext,
    SummarizeOldTurns,
    compute_facts,
)
from gemma_agent.agent.messages import (
    Message,
    ModelTurn,
    SummaryMessage,
    ToolCall,
    ToolResult,
    UserMessage,
)
from gemma_agent.tools.base import ToolContext
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tools.registry import ToolRegistry

from .synthetic import approx_tokens


async def run_steps(
    tmp_path: Path, steps: list[tuple[str, dict[str, Any]]]
) -> tuple[list[Message], Any]:
    registry = ToolRegistry(coding_tools(sandbox="none"), recall=True)
    ctx = ToolContext(workspace=tmp_path)
    history: list[Message] = [UserMessage(id="task", content="Fix app.py so the check passes.")]
    for i, (name, args) in enumerate(steps):
        call = ToolCall(id=f"c{i}", name=name, arguments=args)
        outcome = await registry.call(name, args, ctx)
        result = ToolResult(
            call_id=call.id,
            name=name,
            content=outcome.content,
            is_error=outcome.is_error,
            spill_id=outcome.spill_id,
        )
        history.append(ModelTurn(id=f"t{i}", tool_calls=(call,), tool_results=(result,)))
    return history, (registry, ctx)


CHECK = "seq 1 200; printf '\\n1 failed, 2 passed in 0.01s\\n'; exit 1  # pytest stand-in"


async def test_facts_and_stubs_from_real_tool_results(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("\n".join(f"x{k} = {k}" for k in range(300)) + "\n")
    history, (registry, tctx) = await run_steps(
        tmp_path,
        [
            ("read_file", {"path": "app.py"}),
            (
                "update_plan",
                {
                    "items": [
                        {"text": "read app.py", "status": "done"},
                        {"text": "fix it", "status": "in_progress"},
                    ]
                },
            ),
            ("run_shell", {"command": CHECK}),
            (
                "edit_file",
                {"path": "app.py", "edits": [{"old_text": "x1 = 1\n", "new_text": "x1 = 2\n"}]},
            ),
            ("write_file", {"path": "notes.txt", "content": "done\n"}),
            ("read_file", {"path": "missing.py"}),
            ("list_dir", {"path": "."}),
        ],
    )
    results = [m.tool_results[0] for m in history[1:] if isinstance(m, ModelTurn)]
    assert [r.is_error for r in results] == [False, False, False, False, False, True, False]
    facts = compute_facts(history)
    assert facts["files_read"][0] == "app.py"
    assert facts["plan"] == [["read app.py", "done"], ["fix it", "in_progress"]]
    assert facts["last_test"]["exit_code"] == 1 and facts["last_test"]["ok"] is False
    assert facts["last_test"]["line"] == "1 failed, 2 passed in 0.01s"
    assert facts["files_changed"] == ["app.py", "notes.txt"]
    assert any("missing.py" in e for e in facts["errors"])
    assert facts["tools"]["read_file"] == [2, 1]

    ctx = CompactionContext(
        count_tokens=approx_tokens, limit_tokens=approx_tokens(history), spill=tctx.spill
    )
    cleared = await ClearOldToolResults(keep_turns=1, min_tokens=0).compact(history, ctx)
    assert cleared is not None
    shell_stub = cleared.history[3].tool_results[0]
    assert isinstance(shell_stub.content, str)
    assert shell_stub.content.startswith(f"[run_shell {CHECK[:59]}")
    assert 'exit 1, "1 failed, 2 passed in 0.01s"' in shell_stub.content
    read_stub = cleared.history[1].tool_results[0]
    assert "cleared; recall with recall_output(" in read_stub.content
    # The model recalls it with the real tool, from the store the tools write to.
    outcome = await registry.call("recall_output", {"spill_id": read_stub.spill_id}, tctx)
    assert not outcome.is_error
    assert "x0 = 0" in str(outcome.content) and "x150 = 150" in str(outcome.content)


async def test_summary_of_real_results_keeps_computed_facts(tmp_path: Path) -> None:
    (tmp_path / "lib.py").write_text("VALUE = 1\n" * 200)
    history, _ = await run_steps(
        tmp_path,
        [("read_file", {"path": "lib.py"})] * 4
        + [
            ("run_shell", {"command": CHECK}),
            ("write_file", {"path": "lib2.py", "content": "A = 1\n"}),
        ]
        + [("read_file", {"path": "lib.py"})] * 2,
    )
    ctx = CompactionContext(count_tokens=approx_tokens, limit_tokens=approx_tokens(history))
    result = await SummarizeOldTurns(keep_fraction=0.2).compact(history, ctx)
    assert result is not None
    summary = next(m for m in result.history if isinstance(m, SummaryMessage))
    assert "- Files changed: lib2.py" in summary.content
    assert (
        "- Last test run: `" in summary.content
        and "FAILED (exit 1): 1 failed, 2 passed" in summary.content
    )
    assert "- Files read: lib.py" in summary.content
