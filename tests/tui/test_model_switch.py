"""`/model`: switching engines in place on the real Agent (two ScriptedEngines), history kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.factory import EngineConfig
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.agent.session import last_model, load_session, session_path
from gemma_agent.cli import add_engine_arguments
from gemma_agent.errors import ConfigError
from gemma_agent.launch import session_model, switch_settings
from gemma_agent.prompts.render import render_chat
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import AnswerBlock, CompactionMarker, NoticeBlock
from gemma_agent.tui.chrome import CommandMenu
from gemma_agent.tui.config import TuiSettings

from .harness import fixed_clock, make_agent, send, type_text, wait_for, wait_idle

SIZE = (110, 40)
L_GENERATION_PROMPT = "<|turn>model\n<|channel>thought\n<channel|>"  # 31B, thinking off


class Engine(ScriptedEngine):
    """Counts its closes (a vLLM engine's core process goes with aclose)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closes = 0

    async def aclose(self) -> None:
        self.closes += 1
        await super().aclose()


class Factory:
    """The app's engine factory: records the settings (and whether the engine in use was
    already closed), then returns or raises its next result."""

    def __init__(
        self,
        *results: ScriptedEngine | BaseException,
        watch: Engine | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.results = list(results)
        self.watch = watch
        self.gate = gate
        self.calls: list[dict[str, Any]] = []
        self.closed_before: list[int] = []  # watch.closes at each call

    async def __call__(self, settings: dict[str, Any]) -> ScriptedEngine:
        self.calls.append(dict(settings))
        if self.watch is not None:
            self.closed_before.append(self.watch.closes)
        await asyncio.sleep(0)  # a real engine start yields to the loop
        if self.gate is not None:
            await self.gate.wait()
        result = self.results.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result


def build(
    tmp_path: Path, a: Engine, factory: Factory, settings: dict[str, Any] | None = None
) -> GemmaApp:
    agent, _ = make_agent(tmp_path, [], engine=a, thinking=False)
    return GemmaApp(
        backend=AgentBackend(agent),
        settings=TuiSettings(),
        workspace=tmp_path,
        clock=fixed_clock,
        engine_factory=factory,
        engine_settings=settings,
        engine_flags=add_engine_arguments,
    )


def notices(app: GemmaApp, level: str | None = None) -> list[NoticeBlock]:
    return [
        b
        for b in app.blocks()
        if isinstance(b, NoticeBlock) and (level is None or b.level == level)
    ]


def answers(app: GemmaApp) -> list[str]:
    return [b.text for b in app.blocks() if isinstance(b, AnswerBlock)]


async def test_switch_keeps_the_history_and_closes_the_old_engine(tmp_path: Path) -> None:
    a = Engine(["Answer from A."], model="model-a", variant="E4B")
    b = Engine(["Answer from B."], model="model-b", variant="31B", max_model_len=65536)
    factory = Factory(b)
    app = build(tmp_path, a, factory)
    async with app.run_test(size=SIZE) as pilot:
        backend = app.backend
        assert isinstance(backend, AgentBackend)
        await send(pilot, "first question")
        await wait_idle(pilot)
        assert app.status.info.model == "model-a"
        await send(pilot, "/model 31B")
        await wait_for(pilot, lambda: app.switch is None)
        assert factory.calls == [{"model": "31B"}]
        assert a.closes == 1 and b.closes == 0  # the old engine is gone, the new one serves
        info = app.status.info
        assert (info.model, info.variant) == ("model-b", "31B")
        assert info.context_limit == 65536 - backend.agent.max_output_tokens
        assert 0 < info.context_tokens < info.context_limit
        assert any("Switched to model-b (31B)" in n.message for n in notices(app))

        await send(pilot, "second question")
        await wait_idle(pilot)
        assert answers(app) == ["Answer from A.", "Answer from B."]
        assert len(a.requests) == 1 and len(b.requests) == 1
        # B got the whole conversation, rendered afresh with the 31B (L family) template.
        prompt = b.requests[0].prompt_text
        assert "first question" in prompt and "Answer from A." in prompt
        assert prompt.endswith("second question<turn|>\n" + L_GENERATION_PROMPT)
        history = backend.agent.history()[:-1]  # without B's answer
        decls = backend.agent.registry.declarations()
        assert prompt == render_chat(history, decls, variant="31B", enable_thinking=False)

        # The session log says which model answered which run; the last one is B's.
        assert backend.session_id is not None
        path = session_path(backend.agent.sessions_dir, backend.session_id)
        saved = load_session(path)
        runs = [(e["model"], e["variant"]) for e in saved.events if e["kind"] == "run_started"]
        assert runs == [("model-a", "E4B"), ("model-b", "31B")]
        assert last_model(saved) == ("model-b", "31B")
    assert b.closes == 1 and a.closes == 1  # leaving closes the new engine; no engine is left
    a.assert_complete()
    b.assert_complete()


async def test_failing_switch_keeps_the_old_engine(tmp_path: Path) -> None:
    a = Engine(["One.", "Two."], model="model-a")
    factory = Factory(ConfigError("no checkpoint at /models/e2b: download it first"))
    app = build(tmp_path, a, factory)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello")
        await wait_idle(pilot)
        await send(pilot, "/model E2B")
        await wait_for(pilot, lambda: app.switch is None)
        card = notices(app, "error")[-1]
        assert "no checkpoint at /models/e2b" in card.message
        assert "Still on model-a" in card.message
        assert a.closes == 0 and app.status.info.model == "model-a"
        await send(pilot, "again")
        await wait_idle(pilot)
        assert answers(app) == ["One.", "Two."]

        # Names that cannot be a model are refused at once, with the names that exist.
        await send(pilot, "/model E5B")
        card = notices(app, "error")[-1]
        assert "Unknown model 'E5B'. Did you mean E4B?" in card.message
        assert "E2B, E4B, 12B, 26B-A4B, 31B, tiny" in card.message
        await send(pilot, "/model E4B --variant X9")
        assert "Unknown variant 'X9'" in notices(app, "error")[-1].message
        await send(pilot, "/model E4B --turbo")
        assert "unrecognized arguments: --turbo" in notices(app, "error")[-1].message
        await send(pilot, "/model ./no-such-folder")
        assert "No checkpoint folder at ./no-such-folder" in notices(app, "error")[-1].message
        assert len(factory.calls) == 1
    a.assert_complete()


async def test_model_during_a_run_takes_over_when_the_run_ends(tmp_path: Path) -> None:
    """Decision: /model during a run is not refused; the new engine starts at once and takes
    over between runs (the run in flight ends on the old one), as prompts typed meanwhile do."""
    answer = "Slow answer from A. " * 12
    a = Engine([answer], model="model-a", token_delay=0.01)
    b = Engine(["B answers the queued task."], model="model-b", variant="E2B")
    app = build(tmp_path, a, Factory(b))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "go")
        await wait_for(pilot, lambda: bool(answers(app)))
        assert app.running
        await send(pilot, "/model E2B")
        await wait_for(pilot, lambda: app.switch_ready or not app.running)
        assert app.running, "the scripted run ended before the switch was ready"
        assert app.status.info.model == "model-a" and a.closes == 0
        await send(pilot, "/model 31B")
        assert "A switch to E2B is under way" in notices(app, "warning")[-1].message
        await send(pilot, "queued task")
        assert app.queue == ["queued task"]
        await wait_for(pilot, lambda: app.switch is None)
        await wait_idle(pilot)
        assert answers(app) == [answer.strip(), "B answers the queued task."]
        assert a.closes == 1 and app.status.info.model == "model-b"
        assert "queued task" in b.requests[0].prompt_text
        assert "Slow answer from A." in b.requests[0].prompt_text
    a.assert_complete()
    b.assert_complete()


async def test_model_shows_choices_and_completes_preset_names(tmp_path: Path) -> None:
    a = Engine([], model="model-a")
    factory = Factory(Engine([], model="model-b"))
    app = build(tmp_path, a, factory)
    async with app.run_test(size=SIZE) as pilot:
        menu = app.query_one(CommandMenu)
        await type_text(pilot, "/model ")
        assert [c.label for c in menu.choices] == [
            "E2B",
            "E4B",
            "12B",
            "26B-A4B",
            "31B",
            "tiny",
            "tiny-mm",
        ]
        assert menu.display
        await pilot.press("enter")  # nothing picked: sends "/model" as typed (shows, no switch)
        await pilot.pause()
        shown = notices(app)[-1].message
        assert "model model-a" in shown and "26B-A4B" in shown and "checkpoint folder" in shown
        assert factory.calls == []
        await type_text(pilot, "/model 2")
        assert [c.label for c in menu.choices] == ["26B-A4B"]
        await pilot.press("tab")
        await pilot.pause()
        assert app.prompt.text == "/model 26B-A4B"
        app.prompt.clear()
        await type_text(pilot, "/model ")
        await pilot.press("down", "enter")  # picked with the arrows: fills it in, sends nothing
        await pilot.pause()
        assert app.prompt.text == "/model E4B" and factory.calls == []
        app.prompt.clear()
        await send(pilot, "/model model-a")
        assert notices(app)[-1].message == "Already on model-a."


async def test_resume_flag_reopens_on_the_model_the_session_last_used(tmp_path: Path) -> None:
    engine = ScriptedEngine(["Hi."], model="31B", variant="31B")
    agent = Agent(engine=engine, workspace=tmp_path, fsync=False)
    result = await agent.run("hello")
    await agent.aclose()
    assert session_model(tmp_path, result.session_id) == ("31B", "31B")
    # A model that cannot be started again (an HTTP replica's URL) leaves the usual model.
    served = ScriptedEngine(["Hi."], model="http://127.0.0.1:8000")
    agent = Agent(engine=served, workspace=tmp_path, fsync=False)
    other = await agent.run("hello")
    await agent.aclose()
    assert session_model(tmp_path, other.session_id) is None
    assert session_model(tmp_path, "no-such-session") is None


def test_switch_settings_keep_the_launch_flags_but_not_the_old_models() -> None:
    from gemma_agent.cli import build_parser

    launch = build_parser().parse_args(
        [
            "--model", "E4B", "--variant", "E4B", "--max-model-len", "8192",
            "--engine", "http", "--base-url", "http://gpu:8000", "--gpu-memory-utilization", "0.5",
            "--image", "cat.png",
        ]
    )  # fmt: skip
    settings = switch_settings(launch, {"model": "31B"})
    assert settings["model"] == "31B" and settings["quiet"] is True
    assert "variant" not in settings and "max_model_len" not in settings
    assert settings["engine"] == "http" and settings["base_url"] == ["http://gpu:8000"]
    assert settings["gpu_memory_utilization"] == 0.5 and settings["image"] == ["cat.png"]
    config = EngineConfig.from_namespace(settings)
    assert (config.model, config.variant, config.max_model_len) == ("31B", None, None)
    assert config.media and config.engine == "http"
    again = switch_settings(launch, {"model": "31B", "max_model_len": 16384})
    assert EngineConfig.from_namespace(again).max_model_len == 16384


async def test_long_history_without_compaction_and_resume_on_another_model(
    tmp_path: Path,
) -> None:
    a = Engine(["Answer from A. " * 40], model="model-a")
    b = Engine([], model="model-b", max_model_len=4096 + 200)  # 200 usable tokens
    app = build(tmp_path, a, Factory(b))
    async with app.run_test(size=SIZE) as pilot:
        backend = app.backend
        assert isinstance(backend, AgentBackend)
        backend.agent.compactor = None
        assert not backend.compacts
        await send(pilot, "a long question " * 20)
        await wait_idle(pilot)
        session = backend.session_id
        await send(pilot, "/model E2B")
        await wait_for(pilot, lambda: app.switch is None)
        warning = notices(app, "warning")[-1].message
        assert "longer than model-b's context (200)" in warning and "compaction is off" in warning
        assert app.status.info.context_tokens > app.status.info.context_limit == 200
        # Resuming a session last run on another model says so.
        await send(pilot, "/clear")
        assert session is not None
        await send(pilot, f"/resume {session}")
        assert "This session last ran on model-a; it continues on model-b" in (
            notices(app)[-1].message
        )
    a.assert_complete()


async def test_history_too_long_for_the_new_model_is_compacted_by_the_next_run(
    tmp_path: Path,
) -> None:
    a = Engine(["Answer from A. " * 40, "Second from A. " * 40], model="model-a")
    # The tools' declarations alone are ~6K byte-tokens: 7,000 usable fit them, not the chat.
    b = Engine(["Short summary.", "B answers."], model="model-b", max_model_len=4096 + 7000)
    app = build(tmp_path, a, Factory(b))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "a long question " * 20)
        await wait_idle(pilot)
        await send(pilot, "another long question " * 20)
        await wait_idle(pilot)
        await send(pilot, "/model E2B")
        await wait_for(pilot, lambda: app.switch is None)
        assert "the next run compacts it first" in notices(app, "warning")[-1].message
        assert app.status.info.context_tokens > app.status.info.context_limit == 7000
        await send(pilot, "next")
        await wait_idle(pilot)
        assert any(isinstance(x, CompactionMarker) for x in app.blocks())
        assert answers(app)[-1] == "B answers."
        summary_request, answer_request = b.requests
        assert "Second from A." in summary_request.prompt_text  # B summarized A's turns
        assert answer_request.prompt_text.endswith("next<turn|>\n<|turn>model\n")
        assert len(answer_request.prompt_ids) < 7000
    b.assert_complete()


