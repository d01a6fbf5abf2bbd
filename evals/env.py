"""An eval suite as an RL environment: reset gives a task's first prompt, each step is one
model turn with its tool round, and the last step carries the grader's reward.

    env = EvalEnv(load_suite("humaneval"), tokenizer=tokenizer, variant="E4B")
    obs = await env.reset(0)
    while True:
        ids = await my_sampler(obs.prompt_ids, max_tokens=obs.max_tokens, stop=obs.stop_token_ids)
        step = await env.step(ids)
        if step.done:
            break
        obs = step.observation
    step.reward, step.tests_run, step.tests_failed
    await env.close()

Each episode is one eval sample. `AgentSolver` runs its `Agent` (the tools, approval policy,
limits and instructions of ``gemma-agent eval``) in a fresh sandboxed `Workspace`, and the
real grader scores what it leaves there. The only difference is the engine. Here it is a
bridge: it hands each engine request to the caller as an `Observation` and waits for `step` to
bring back the output. The prompt ids are therefore the ids the agent loop sends an engine, by
construction: each output is appended as generated, tool responses as the loop renders them,
and re-renders, nudges and re-decodes of malformed output happen where the loop makes them.
See docs/training-data.md.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..agent import EngineInfo, Message, find_preset
from ..agent.engines.base import Engine, EngineDelta, EngineRequest, EngineUsage, FinishReason
from ..errors import ConfigError
from ..prompts import tokens as T
from ..prompts.tokens import Tokenizer
from .export import resolve_tokenizer
from .grader import Grade, grade
from .sandbox import SandboxKind, sandbox_kind
from .solvers import INSTRUCTIONS, AgentSolver, SolveOutcome, _default_tools, run_id_for
from .tasks import Suite, Task
from .workspace import Workspace

if TYPE_CHECKING:
    from ..agent.agent import Agent
    from ..tools.base import Tool

RewardFn = Callable[[Grade | None, SolveOutcome], float]
"""``(grade, outcome) -> reward``; ``grade`` is None when the agent did not finish (an error
or a timeout), as the eval runner then grades nothing."""


def pass_fail(grade: Grade | None, outcome: SolveOutcome) -> float:
    """The default reward: 1.0 when the hidden tests passed, else 0.0."""
    return 1.0 if grade is not None and grade.passed else 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    """One engine request of the agent loop: what the policy must continue."""

    prompt_ids: list[int]  # exactly what an engine would receive
    messages: list[Message]  # the typed history the prompt stands for (no system turn)
    request: EngineRequest  # the loop's request: max_tokens, grammar, thinking budget, ...
    step: int  # engine requests before this one in the episode (0 after reset)
    stop_token_ids: list[int]  # sample until one of these (keep it in the output)
    tokenizer: Tokenizer = field(repr=False, compare=False)

    @property
    def max_tokens(self) -> int:
        return self.request.max_tokens

    @property
    def text(self) -> str:
        """The prompt decoded with its control tokens: the official template's rendering."""
        return self.tokenizer.decode(self.prompt_ids)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one `EvalEnv.step` led to: the next request, or the end of the episode."""

    observation: Observation | None  # the next prompt; None once done
    done: bool
    completion_ids: list[int]  # the output as the loop received it (see `EvalEnv.step`)
    reward: float | None = None  # set when done
    grade: Grade | None = None  # the hidden tests' verdict; None when the agent did not finish
    outcome: SolveOutcome | None = None  # the agent's run (steps, stop reason, tokens, ...)

    @property
    def passed(self) -> bool:
        return self.grade is not None and self.grade.passed

    @property
    def tests_run(self) -> int:
        return self.grade.tests_run if self.grade is not None else 0

    @property
    def tests_failed(self) -> int:
        return self.grade.tests_failed if self.grade is not None else 0


@dataclass(slots=True)
class _Pending:
    request: EngineRequest
    output: asyncio.Future[tuple[list[int], FinishReason]]


class _Bridge:
    """An `Engine` whose outputs come from `EvalEnv.step`: each request waits for one."""

    def __init__(self, info: EngineInfo, tokenizer: Tokenizer) -> None:
        self.info = info
        self.tokenizer = tokenizer
        self.requests: asyncio.Queue[_Pending] = asyncio.Queue()

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        pending = _Pending(request, asyncio.get_running_loop().create_future())
        self.requests.put_nowait(pending)
        ids, finish = await pending.output  # cancelled with the run (a time limit, close())
        yield EngineDelta(
            token_ids=ids,
            text=self.tokenizer.decode(ids),
            finish_reason=finish,
            usage=EngineUsage(len(request.prompt_ids), 0, len(ids)),
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    async def aclose(self) -> None:
        return None


@dataclass
class _EnvSolver(AgentSolver):
    agent: Agent | None = None  # the agent of the episode, once built

    def agent_for(self, task: Task, workspace: Workspace) -> Agent:
        self.agent = AgentSolver.agent_for(self, task, workspace)
        return self.agent


@dataclass
class _Episode:
    task: Task
    workspace: Workspace
    bridge: _Bridge
    solver: _EnvSolver
    run: asyncio.Task[SolveOutcome] | None = None
    pending: _Pending | None = None
    steps: int = 0


class EvalEnv:
    """Drive an eval suite as an environment, one episode (task-sample) at a time.

    Args:
        suite: the tasks (a `Suite` or a sequence of `Task`).
        engine: where the model's description comes from (its `EngineInfo` and tokenizer).
            The environment never calls it: the outputs come from `step`.
        model: without ``engine``, the model name written to the session logs; it also finds
            the tokenizer when ``tokenizer`` is not given (as `gemma-agent export` does).
        tokenizer: a `Tokenizer`, a checkpoint folder or a ``tokenizer.json``.
        variant: the Gemma 4 variant that picks the template (default: the model's preset).
        max_model_len: the context the loop may fill.
        supports_grammar: the sampler honours `EngineRequest.grammar` (constrained tool calls).
        tools: a factory of the tools, as `AgentSolver` takes it (default: the coding tools).
        instructions: the system instructions (default: the eval's).
        agent_options: `Agent` options on top of the eval's (thinking, max_steps, ...).
        trajectories: a folder for the session log of each episode (``{task}-s{sample}.jsonl``,
            which `gemma-agent export` reads); None keeps them with the workspace only.
        sandbox: ``"bwrap"`` or ``"rlimit"`` (default: bwrap when it works), as for the eval.
        workdir: where the temporary workspaces are made.
        reward: ``(grade, outcome) -> float``; the default is 1.0 passed, 0.0 otherwise.
    """

    def __init__(
        self,
        suite: Suite | Sequence[Task],
        engine: Engine | None = None,
        *,
        model: str | None = None,
        tokenizer: Tokenizer | str | os.PathLike[str] | None = None,
        variant: str | None = None,
        max_model_len: int = 32768,
        supports_grammar: bool = False,
        tools: Callable[[], Sequence[Tool]] = _default_tools,
        instructions: str = INSTRUCTIONS,
        agent_options: dict[str, Any] | None = None,
        trajectories: str | os.PathLike[str] | None = None,
        sandbox: SandboxKind | None = None,
        workdir: str | os.PathLike[str] | None = None,
        reward: RewardFn = pass_fail,
    ) -> None:
        self.tasks: tuple[Task, ...] = tuple(suite.tasks if isinstance(suite, Suite) else suite)
        if engine is not None:
            self.info, self.tokenizer = engine.info, engine.tokenizer
        else:
            if tokenizer is None and model is None:
                raise ConfigError("EvalEnv needs engine=, or tokenizer= (or model=) and variant=")
            self.tokenizer = resolve_tokenizer(model, tokenizer)
            if variant is None:
                preset = find_preset(model) if model else None
                variant = preset.name if preset else "tiny" if model == "tiny" else None
            if variant is None:
                raise ConfigError(f"EvalEnv: pass variant= (E2B, E4B, ...) for model {model!r}")
            self.info = EngineInfo(
                model or "env", variant, max_model_len, supports_grammar=supports_grammar
            )
        self.tools = tools
        self.instructions = instructions
        self.agent_options = dict(agent_options or {})
        self.trajectories = Path(trajectories) if trajectories is not None else None
        self.sandbox = sandbox
        self.workdir = Path(workdir) if workdir is not None else None
        self.reward = reward
        self._stop_ids = [self.tokenizer.control_id(m) for m in T.STOP_MARKERS]
        self._episode: _Episode | None = None

    def __len__(self) -> int:
        return len(self.tasks)

    async def __aenter__(self) -> EvalEnv:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def task(self, which: int | str | Task) -> Task:
        """A task by index, id, or itself."""
        if isinstance(which, Task):
            return which
        if isinstance(which, int):
            return self.tasks[which]
        for t in self.tasks:
            if t.id == which:
                return t
        raise KeyError(f"no task {which!r} in this environment")

    async def reset(self, task: int | str | Task = 0, *, sample: int = 0) -> Observation:
        """Start an episode of ``task`` (its pass@k ``sample`` index names its log) in a fresh
        workspace, ending the current one, and return the first prompt."""
        await self.close()
        chosen = self.task(task)
        if self.sandbox is None:
            self.sandbox = await asyncio.to_thread(sandbox_kind)
        workspace = await asyncio.to_thread(Workspace.create, chosen, parent=self.workdir)
        try:
            await workspace.setup(chosen, kind=self.sandbox)
            bridge = _Bridge(self.info, self.tokenizer)
            solver = _EnvSolver(
                engine=bridge,
                trajectories=self.trajectories or workspace.root / "trajectories",
                agent_options=self.agent_options,
                tools=self.tools,
                instructions=self.instructions,
            )
        except BaseException:
            await asyncio.to_thread(workspace.cleanup)
            raise
        ep = self._episode = _Episode(chosen, workspace, bridge, solver)
        run_id = run_id_for(chosen.id, sample)
        ep.run = asyncio.create_task(
            solver.solve(chosen, workspace, run_id=run_id), name=f"env {run_id}"
        )
        obs = await self._advance(ep)
        if isinstance(obs, Observation):
            return obs
        await self.close()
        why = obs.error or obs.stop_reason
        raise ConfigError(f"the episode of {chosen.id} ended before the model was asked: {why}")

    async def step(self, output: str | Sequence[int]) -> StepResult:
        """Give the model's output for the current observation; run its tool round.

        ``output``: the generated token ids (the stop id included, as engines return it), or
        text. Text is tokenized with control markers read as tokens and, like `ScriptedEngine`,
        gets a stop marker when it lacks one: ``<|tool_response>`` after a tool call, else
        ``<turn|>``. Ids past the request's ``max_tokens`` are cut off; an output that does not
        end with a stop id counts as cut at the length limit.
        """
        ep = self._episode
        if ep is None or ep.pending is None:
            raise RuntimeError("no episode is waiting for an output: call reset() first")
        pending, ep.pending = ep.pending, None
        ids = self._ids(output)[: pending.request.max_tokens]
        stops = {*self._stop_ids, *pending.request.stop_token_ids}
        finish: FinishReason = "stop" if ids and ids[-1] in stops else "length"
        if not pending.output.done():  # else the run stopped meanwhile (its time limit)
            pending.output.set_result((ids, finish))
        ep.steps += 1
        nxt = await self._advance(ep)
        if isinstance(nxt, Observation):
            return StepResult(nxt, False, ids)
        return await self._finish(ep, ids)

    async def close(self) -> None:
        """End the current episode (its run is cancelled) and remove its workspace."""
        ep, self._episode = self._episode, None
        if ep is None:
            return
        if ep.run is not None and not ep.run.done():
            ep.run.cancel()
            await asyncio.wait({ep.run})
        await asyncio.to_thread(ep.workspace.cleanup)

    def _ids(self, output: str | Sequence[int]) -> list[int]:
        if not isinstance(output, str):
            return list(output)
        if not output.endswith(T.STOP_MARKERS):
            tail = output.rfind(T.TOOL_CALL_OPEN)
            is_call = tail >= 0 and T.TOOL_CALL_CLOSE in output[tail:]
            output += T.TOOL_RESPONSE_OPEN if is_call else T.TURN_CLOSE
        return self.tokenizer.encode(output)

    async def _advance(self, ep: _Episode) -> Observation | SolveOutcome:
        """Wait for the loop's next request, or for its run to end."""
        assert ep.run is not None
        get = asyncio.ensure_future(ep.bridge.requests.get())
        try:
            await asyncio.wait({get, ep.run}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            ep.pending = get.result()
            request = ep.pending.request
            agent = ep.solver.agent
            return Observation(
                prompt_ids=list(request.prompt_ids),
                messages=agent.history() if agent is not None else [],
                request=request,
                step=ep.steps,
                stop_token_ids=[*self._stop_ids, *request.stop_token_ids],
                tokenizer=self.tokenizer,
            )
        return ep.run.result()

    async def _finish(self, ep: _Episode, ids: list[int]) -> StepResult:
        """The run is over: grade what it left (as the eval runner does) and close."""
        assert ep.run is not None
        outcome = ep.run.result()
        verdict = None
        try:
            if outcome.status == "done":
                verdict = await grade(ep.task, ep.workspace, kind=self.sandbox)
        finally:
            await self.close()
        return StepResult(None, True, ids, self.reward(verdict, outcome), verdict, outcome)


__all__ = ["EvalEnv", "Observation", "RewardFn", "StepResult", "pass_fail"]
