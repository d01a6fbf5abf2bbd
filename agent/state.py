"""The state of one run and the small operations the loop performs on it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import AgentError
from ..prompts.grammar import tool_call_grammar
from .checkpoints import Checkpointer, mutating
from .compaction import CompactionState, Compactor
from .context import NestedMemory
from .events import (
    Emit,
    HistoryCompacted,
    Notice,
    RunFinished,
    RunUsage,
    StopReason,
    TurnFinished,
)
from .execute import ToolRuntime
from .limits import RunLimits, ThinkingBudget
from .messages import Message, ModelTurn, ToolCall, ToolResult, UserMessage
from .model import Generation, ModelLayer
from .output import FINAL_ANSWER, OutputTool
from .session import SessionLog

Mode = Literal["default", "plan"]
MODES: tuple[Mode, ...] = ("default", "plan")
PLAN_TOOL = "update_plan"

# Events worth a line in the session log (deltas, tool calls and turns are logged otherwise).
_LOGGED = frozenset(
    {"run_started", "approval_requested", "plan_updated", "usage", "notice", "run_finished"}
)


@dataclass
class RunState:
    model: ModelLayer
    tools: ToolRuntime
    history: list[Message]
    put: Emit  # hands an event to the stream's consumers
    limits: RunLimits
    thinking: ThinkingBudget
    tool_choice: str = "auto"
    plan_first: bool = False
    mode: Mode = "default"  # "plan": only read-only tools and update_plan can be called
    allowed_tools: frozenset[str] | None = None  # this run may call only these (a command's)
    nested_memory: NestedMemory | None = None  # AGENTS.md of folders the tools reach
    output_tool: OutputTool | None = None
    compactor: Compactor | None = None
    log: SessionLog | None = None
    compaction: CompactionState | None = None  # the conversation's compaction memory
    checkpoints: Checkpointer | None = None  # workspace snapshots around tool rounds
    sampling: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    failed: bool = False  # the previous step failed: more thinking budget for this one
    output: Any = None
    output_ready: bool = False
    usage: RunUsage = field(default_factory=RunUsage)
    finished: RunFinished | None = None
    round: dict[str, ToolResult] = field(default_factory=dict)  # results of the running round
    _round_turn: str = ""

    def __post_init__(self) -> None:
        if self.output_tool is not None:
            self.tools.special[FINAL_ANSWER] = self.accept_final

    # -- events, history, log: the one writer of the session log during a run -------------

    def emit(self, event: object) -> None:
        self.put(event)
        if self.log is not None and getattr(event, "kind", None) in _LOGGED:
            self.log.event(event)  # type: ignore[arg-type]

    def add_task(self, message: UserMessage) -> None:
        self.history.append(message)
        if self.log is not None:
            self.log.message(message)
        if self.checkpoints is not None:
            self.checkpoints.timeline.records.append({"type": "user", "id": message.id})

    async def checkpoint(self, turn: ModelTurn, phase: str) -> None:
        """Snapshot the workspace before (and after) a round that may change files; the
        session log records it. A failure turns checkpoints off for the conversation."""
        cp = self.checkpoints
        if cp is None or cp.broken is not None:
            return
        if phase == "before" and not mutating(turn.tool_calls, self.tools.registry):
            return
        if phase == "after" and turn.id not in cp._open:
            return
        title = ", ".join(f"{c.name} {short_args(c.arguments, 60)}" for c in turn.tool_calls)
        try:
            record, snap = await asyncio.to_thread(
                cp.take, turn.id, phase, step=self.step, title=title
            )
        except (AgentError, OSError) as e:
            cp.broken = str(e)
            self.emit(Notice(f"checkpoints are off for this session: {e}", "warning", self.step))
            return
        if self.log is not None:
            self.log.write(record)
        for path in snap.left_out:
            size = f"over {cp.store.max_file_size // 1024} KiB"
            self.emit(Notice(f"checkpoint left out {path} ({size})", "warning", self.step))

    def finish(
        self, reason: StopReason, error: str | None = None, *, output: Any = None
    ) -> RunFinished:
        event = RunFinished(reason, output, error, self.step, self.usage)
        self.finished = event
        self.emit(event)
        return event

    def overflow(self, size: int) -> RunFinished:
        """Stop: the history (``size`` tokens) does not fit and nothing more can be cut."""
        window = self.model.engine.info.max_model_len
        first = next((i for i, m in enumerate(self.history) if isinstance(m, UserMessage)), None)
        base = self.model.count_tokens(self.history[: first + 1]) if first is not None else size
        if base >= window or first == len(self.history) - 1:
            return self.finish(
                "context_overflow",
                f"the system turn ({len(self.model.declarations)} tools) and the task alone take "
                f"{base} tokens of the {window}-token context: raise the context length "
                "(--max-model-len), give the agent fewer tools, or shorten the task",
            )
        return self.finish(
            "context_overflow",
            f"the history ({size} tokens) fills the context ({window}) and nothing more can be "
            "cut; turn compaction on, raise --max-model-len, or start a new session",
        )

    def commit(self, turn: ModelTurn) -> None:
        """Append a finished model turn to the history and the log (a turn boundary: fsync)."""
        self.history.append(turn)
        if self.log is not None:
            self.log.message(turn)
        self.usage.tool_calls += len(turn.tool_calls)
        if not turn.tool_calls:
            self.model.forget()
        self.emit(TurnFinished(turn, self.step))

    def start_round(self, turn: ModelTurn) -> None:
        """The turn's calls start running: logged as pending until its results are in."""
        self.round, self._round_turn = {}, turn.id
        if self.log is not None:
            self.log.turn_pending(turn)

    def round_result(self, result: ToolResult) -> None:
        """One call of the running round finished (logged at once: a crash loses only the
        calls still running)."""
        self.round[result.call_id] = result
        if self.log is not None:
            self.log.tool_result(self._round_turn, result)

    def add_note(self, text: str, notice: str | None = None) -> None:
        """An ``[agent]`` message appended to the history (a mode switch, an accepted plan);
        ``notice`` tells the person too."""
        message = UserMessage(content=f"[agent] {text}")
        self.history.append(message)
        if self.log is not None:
            self.log.message(message)
        if notice is not None:
            self.emit(Notice(notice, "info", self.step))

    def add_nested_memory(
        self, calls: tuple[ToolCall, ...], results: dict[str, ToolResult]
    ) -> dict[str, ToolResult]:
        """The AGENTS.md of a folder a call first works in, after that call's result (an exact
        append: no re-render, the system turn unchanged); a Notice names each file."""
        if self.nested_memory is None:
            return results
        out = dict(results)
        for call in calls:
            found = self.nested_memory.for_call(call.arguments) if call.id in out else None
            if found is None:
                continue
            text, notices = found
            if text:
                result = out[call.id]
                content = result.content
                if isinstance(content, str):
                    content = f"{content}\n\n{text}"
                elif isinstance(content, dict):
                    content = {**content, "project_memory": text}
                else:
                    content = {"value": content, "project_memory": text}
                out[call.id] = result.model_copy(update={"content": content})
            for notice in notices:
                self.emit(Notice(notice, "info", self.step))
        return out

    def nudge(self, text: str) -> None:
        """Tell the model something as a user message (breaks the append: rare paths only)."""
        message = UserMessage(content=f"[agent] {text}")
        self.history.append(message)
        if self.log is not None:
            self.log.message(message)
        self.emit(Notice(text, "warning", self.step))

    def failed_attempt(self, gen: Generation, problems: list[str], attempt: int) -> None:
        """A malformed output that is re-decoded: logged, never part of the history."""
        text = self.model.tokenizer.decode(gen.ids)
        if self.log is not None:
            self.log.write(
                {
                    "type": "failed_attempt",
                    "step": self.step,
                    "attempt": attempt,
                    "problems": problems,
                    "output": text,
                }
            )
        short = "; ".join(p.splitlines()[0][:120] for p in problems)
        self.emit(
            Notice(
                f"malformed output ({short}); re-decoding with the tool-call grammar "
                f"(attempt {attempt + 1})",
                "warning",
                self.step,
            )
        )

    def replace_history(self, history: list[Message], event: HistoryCompacted) -> None:
        self.history[:] = history  # the model layer notices (identity) and re-renders if needed
        if self.log is not None:
            self.log.compaction(list(history), event)
        self.emit(event)

    def record_step(
        self, prompt: list[int], gen: Generation, *, attempt: int = 0, accepted: bool = True
    ) -> None:
        """The exact ids of one request, for training exports (agent/steps.py)."""
        if self.log is not None:
            self.log.step(
                self.step, prompt, gen.ids, attempt=attempt, accepted=accepted,
                finish_reason=gen.finish_reason,
            )  # fmt: skip

    def add_usage(self, gen: Generation) -> None:
        u = self.usage
        u.requests += 1
        u.prompt_tokens += gen.usage.prompt_tokens
        u.cached_prompt_tokens += gen.usage.cached_prompt_tokens
        u.generated_tokens += gen.usage.generated_tokens
        u.thinking_tokens += gen.usage.thinking_tokens

    # -- request shaping -----------------------------------------------------------------

    def choice_for_step(self) -> str:
        if self.plan_first and self.step == 1:
            return "update_plan"
        return self.tool_choice

    def plan_tools(self) -> frozenset[str]:
        """The tools plan mode allows: the read-only ones, update_plan, sub-agents (they run
        in plan mode too) and final_answer."""
        names = {
            t.name for t in self.tools.registry if t.read_only or t.delegates or t.name == PLAN_TOOL
        }
        if self.output_tool is not None:
            names.add(FINAL_ANSWER)
        return frozenset(names)

    def allowed(self) -> frozenset[str] | None:
        """The tools this run may call (plan mode, a command's ``allowed-tools``); None: all."""
        allowed = self.plan_tools() if self.mode == "plan" else None
        if self.allowed_tools is not None:
            extra = {FINAL_ANSWER} if self.output_tool is not None else set()
            mine = self.allowed_tools | extra
            allowed = mine if allowed is None else allowed & mine
        return allowed

    def grammar(self, choice: str, prompt: list[int]) -> str | None:
        """The tool-call grammar of one request. Plan mode (or a run's ``allowed_tools``)
        always constrains (even "auto"): the grammar lists only the allowed tools, so another
        call cannot be decoded at all. The declarations in the prompt stay the same (the
        prefix cache stays hot)."""
        if not self.model.engine.info.supports_grammar or not self.model.declarations:
            return None
        decls = self.model.declarations
        allowed = self.allowed()
        if allowed is not None:
            decls = [d for d in decls if d.get("function", d).get("name") in allowed]
            if choice not in ("auto", "required", "none") and choice not in allowed:
                choice = "required" if decls else "none"
            if choice == "required" and not decls:
                choice = "none"
        elif choice in ("auto", "none"):
            return None
        return tool_call_grammar(
            decls,
            choice,
            thinking=self.model.thinking,
            prompt_in_thought=self.model.prompt_in_thought(prompt),
        )

    def budget_spent(self) -> bool:
        limit = self.limits.max_tokens
        return limit is not None and self.usage.generated_tokens >= limit

    def max_tokens_for(self, prompt_len: int) -> int:
        room = self.model.engine.info.max_model_len - prompt_len
        n = min(self.model.max_output_tokens, room)
        if self.limits.max_tokens is not None:
            n = min(n, self.limits.max_tokens - self.usage.generated_tokens)
        return max(n, 1)

    # -- checks --------------------------------------------------------------------------

    def check(self, gen: Generation, choice: str) -> tuple[list[str], dict[str, str]]:
        """Problems worth a re-decode, and the calls that must not run (id → error for the model)."""
        problems: list[str] = []
        invalid: dict[str, str] = dict(gen.call_errors)
        refused: dict[str, str] = {}
        for c in gen.parsed.tool_calls:
            if not c.complete:
                cut = gen.finish_reason == "length"
                problems.append(
                    f"tool call {c.name or '?'} was {'cut off' if cut else 'malformed'}"
                )
        if gen.parsed.call_cut_off:  # cut before its arguments: the parser reports no call
            problems.append("a tool call was cut off before its arguments")
        for call in gen.calls:
            if call.id in invalid:
                continue
            if choice == "none" or self.tool_choice == "none":
                invalid[call.id] = "Tools are disabled for this run; answer in text."
                continue
            if self.mode == "plan" and call.name not in self.plan_tools():
                refused[call.id] = plan_refusal(call.name, self.plan_tools())
                continue
            allowed = self.allowed()
            if allowed is not None and call.name not in allowed:
                refused[call.id] = (
                    f"{call.name} is not available for this task: the command allows only "
                    f"{', '.join(sorted(allowed)) or 'no tool'}. Use those, or answer in text."
                )
                continue
            if call.name == FINAL_ANSWER and self.output_tool is not None:
                continue
            if call.name not in self.tools.registry:
                continue  # the registry answers with the closest names; not worth a re-decode
            checked = self.tools.registry.check(call.name, call.arguments)
            if isinstance(checked, str):
                invalid[call.id] = checked
            else:
                self.tools.validated[call.id] = checked[1]  # validated once, run with these
        problems += [f"invalid call: {msg}" for msg in invalid.values()]
        if choice not in ("auto", "none") and not gen.calls:
            problems.append(f"no tool call although tool_choice is {choice!r}")
        # A call plan mode forbids is no decoding accident: the model reads why (no re-decode).
        return problems, invalid | refused

    def missing_call_problem(self) -> str | None:
        """Why a turn without calls is not an acceptable final answer (None when it is)."""
        choice = self.choice_for_step()
        if self.plan_first and self.step == 1:
            return "Start by writing your plan with update_plan"
        if choice not in ("auto", "none"):
            return f"You must call a tool (tool_choice={choice!r})"
        if self.output_tool is not None:
            return f"Give the final result by calling {FINAL_ANSWER}, not as text"
        return None

    def accept_final(self, call: ToolCall) -> ToolResult:
        assert self.output_tool is not None
        value, error = self.output_tool.accept(call.arguments)
        if error is not None:
            return ToolResult(call_id=call.id, name=call.name, content=error, is_error=True)
        self.output, self.output_ready = value, True
        return ToolResult(call_id=call.id, name=call.name, content="accepted")

    async def summarize(self, instruction: str) -> str:
        text, usage = await self.model.summarize(self.history, instruction, **self.sampling)
        self.usage.requests += 1
        self.usage.prompt_tokens += usage.prompt_tokens
        self.usage.cached_prompt_tokens += usage.cached_prompt_tokens
        self.usage.generated_tokens += usage.generated_tokens
        return text


def plan_refusal(name: str, allowed: frozenset[str]) -> str:
    return (
        f"Plan mode: {name} is not available while planning. Only read-only tools and "
        f"{PLAN_TOOL} can be called ({', '.join(sorted(allowed)) or 'none'}). Study what you "
        f"need, write the plan with {PLAN_TOOL}, then give a short summary as your answer; "
        "the user accepts the plan before anything is changed."
    )


def short_args(arguments: dict[str, Any], limit: int = 120) -> str:
    text = json.dumps(arguments, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"