async def test_replace_stops_the_current_engine_before_starting_the_new_one(
    tmp_path: Path,
) -> None:
    a = Engine(["From A."], model="model-a")
    b = Engine(["From B."], model="model-b", variant="31B")
    factory = Factory(b, watch=a)
    app = build(tmp_path, a, factory)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "one")
        await wait_idle(pilot)
        await send(pilot, "/model 31B --replace")
        await wait_for(pilot, lambda: app.switch is None)
        assert factory.calls == [{"model": "31B"}]  # --replace is not an engine setting
        assert factory.closed_before == [1]  # A was stopped before B started
        assert a.closes == 1 and app.status.info.model == "model-b"
        await send(pilot, "two")
        await wait_idle(pilot)
        assert answers(app) == ["From A.", "From B."]
        assert "one" in b.requests[0].prompt_text
    a.assert_complete()
    b.assert_complete()


async def test_failed_replace_starts_the_previous_model_again(tmp_path: Path) -> None:
    a = Engine(["From A."], model="model-a")
    again = Engine(["From A, restarted."], model="model-a")
    factory = Factory(ConfigError("CUDA out of memory"), again, watch=a)
    app = build(tmp_path, a, factory, settings={"model": "model-a"})
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "one")
        await wait_idle(pilot)
        await send(pilot, "/model 31B --replace")
        await wait_for(pilot, lambda: app.switch is None)
        assert factory.calls == [{"model": "31B"}, {"model": "model-a"}]
        card = notices(app, "error")[-1]
        assert "CUDA out of memory" in card.message and "Back on model-a." in card.message
        await send(pilot, "two")
        await wait_idle(pilot)
        assert answers(app) == ["From A.", "From A, restarted."]
        assert "one" in again.requests[0].prompt_text
    assert a.closes == 1 and again.closes == 1  # leaving closes the restarted engine too
    again.assert_complete()


