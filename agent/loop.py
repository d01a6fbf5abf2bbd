"""The agent loop: plan (one model turn) → execute (the turn's tool calls) → observe, repeated.

It stops on a final answer (a turn without tool calls), a limit (steps, generated tokens, wall
time, consecutive errors), a loop of identical calls, or cancellation. Problems the model makes
become results or messages it reads; only the run's limits end it. The state it works on
(`RunState`, history, session log, model layer) is built by `Agent`.
"""

from __future__ import annotations

import asyncio

from ..errors import EngineError
from .compaction import CompactionContext, fit_fresh_results
from .events import Notice, RunFinished, StopReason, Usage
from .execute import execute_calls
from .hooks import compaction_hook, stop_reason
from .limits import LoopGuard
from .messages import Message, ModelTurn, ToolResult, UserMessage
from .model import Generation
from .state import RunState

CANCELLED = "cancelled: the run stopped before this call finished"


async def run_loop(run: RunState) -> RunFinished:
    scope = asyncio.timeout(run.limits.time_limit)
    try:
        async with scope:
            return await _steps(run)
    except TimeoutError:
        if not scope.expired():
            raise  # not our limit: someone else's timeout
        return run.finish("time_limit", f"time limit of {run.limits.time_limit:g} s reached")
    except EngineError as e:
        return run.finish("engine_error", f"{type(e).__name__}: {e}")
    except asyncio.CancelledError:
        run.finish("cancelled", "cancelled")
        raise


async def _steps(run: RunState) -> RunFinished:
    limits, guard, errors = run.limits, LoopGuard(), 0
    while True:
        if run.step >= limits.max_steps:
            return run.finish("max_steps", f"stopped after {run.step} steps (max_steps)")
        if run.budget_spent():
            return run.finish("token_budget", f"token budget of {limits.max_tokens} used up")
        await _compact(run)
        run.model.apply_staged(run.history)
        prompt = run.model.prompt_for(run.history)
        size = run.model.prompt_tokens(prompt)  # media placeholders expanded, as the engine will
        if size >= run.model.engine.info.max_model_len:
            return run.overflow(size)
        run.step += 1
        gen, problems, invalid = await _plan(run, prompt)
        turn = gen.turn()
        if gen.finish_reason == "length" and run.budget_spent():
            run.commit(turn.model_copy(update={"tool_calls": ()}))  # cut by the budget: kept
            return run.finish("token_budget", f"token budget of {limits.max_tokens} used up")
        if not turn.tool_calls:
            problem = "; ".join(problems) or run.missing_call_problem()
            run.commit(turn)
            if problem is None:
                more = await stop_reason(run.tools, turn.text, run.step, run.emit)
                if more is None:
                    return run.finish("final_answer", output=turn.text)
                run.nudge(f"A Stop hook says the task is not done: {more}")
                continue
            errors += 1
            run.failed = True
            run.nudge(f"{problem}. Fix this and continue.")
            if errors >= limits.max_consecutive_errors:
                return run.finish("too_many_errors", f"{errors} failed steps in a row: {problem}")
            continue
        repeats = guard.observe(turn.tool_calls)
        if repeats >= limits.loop_stop_after:
            stop = f"the same call was made {repeats} times in a row"
            run.commit(_with_results(turn, {}, f"not executed: {stop}"))
            return run.finish("loop_detected", f"loop detected: {stop}")
        note = None
        if repeats >= limits.loop_nudge_after:
            note = (
                f"You made exactly this call {repeats} times in a row with the same result. "
                "Do something different, or give your final answer."
            )
            run.emit(
                Notice(f"same call repeated {repeats} times; warned the model", "warning", run.step)
            )
        turn = await _execute(run, turn, invalid, gen, note)
        failures = sum(r.is_error for r in turn.tool_results)
        run.failed = failures > 0 or bool(problems)
        errors = errors + 1 if failures == len(turn.tool_results) else 0
        if run.output_ready:
            return run.finish("final_answer", output=run.output)
        if errors >= limits.max_consecutive_errors:
            return run.finish("too_many_errors", f"{errors} steps in a row where every call failed")


