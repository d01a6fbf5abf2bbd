"""Computed facts and the tool roles they read: the built-in tools by default, more by
extending the roles, never other products' tool names."""

from __future__ import annotations

from gemma_agent.agent.compaction import (
    DEFAULT_TOOL_ROLES,
    AutoCompaction,
    DropOldest,
    SummarizeOldTurns,
    ToolRoles,
    compute_facts,
)
from gemma_agent.agent.messages import ModelTurn, ToolCall, ToolResult


def step(i: int, name: str, args: dict, content: object = "ok") -> ModelTurn:
    call = ToolCall(id=f"c{i}", name=name, arguments=args)
    return ModelTurn(
        id=f"t{i}",
        tool_calls=(call,),
        tool_results=(ToolResult(call_id=call.id, name=name, content=content),),
    )


PYTEST = {"exit_code": 0, "stdout": "3 passed in 0.1s"}


def test_the_built_in_tools_have_their_roles() -> None:
    facts = compute_facts(
        [
            step(1, "read_file", {"path": "a.py"}),
            step(2, "edit_file", {"path": "a.py", "edits": []}),
            step(3, "update_plan", {"items": [{"text": "fix", "status": "done"}]}),
            step(4, "run_shell", {"command": "pytest -q"}, PYTEST),
        ]
    )
    assert facts["files_read"] == ["a.py"] and facts["files_changed"] == ["a.py"]
    assert facts["plan"] == [["fix", "done"]]
    assert facts["last_test"]["command"] == "pytest -q" and facts["last_test"]["ok"]


def test_other_products_tool_names_mean_nothing_by_default() -> None:
    history = [
        step(1, "cat", {"path": "a.py"}),
        step(2, "todo_write", {"todos": [{"content": "fix", "status": "done"}]}),
        step(3, "bash", {"command": "pytest -q"}, PYTEST),
    ]
    facts = compute_facts(history)
    assert facts["files_read"] == [] and facts["plan"] is None and facts["last_test"] is None
    assert facts["tools"] == {"cat": [1, 0], "todo_write": [1, 0], "bash": [1, 0]}
    roles = DEFAULT_TOOL_ROLES.extend(reads={"cat"}, plans={"todo_write"}, shells={"bash"})
    facts = compute_facts(history, roles=roles)
    assert facts["files_read"] == ["a.py"]
    assert facts["plan"] == [["fix", "done"]]
    assert facts["last_test"]["command"] == "pytest -q"


def test_names_still_tell_what_an_unknown_tool_does() -> None:
    facts = compute_facts(
        [
            step(1, "read_notes", {"path": "notes.md"}),
            step(2, "create_page", {"path": "page.md"}),
            step(3, "remote_shell", {"command": "pytest"}, PYTEST),
        ]
    )
    assert facts["files_read"] == ["notes.md"] and facts["files_changed"] == ["page.md"]
    assert facts["last_test"] is not None


def test_extend_keeps_the_defaults_and_the_tiers_take_the_roles() -> None:
    roles = ToolRoles().extend(writes={"save"})
    assert roles.writes == DEFAULT_TOOL_ROLES.writes | {"save"}
    assert roles.reads == DEFAULT_TOOL_ROLES.reads
    auto = AutoCompaction(tool_roles=roles)
    summarize = next(t for t in auto.tiers if isinstance(t, SummarizeOldTurns))
    drop = next(t for t in auto.tiers if isinstance(t, DropOldest))
    assert summarize.tool_roles is roles and drop.tool_roles is roles
