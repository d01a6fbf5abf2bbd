"""Hooks with real shell scripts: block a dangerous run_shell (PreToolUse, exit 2), rewrite a
tool's input (JSON), add context on UserPromptSubmit, a Stop hook that blocks twice then allows,
a hook that hangs (timeout kills its process group), one that prints garbage (a clear notice,
the run goes on), and an untrusted project hook that is not run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.hooks import Hooks, load_hooks
from gemma_agent.errors import ConfigError
from gemma_agent.events import HookRan, Notice, ToolCallFinished
from gemma_agent.tools.builtin import coding_tools

from .helpers import call

pytestmark = pytest.mark.timeout(60)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def hook(event: str, command: str, matcher: str = "", timeout: float = 10) -> dict[str, Any]:
    return {event: [{"matcher": matcher, "hooks": [{"type": "command", "command": command,
                                                     "timeout": timeout}]}]}  # fmt: skip


async def run(tmp_path: Path, hooks: Any, outputs: list[str], task: str = "go") -> tuple[Any, list[Any], ScriptedEngine]:  # fmt: skip
    engine = ScriptedEngine(outputs)
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none"),
        workspace=tmp_path,
        sessions_dir=tmp_path / ".s",
        fsync=False,
        hooks=hooks,
        compactor=None,
    )
    events: list[Any] = []
    result = await agent.run(task, on_event=events.append)
    await agent.aclose()
    return result, events, engine


def notices(events: list[Any]) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


def ran(events: list[Any]) -> list[HookRan]:
    return [e for e in events if isinstance(e, HookRan)]


def results(events: list[Any]) -> list[Any]:
    return [e.result for e in events if isinstance(e, ToolCallFinished)]


async def test_pre_tool_use_exit_2_blocks_a_dangerous_command(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    guard = script(
        tmp_path,
        "guard.sh",
        'input=$(cat)\ncase "$input" in *"rm -rf"*) echo "rm -rf is not allowed here" >&2; '
        "exit 2;; esac\nexit 0\n",
    )
    result, events, engine = await run(
        tmp_path,
        hook("PreToolUse", guard, matcher="run_shell"),
        [
            call("run_shell", command="rm -rf keep.txt"),
            call("run_shell", command="echo ok"),
            "done",
        ],
    )
    blocked, allowed = results(events)
    assert blocked.is_error and "rm -rf is not allowed here" in str(blocked.content)
    assert (tmp_path / "keep.txt").exists()
    assert not allowed.is_error and "ok" in str(allowed.content)
    assert "rm -rf is not allowed here" in engine.requests[1].prompt_text  # the model reads it
    assert result.reason == "final_answer"


async def test_pre_tool_use_rewrites_input_and_post_tool_use_adds_context(tmp_path: Path) -> None:
    rewrite = script(
        tmp_path,
        "rewrite.sh",
        'cat >/dev/null\necho \'{"hookSpecificOutput": {"updatedInput": '
        '{"command": "echo rewritten"}}}\'\n',
    )
    post = script(
        tmp_path,
        "post.sh",
        'cat > post-input.json\necho \'{"additionalContext": "remember to run the tests"}\'\n',
    )
    hooks = {**hook("PreToolUse", rewrite, "run_.*"), **hook("PostToolUse", post, "run_shell")}
    _, events, _ = await run(tmp_path, hooks, [call("run_shell", command="echo original"), "ok"])
    (res,) = results(events)
    assert "rewritten" in str(res.content) and "original" not in str(res.content)
    assert res.content["hook_context"] == "remember to run the tests"
    payload = json.loads((tmp_path / "post-input.json").read_text())
    assert payload["hook_event_name"] == "PostToolUse" and payload["tool_name"] == "run_shell"
    assert payload["tool_input"] == {"command": "echo rewritten"}
    assert "rewritten" in json.dumps(payload["tool_response"]) and payload["session_id"]


async def test_user_prompt_submit_adds_context_or_blocks(tmp_path: Path) -> None:
    context = script(
        tmp_path, "ctx.sh", "cat >/dev/null\necho 'Project rule: tabs, never spaces'\n"
    )
    _, _, engine = await run(tmp_path, hook("UserPromptSubmit", context), ["ok"])
    assert "Project rule: tabs, never spaces" in engine.requests[0].prompt_text
    block = script(
        tmp_path, "block.sh", "cat >/dev/null\necho 'no secrets in prompts' >&2\nexit 2\n"
    )
    with pytest.raises(ConfigError, match="no secrets in prompts"):
        await run(tmp_path, hook("UserPromptSubmit", block), ["ok"])


async def test_stop_hook_blocks_twice_then_allows(tmp_path: Path) -> None:
    stop = script(
        tmp_path,
        "stop.sh",
        "cat >/dev/null\nn=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\n"
        'if [ "$n" -le 2 ]; then echo "tests still fail ($n)" >&2; exit 2; fi\nexit 0\n',
    )
    result, events, engine = await run(
        tmp_path, hook("Stop", stop), ["I am done.", "Now done.", "Really done."]
    )
    assert result.reason == "final_answer" and result.output == "Really done."
    assert len(engine.requests) == 3
    assert "tests still fail (2)" in engine.requests[2].prompt_text
    assert (tmp_path / "count").read_text().strip() == "3"
    # Bounded: a hook that always blocks lets the answer stand after max_stop_blocks.
    always = script(tmp_path, "always.sh", "cat >/dev/null\necho never >&2\nexit 2\n")
    hooks = Hooks(hook("Stop", always), max_stop_blocks=1)
    result, events, _ = await run(tmp_path, hooks, ["a", "b"])
    assert result.output == "b" and any("the answer stands" in n for n in notices(events))


async def test_hanging_and_garbage_hooks_do_not_stop_the_run(tmp_path: Path) -> None:
    hang = script(tmp_path, "hang.sh", "sleep 4270 &\nsleep 4271\n")
    garbage = script(tmp_path, "garbage.sh", "cat >/dev/null\necho '{not json at all'\n")
    hooks = {"PreToolUse": [
        {"matcher": "", "hooks": [{"type": "command", "command": hang, "timeout": 1}]},
        {"matcher": "", "hooks": [{"type": "command", "command": garbage}]},
    ]}  # fmt: skip
    result, events, _ = await run(tmp_path, hooks, [call("run_shell", command="echo fine"), "ok"])
    assert result.reason == "final_answer"
    (res,) = results(events)
    assert not res.is_error and "fine" in str(res.content)
    shown = {(e.command, e.outcome, e.message) for e in ran(events)}
    assert (hang, "timeout", "timed out after 1 s (killed)") in shown
    assert any(c == garbage and o == "error" and "{not json" in m for c, o, m in shown)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout  # noqa: ASYNC221
    assert not [line for line in ps.splitlines() if line.startswith("sleep 427")]


async def test_python_callables_as_hooks(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def pre(payload: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(payload)
        if "secret" in payload["tool_input"].get("command", ""):
            return {"decision": "block", "reason": "no secrets"}
        return None

    _, events, _ = await run(
        tmp_path,
        {"PreToolUse": [{"matcher": "run_shell", "hooks": [pre]}]},
        [call("run_shell", command="cat secret"), "ok"],
    )
    (res,) = results(events)
    assert res.is_error and "no secrets" in str(res.content)
    assert seen[0]["hook_event_name"] == "PreToolUse"


def test_untrusted_project_hooks_are_not_run(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".gemma-agent").mkdir(parents=True)
    settings = {"hooks": hook("PreToolUse", "echo hi")}
    (ws / ".gemma-agent" / "settings.json").write_text(json.dumps(settings))
    store = tmp_path / "trusted.json"
    user = tmp_path / "user-settings.json"
    user.write_text(json.dumps({"hooks": hook("Stop", "true")}))
    hooks, notes = load_hooks(ws, user_settings=user, trust_store=store)
    assert "PreToolUse" not in hooks.matchers and "Stop" in hooks.matchers
    assert notes and "--trust-hooks" in notes[0]
    hooks, notes = load_hooks(ws, user_settings=user, trust_store=store, trust=True)
    assert "PreToolUse" in hooks.matchers and not notes
    hooks, notes = load_hooks(ws, user_settings=user, trust_store=store)  # remembered
    assert "PreToolUse" in hooks.matchers
    settings["hooks"] = hook("PreToolUse", "echo changed")
    (ws / ".gemma-agent" / "settings.json").write_text(json.dumps(settings))
    hooks, notes = load_hooks(ws, user_settings=user, trust_store=store)  # changed: asks again
    assert "PreToolUse" not in hooks.matchers and notes