async def _plan(run: RunState, prompt: list[int]) -> tuple[Generation, list[str], dict[str, str]]:
    """One model turn; malformed output is re-decoded (same prompt, call grammar) up to N times."""
    choice = run.choice_for_step()
    grammar = run.grammar(choice, prompt)
    media = run.model.media_for(run.history)
    budget = run.thinking.for_step(run.step, after_failure=run.failed)
    for attempt in range(run.limits.max_redecodes + 1):
        max_tokens = run.max_tokens_for(run.model.prompt_tokens(prompt))
        try:
            gen = await run.model.generate(
                prompt, step=run.step, emit=run.emit, max_tokens=max_tokens,
                thinking_budget=budget, grammar=grammar, media=media, **run.sampling,
            )  # fmt: skip
        except asyncio.CancelledError:
            if (partial := run.model.partial_turn()) is not None:
                run.commit(partial)  # keep what was generated before the cancel
            raise
        for spent in (*gen.redone, gen):  # attempts whose stream broke were spent too
            run.add_usage(spent)
        problems, invalid = run.check(gen, choice)
        run.emit(
            Usage(
                run.step, gen.usage.prompt_tokens, gen.usage.cached_prompt_tokens,
                gen.usage.generated_tokens, gen.usage.thinking_tokens, gen.tokens_per_second,
                gen.prompt_len + len(gen.ids), run.model.context_limit,
                run.model.engine.info.max_model_len, gen.finish_reason, gen.seconds,
                gen.first_token_seconds,
            )
        )  # fmt: skip
        last = not problems or attempt == run.limits.max_redecodes or run.budget_spent()
        if not last:  # greedy decoding of the same prompt and grammar writes the same again
            retry = run.grammar("required" if choice == "auto" else choice, prompt)
            last = retry == grammar and run.sampling.get("temperature") == 0
        run.record_step(prompt, gen, attempt=attempt, accepted=last)
        if last:
            return gen, problems, invalid
        run.failed_attempt(gen, problems, attempt + 1)
        grammar = retry
    raise AssertionError("unreachable")


async def _execute(
    run: RunState, turn: ModelTurn, invalid: dict[str, str], gen: Generation, note: str | None
) -> ModelTurn:
    """Run the calls; append the results to the live prompt (an exact append, see
    docs/format.md, 'Exact appends and the prefix cache')."""
    run.start_round(turn)
    await run.checkpoint(turn, "before")  # the workspace as it was: rewind restores it
    try:
        results = await execute_calls(
            run.tools, turn.tool_calls, step=run.step, emit=run.emit, invalid=invalid,
            on_result=run.round_result,
        )  # fmt: skip
    except asyncio.CancelledError:
        run.commit(_with_results(turn, run.round, CANCELLED))  # partial turn kept
        raise
    if note is not None:
        results = {k: _noted(r, note) for k, r in results.items()}
    results = run.add_nested_memory(turn.tool_calls, results)
    await run.checkpoint(turn, "after")
    done = _with_results(turn, results, CANCELLED)
    run.model.stage_tool_round(gen, done)  # appended after compaction (next step)
    run.commit(done)
    return done


def _noted(result: ToolResult, note: str) -> ToolResult:
    content = result.content
    if isinstance(content, dict):
        content = {**content, "warning": note}
    else:
        content = {"value": content, "warning": note}
    return result.model_copy(update={"content": content})


def _with_results(turn: ModelTurn, results: dict[str, ToolResult], missing: str) -> ModelTurn:
    ordered = tuple(
        results.get(c.id) or ToolResult(call_id=c.id, name=c.name, content=missing, is_error=True)
        for c in turn.tool_calls
    )
    return turn.model_copy(update={"tool_results": ordered})


async def _compact(run: RunState) -> None:
    """Between steps only: a call is never separated from its result. Then, compactor or not,
    fresh results larger than the room left are clipped to fit (the run goes on)."""
    ctx = _context(run)
    if run.compactor is not None:
        done = await run.compactor.compact(run.history, ctx)
        if done is not None:
            run.replace_history(done.history, done.event)
            ctx = _context(run)  # counted again only when the history changed
    fitted = fit_fresh_results(run.history, ctx)
    if fitted is not None:
        run.replace_history(fitted.history, fitted.event)
        ev = fitted.event
        note = f"a tool result was too large for the context: clipped to fit ({ev.tokens_after})"
        run.emit(Notice(note, "warning", run.step))


def _context(run: RunState) -> CompactionContext:
    return CompactionContext(
        count_tokens=run.model.count_tokens,
        limit_tokens=run.model.context_limit,
        summarize=run.summarize,
        spill=run.tools.spill,
        tokens=run.model.context_tokens(run.history),
        state=run.compaction,
        before=compaction_hook(run.tools, run.step, run.emit),  # PreCompact ("auto")
    )


__all__ = ["Message", "StopReason", "UserMessage", "run_loop"]
