"""The rest of the hook events with real shell scripts: SessionStart (context for a session's
first run), PreCompact (manual: block or focus; automatic: focus), Notification (an approval
request, a run ending in error), SubagentStop (not run without sub-agents; with them:
tests/agent/test_subagents.py); `HookRan` in the stream;
the trust a face asks for (remembered per project, asked again when the set changes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.compaction import AutoCompaction, CompactionContext
from gemma_agent.agent.execute import ToolRuntime
from gemma_agent.agent.hooks import Hooks, compaction_hook, hook_trust_request, load_hooks
from gemma_agent.agent.messages import ModelTurn, UserMessage
from gemma_agent.errors import ConfigError
from gemma_agent.events import HookRan, RunFinished, event_to_dict
from gemma_agent.tools import ApprovalPolicy, ToolRegistry
from gemma_agent.tools.builtin import coding_tools

from .helpers import call
from .test_hooks import hook, ran, script

pytestmark = pytest.mark.timeout(60)


def recorder(tmp_path: Path, name: str, stdout: str = "", code: int = 0) -> str:
    """A hook that appends its stdin to NAME.jsonl, prints ``stdout``, exits ``code``."""
    log = tmp_path / f"{name}.jsonl"
    body = f"cat >> {log}\necho >> {log}\n"
    if stdout:
        body += f"echo '{stdout}'\n" if code == 0 else f"echo '{stdout}' >&2\n"
    return script(tmp_path, f"{name}.sh", body + f"exit {code}\n")


def payloads(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    path = tmp_path / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def agent(tmp_path: Path, hooks: Any, outputs: list[str], **kw: Any) -> tuple[Agent, ScriptedEngine]:  # fmt: skip
    engine = ScriptedEngine(outputs)
    options: dict[str, Any] = {"compactor": None, **kw}
    return Agent(
        engine=engine, tools=coding_tools(sandbox="none"), workspace=tmp_path,
        sessions_dir=tmp_path / ".s", fsync=False, hooks=hooks, **options,
    ), engine  # fmt: skip


async def test_session_start_adds_context_once_per_session(tmp_path: Path) -> None:
    start = recorder(tmp_path, "start", "Branch: main; CI is red")
    a, engine = agent(tmp_path, hook("SessionStart", start), ["one", "two"])
    events: list[Any] = []
    first = await a.run("first task", on_event=events.append)
    await a.run("second task", session_id=first.session_id)
    assert "Branch: main; CI is red" in engine.requests[0].prompt_text
    assert "second task" in engine.requests[1].prompt_text
    (payload,) = payloads(tmp_path, "start")  # the session's first run only
    assert payload["hook_event_name"] == "SessionStart" and payload["source"] == "startup"
    assert payload["session_id"] == first.session_id
    (event,) = ran(events)
    assert (event.event, event.command, event.outcome) == ("SessionStart", start, "allowed")
    assert event.message == "added context"
    await a.aclose()
    # A resumed session (another process: a new Agent) starts again, as "resume".
    b, _ = agent(tmp_path, hook("SessionStart", start), ["three"])
    await b.run("third task", session_id=first.session_id)
    assert [p["source"] for p in payloads(tmp_path, "start")] == ["startup", "resume"]
    await b.aclose()


async def test_session_start_cannot_block(tmp_path: Path) -> None:
    deny = recorder(tmp_path, "deny", "no", code=2)
    a, _ = agent(tmp_path, hook("SessionStart", deny), ["answer"])
    events: list[Any] = []
    result = await a.run("task", on_event=events.append)
    assert result.reason == "final_answer"
    (event,) = ran(events)
    assert event.outcome == "error" and "cannot block" in event.message
    await a.aclose()


async def test_hook_ran_events_in_the_stream_and_json(tmp_path: Path) -> None:
    guard = script(tmp_path, "guard.sh", "cat >/dev/null\necho 'not today' >&2\nexit 2\n")
    ok = recorder(tmp_path, "ok")
    hooks = {"PreToolUse": [{"matcher": "run_shell", "hooks": [
        {"type": "command", "command": guard}]}], **hook("PostToolUse", ok)}  # fmt: skip
    a, _ = agent(
        tmp_path, hooks,
        [call("run_shell", command="echo hi"), call("list_dir", path="."), "done"],
    )  # fmt: skip
    events: list[Any] = []
    await a.run("go", on_event=events.append)
    shown = [(e.event, e.command, e.outcome, e.message, e.step) for e in ran(events)]
    assert shown == [
        ("PreToolUse", guard, "blocked", "not today", 1),
        ("PostToolUse", ok, "allowed", "", 2),
    ]
    data = event_to_dict(ran(events)[0])
    assert data == {"kind": "hook_ran", "event": "PreToolUse", "command": guard,
                    "outcome": "blocked", "message": "not today", "step": 1}  # fmt: skip
    await a.aclose()


async def test_pre_compact_manual_blocks_or_adds_focus(tmp_path: Path) -> None:
    block = recorder(tmp_path, "block", "keep the history for the review", code=2)
    a, _ = agent(tmp_path, hook("PreCompact", block), ["answer"], compactor=AutoCompaction())
    result = await a.run("task")
    before = a.history(result.session_id)
    seen: list[Any] = []
    with pytest.raises(ConfigError, match="keep the history for the review"):
        await a.compact("the API", session_id=result.session_id, on_event=seen.append)
    assert a.history(result.session_id) == before
    (payload,) = payloads(tmp_path, "block")
    assert payload["trigger"] == "manual" and payload["custom_instructions"] == "the API"
    assert [e.outcome for e in seen] == ["blocked"]
    await a.aclose()

    focus = recorder(tmp_path, "focus", "the failing test in test_io.py")
    a, engine = agent(
        tmp_path, hook("PreCompact", focus),
        [*(call("run_shell", command=f"echo step {i}") for i in range(6)), "answer",
         "A summary of the work."], compactor=AutoCompaction(),
    )  # fmt: skip
    result = await a.run("task")
    seen.clear()
    await a.compact("the API", session_id=result.session_id, on_event=seen.append)
    assert [(e.outcome, e.message) for e in seen] == [("allowed", "added context")]
    assert len(engine.requests) == 8  # the summary request carries both focuses
    assert "the API" in engine.requests[-1].prompt_text
    assert "the failing test in test_io.py" in engine.requests[-1].prompt_text
    await a.aclose()


async def test_pre_compact_runs_once_when_an_automatic_compaction_starts(tmp_path: Path) -> None:
    focus = recorder(tmp_path, "auto", "keep the error messages")
    emitted: list[Any] = []
    rt = ToolRuntime(ToolRegistry([]), tmp_path, hooks=Hooks(hook("PreCompact", focus)),
                     session_id="s1")  # fmt: skip
    before = compaction_hook(rt, 7, emitted.append)
    assert before is not None
    asked: list[str] = []

    async def summarize(instruction: str) -> str:
        asked.append(instruction)
        return "summary"

    history: list[Any] = [UserMessage(content="task")]
    history += [ModelTurn(text=f"step {i} " * 30) for i in range(8)]
    ctx = CompactionContext(count_tokens=lambda h: 30 * len(h), limit_tokens=300,
                            summarize=summarize, before=before)  # fmt: skip
    done = await AutoCompaction().compact(history, ctx)
    assert done is not None
    (payload,) = payloads(tmp_path, "auto")
    assert payload["trigger"] == "auto" and payload["session_id"] == "s1"
    assert [(e.event, e.outcome, e.step) for e in emitted] == [("PreCompact", "allowed", 7)]
    assert asked and "keep the error messages" in asked[0]
    # Under the trigger nothing runs; without hooks there is no callback.
    small = CompactionContext(count_tokens=lambda h: 10, limit_tokens=300, before=before)
    await AutoCompaction().compact(history[:2], small)
    assert len(payloads(tmp_path, "auto")) == 1
    assert compaction_hook(ToolRuntime(ToolRegistry([]), tmp_path), 1, emitted.append) is None


async def test_notification_on_approval_request_and_on_a_failed_run(tmp_path: Path) -> None:
    note = recorder(tmp_path, "note")
    policy = ApprovalPolicy("ask", store=tmp_path / "approvals.json", workspace=tmp_path)

    async def allow(_request: Any) -> str:
        return "allow"

    a, _ = agent(
        tmp_path, hook("Notification", note),
        [call("run_shell", command="echo hi"), call("run_shell", command="echo again")],
        approval=policy, on_approval=allow, max_steps=2,
    )  # fmt: skip
    events: list[Any] = []
    result = await a.run("go", on_event=events.append)
    assert result.reason == "max_steps"
    kinds = [p["notification_type"] for p in payloads(tmp_path, "note")]
    assert kinds == ["permission_prompt", "permission_prompt", "run_error"]
    first = payloads(tmp_path, "note")[0]
    assert "run_shell needs your approval" in first["message"]
    assert "max_steps" in payloads(tmp_path, "note")[2]["message"]
    assert isinstance(events[-1], RunFinished)  # the last event, after the hook's
    assert isinstance(events[-2], HookRan) and events[-2].event == "Notification"
    await a.aclose()


async def test_subagent_stop_is_accepted_and_never_run(tmp_path: Path) -> None:
    sub = recorder(tmp_path, "sub")
    a, _ = agent(tmp_path, hook("SubagentStop", sub), ["done"])
    assert (await a.run("go")).reason == "final_answer"
    assert payloads(tmp_path, "sub") == []  # there are no sub-agents yet
    await a.aclose()
    with pytest.raises(ConfigError, match="unknown hook event"):
        Hooks({"SubAgentStop": []})


def test_trust_asked_once_per_change_of_the_set(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".gemma-agent").mkdir(parents=True)
    settings = {"hooks": hook("PreToolUse", "./guard.sh", matcher="run_shell")}
    (ws / ".gemma-agent" / "settings.json").write_text(json.dumps(settings))
    store, user = tmp_path / "trusted.json", tmp_path / "none.json"
    hooks, notes = load_hooks(ws, ask=True, user_settings=user, trust_store=store)
    assert not notes and not hooks  # the face asks: no notice
    request = hook_trust_request(ws, hooks, trust_store=store)
    assert request is not None
    assert request.commands() == ["PreToolUse [run_shell]: ./guard.sh"]
    request.answer(True)
    assert "PreToolUse" in hooks.matchers  # runs from now on
    assert hook_trust_request(ws, Hooks(), trust_store=store) is None  # remembered
    hooks, notes = load_hooks(ws, ask=True, user_settings=user, trust_store=store)
    assert "PreToolUse" in hooks.matchers and not notes

    settings["hooks"] = hook("PreToolUse", "./other.sh")  # changed: asked again
    (ws / ".gemma-agent" / "settings.json").write_text(json.dumps(settings))
    hooks, _ = load_hooks(ws, ask=True, user_settings=user, trust_store=store)
    request = hook_trust_request(ws, hooks, trust_store=store)
    assert request is not None and not hooks
    request.answer(False)
    assert not hooks and hook_trust_request(ws, hooks, trust_store=store) is None
    hooks, notes = load_hooks(ws, ask=True, user_settings=user, trust_store=store)
    assert not hooks and "you declined this set" in notes[0]
    hooks, notes = load_hooks(ws, trust=True, user_settings=user, trust_store=store)
    assert "PreToolUse" in hooks.matchers and not notes  # --trust-hooks overrides a "no"