async def test_out_of_memory_suggests_replace(tmp_path: Path) -> None:
    a = Engine([], model="model-a")
    app = build(tmp_path, a, Factory(ConfigError("not enough free GPU memory for 31B")))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/model 31B")
        await wait_for(pilot, lambda: app.switch is None)
        assert "`/model NAME --replace`" in notices(app, "error")[-1].message
        assert a.closes == 0


async def test_the_current_model_answers_while_the_new_one_starts(tmp_path: Path) -> None:
    a = Engine(["A meanwhile."], model="model-a")
    b = Engine(["B now."], model="model-b")
    gate = asyncio.Event()
    app = build(tmp_path, a, Factory(b, gate=gate))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/model E2B")
        assert app.switch is not None and "Starting E2B; model-a answers" in app.switch.text
        await send(pilot, "while loading")
        await wait_idle(pilot)
        assert answers(app) == ["A meanwhile."] and app.switch is not None
        gate.set()
        await wait_for(pilot, lambda: app.switch is None)
        await send(pilot, "after")
        await wait_idle(pilot)
        assert answers(app) == ["A meanwhile.", "B now."]
        assert "while loading" in b.requests[0].prompt_text
    a.assert_complete()
    b.assert_complete()


async def test_agent_use_engine_between_runs_only(tmp_path: Path) -> None:
    a = ScriptedEngine(["From A."], model="a")
    b = ScriptedEngine(["From B.", "B again."], model="b", variant="31B")
    agent = Agent(engine=a, workspace=tmp_path, fsync=False)
    first = await agent.run("hi")
    assert agent.use_engine(b) is a and agent.model_name == "b" and not a.closed
    assert agent.use_engine(b) is None  # the same engine: nothing to hand back
    second = await agent.run("again", session_id=first.session_id)
    assert second.output == "From B." and "From A." in b.requests[0].prompt_text
    assert b.requests[0].prompt_text.endswith(L_GENERATION_PROMPT)
    stream = agent.stream("more", session_id=first.session_id)
    await anext(stream)  # RunStarted: the session is running
    with pytest.raises(ConfigError, match="is running"):
        agent.use_engine(a)
    async for _ in stream:
        pass
    assert agent.history(first.session_id)[-1].text == "B again."  # type: ignore[union-attr]
    await agent.aclose()
    assert b.closed and not a.closed  # close_engine=True: the agent owns b, a is the caller's
