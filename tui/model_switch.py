"""`/model`: switching the engine under a running TUI session; the conversation is kept.

The new engine starts while the current one serves, takes over between runs, and the old one
is closed after it (``--replace``: the old one is stopped first; one GPU may not hold both). On
failure the current engine stays in use (after ``--replace`` it is started again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..agent import Engine, create_engine, find_preset, model_problem
from ..errors import ConfigError
from .blocks import NoticeBlock
from .chrome import EngineProgress
from .commands import EngineFlags, model_choices, parse_model_args
from .format import error_text

if TYPE_CHECKING:
    from .app import GemmaApp
    from .backend import Backend

# Starts the engine for `/model` from engine settings: ``model``, ``variant`` and any other
# engine flags given (`gemma_agent.agent.EngineConfig` fields).
EngineFactory = Callable[[dict[str, Any]], Awaitable[Engine]]

TINY_BANNER = (
    "No GPU or no Gemma weights here: running the tiny random-weight model. Its outputs are "
    "noise; it only shows that everything is wired. Use --model on a GPU machine, or "
    "--engine http --base-url URL, for real answers."
)


@dataclass
class ModelSwitch:
    """A `/model` switch under way: the new engine starts while the current one serves."""

    name: str
    settings: dict[str, Any]
    started: float
    text: str
    replace: bool = False  # stop the current engine first (one GPU may not hold both)
    engine: Engine | None = None  # started, waiting for the run in flight to end
    down: bool = False  # (replace) the current engine is stopped or stopping

    @property
    def holds_tasks(self) -> bool:
        """New tasks wait in the queue: the new engine takes over next, or none is up."""
        return self.engine is not None or self.down


class ModelSwitcher:
    """The `/model` command of a `GemmaApp`: shows the models, starts one, hands it the session.

    ``engine_factory`` starts an engine from settings (default: `create_engine` with those
    settings alone); ``engine_settings`` start the current model again (a failed ``--replace``
    does; None: unknown); ``engine_flags`` adds the engine flags of `gemma-agent --help` to
    /model's arguments (None: only NAME and --replace).
    """

    def __init__(
        self,
        app: GemmaApp,
        *,
        engine_factory: EngineFactory | None = None,
        engine_settings: dict[str, Any] | None = None,
        engine_flags: EngineFlags | None = None,
    ) -> None:
        self.app = app
        self.engine_factory: EngineFactory = engine_factory or _create_engine
        self.engine_settings = engine_settings
        self.engine_flags = engine_flags
        self.switch: ModelSwitch | None = None  # a switch under way
        self.retired: Engine | None = None  # a replaced engine still being closed

    @property
    def holds_tasks(self) -> bool:
        """Tasks wait: a new engine takes over when the run in flight ends, or (--replace) the
        current engine is being stopped."""
        return self.switch is not None and self.switch.holds_tasks

    def overview(self, backend: Backend) -> str:
        lines = [f"**Current:** {backend.describe()}", "", "**Switch with** `/model NAME`:", ""]
        for name, about in model_choices():
            lines.append(f"- `{name}` — {about}")
        lines += [
            "",
            "or a local checkpoint folder (`/model /path/to/gemma-4-E4B-it`), or a Hugging Face "
            "id with its variant (`/model org/model --variant E4B`). The engine flags of "
            "`gemma-agent --help` apply too (`--engine http --base-url URL`, `--max-model-len N`). "
            "The conversation is kept; the current model answers until the new one is ready.",
        ]
        if self.switch is not None:
            lines += ["", f"Switching to {self.switch.name}…"]
        return "\n".join(lines)

    def command(self, backend: Backend, arg: str) -> None:
        """``/model``: the current model and the choices; ``/model NAME ...``: switch to it."""
        if not arg:
            self.app.say(self.overview(backend), markdown=True)
            return
        if self.switch is not None:
            self.app.say(
                f"A switch to {self.switch.name} is under way; /model again when it is done.",
                level="warning",
            )
            return
        try:
            settings = parse_model_args(arg, self.engine_flags)
            name = settings["model"] = self.model_path(str(settings["model"]))
            if set(settings) == {"model"} and same_model(name, backend.model):
                self.app.say(f"Already on {backend.model}.")
                return
            problem = model_problem(name, settings.get("variant"))
            if problem is not None:
                raise ConfigError(problem)
        except ConfigError as e:
            self.app.add_block(NoticeBlock(error_text(e), level="error", title="Cannot switch"))
            return
        replace = bool(settings.pop("replace", False))
        text = f"Starting {name}; {backend.model} answers until it is ready"
        if replace:
            text = f"Stopping {backend.model}, then starting {name}"
        self.switch = ModelSwitch(name, settings, self.app.clock(), text, replace=replace)
        progress = self.app.query_one(EngineProgress)
        progress.show(text, 0.0)
        progress.display = True
        self.app.run_worker(self.run(backend), group="switch", exit_on_error=False)

    def model_path(self, name: str) -> str:
        """A checkpoint folder given relative to the current folder or the workspace, made
        absolute (the session log records it; a later --resume finds it from anywhere)."""
        path = Path(name).expanduser()
        for base in (Path.cwd(), self.app.workspace):
            if base is not None and (base / path).is_dir():
                return str((base / path).resolve())
        return name

    async def run(self, backend: Backend) -> None:
        """Start the new engine, hand the session to it between runs, then close the old one
        (``--replace``: close it first). On failure the current engine stays in use (or, after
        --replace, is started again)."""
        switch = self.switch
        assert switch is not None
        progress = self.app.query_one(EngineProgress)
        try:
            if switch.replace:
                switch.down = True  # new tasks wait from now on
                await self.between_runs()
                switch.text = f"Stopping {backend.model}"
                await self.retire(backend.close_engine(), backend.model)
                switch.text = f"Starting {switch.name} (tasks wait until it is up)"
            try:
                engine = await self.engine_factory(switch.settings)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if switch.replace:
                    await self.restore(backend, switch, e)
                    return
                hint = ""
                if "memory" in str(e).lower():
                    hint = (
                        " If one GPU cannot hold both models, `/model NAME --replace` stops "
                        "the current engine first."
                    )
                self.app.add_block(
                    NoticeBlock(
                        f"{error_text(e)}\n\nStill on {backend.model}.{hint}",
                        level="error",
                        title=f"Could not switch to {switch.name}",
                    )
                )
                return
            switch.engine = engine
            if not self.app.run_ended.is_set():
                switch.text = f"{engine.info.model} is ready; it takes over when this run ends"
            await self.between_runs()
            try:
                previous = backend.use_engine(engine)
            except Exception as e:
                with contextlib.suppress(Exception):
                    await engine.aclose()
                self.app.add_block(
                    NoticeBlock(error_text(e), level="error", title="Could not switch")
                )
                return
            switch.engine = None  # the agent's now
            switch.down = False
            self.engine_settings = switch.settings
            # After --replace the previous engine is already closed.
            await self.switched(backend, None if switch.replace else previous)
        finally:
            if self.switch is switch:
                self.switch = None
            if switch.engine is not None:  # started but never handed over (cancelled)
                with contextlib.suppress(Exception):
                    await switch.engine.aclose()
            progress.display = self.app.backend is None and self.app.engine_error is None
            self.app.next_queued()

    async def between_runs(self) -> None:
        """Until no run is in flight (the agent's session is free)."""
        while not self.app.run_ended.is_set():
            await self.app.run_ended.wait()

    async def restore(self, backend: Backend, switch: ModelSwitch, error: Exception) -> None:
        """A ``--replace`` switch failed after the old engine was stopped: start it again."""
        why = error_text(error)
        title = f"Could not switch to {switch.name}"
        if self.engine_settings is None:
            self.app.add_block(
                NoticeBlock(
                    f"{why}\n\n{backend.model} was stopped and cannot be restarted from here: "
                    "/model NAME starts an engine.",
                    level="error",
                    title=title,
                )
            )
            return
        switch.text = f"Starting {backend.model} again"
        try:
            engine = await self.engine_factory(self.engine_settings)
            backend.use_engine(engine)  # the previous one is closed already
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.app.add_block(
                NoticeBlock(
                    f"{why}\n\nStarting {backend.model} again failed too: {error_text(e)}\n"
                    "/model NAME starts an engine.",
                    level="error",
                    title=title,
                )
            )
            return
        self.app.add_block(
            NoticeBlock(f"{why}\n\nBack on {backend.model}.", level="error", title=title)
        )

    async def switched(self, backend: Backend, previous: Engine | None) -> None:
        """The new engine is in place: status bar, notice, context check; then close the old."""
        was_tiny = self.app.status.info.variant == "tiny"
        self.app.status.set(
            model=backend.model,
            variant=backend.variant,
            cache_hit=None,
            thinking_tps=None,
            answer_tps=None,
        )
        context = ""
        try:
            tokens, limit = await backend.context_usage()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the gauge is refreshed by the next run's usage anyway
            tokens, limit = 0, 0
            self.app.say(f"Could not measure the conversation on {backend.model}: {error_text(e)}")
        else:
            info = backend.engine_info
            window = info.max_model_len if info is not None else 0
            self.app.status.set(context_tokens=tokens, context_limit=limit, context_window=window)
            context = f" · context {limit} tokens"
        variant = f" ({backend.variant})" if backend.variant else ""
        self.app.say(f"Switched to {backend.model}{variant}{context}. The conversation continues.")
        if backend.variant == "tiny" and not was_tiny:
            self.app.add_block(NoticeBlock(TINY_BANNER, level="warning"))
        if limit and tokens > limit:
            if backend.compacts:
                self.app.say(
                    f"The conversation ({tokens} tokens) is longer than {backend.model}'s "
                    f"context ({limit}): the next run compacts it first (or /compact now).",
                    level="warning",
                )
            else:
                self.app.say(
                    f"The conversation ({tokens} tokens) is longer than {backend.model}'s "
                    f"context ({limit}) and compaction is off: /clear starts a new session, "
                    "or /model switches back.",
                    level="warning",
                )
        self.app.next_queued()  # the new engine answers while the old one closes
        if previous is not None:
            name = previous.info.model
            if self.switch is not None:
                self.switch.text = f"Stopping {name}"
            self.retired = previous
            try:
                await self.retire(previous.aclose(), name)
            finally:
                self.retired = None

    async def retire(self, closing: Awaitable[None], name: str) -> None:
        """Close a replaced engine (a vLLM engine's core process and memory go with it)."""
        try:
            await closing
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.app.say(f"{name} did not close cleanly: {error_text(e)}", level="warning")

    async def aclose(self) -> None:
        """Close what a switch cut short by leaving left running."""
        pending = [self.retired, self.switch.engine if self.switch is not None else None]
        for engine in pending:
            if engine is not None:
                with contextlib.suppress(Exception):
                    await engine.aclose()


async def _create_engine(settings: dict[str, Any]) -> Engine:
    """`/model` without an engine factory given: the settings alone (no launch flags)."""
    return await create_engine({**settings, "quiet": True})


def same_model(name: str, current: str) -> bool:
    """Whether two model names mean the same model (a preset by any of its names)."""
    a, b = find_preset(name), find_preset(current)
    if a is not None or b is not None:
        return a is b
    return name == current
