"""The context a history takes counts each image and clip as the engine expands it.

Through the real Agent and loop on a ScriptedEngine that, like vLLM, expands each placeholder
(from the decoded media it is handed, not from our count), reports that size in its usage
and refuses a prompt that does not fit ``max_model_len``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.compaction import ClearOldToolResults
from gemma_agent.agent.engines.base import EngineRequest
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.agent.events import HistoryCompacted, RunFinished, Usage
from gemma_agent.agent.media import (
    Audio,
    Image,
    attachment_tokens,
    to_media_items,
)
from gemma_agent.agent.messages import (
    Attachment,
    Message,
    ModelTurn,
    ToolCall,
    ToolResult,
    UserMessage,
)
from gemma_agent.agent.model import ModelLayer
from gemma_agent.errors import ConfigError, EngineRequestFailed
from gemma_agent.tools import ToolOutput, tool
from gemma_agent.tools.builtin import view_image
from PIL import Image as PILImage

from ..helpers import call
from .conftest import make_png

ALL = ("image", "audio")


def picture(size: tuple[int, int] = (1920, 1080), name: str = "shot.png") -> Image:
    return Image.from_pil(PILImage.new("RGB", size, (30, 90, 150)), name)


def clip(seconds: float, rate: int = 16000) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    return Audio.from_array(0.2 * np.sin(2 * np.pi * 330 * t), rate, "clip.wav")


def extra(atts: list[Attachment], budget: int = 280) -> int:
    return sum(attachment_tokens(a, image_soft_tokens=budget) - 1 for a in atts)


async def usage_events(agent: Agent, task: object) -> tuple[list[Usage], RunFinished]:
    events = [e async for e in agent.stream(task)]  # type: ignore[arg-type]
    fin = events[-1]
    assert isinstance(fin, RunFinished)
    return [e for e in events if isinstance(e, Usage)], fin


@pytest.mark.parametrize("budget", [70, 280, 1120])
async def test_a_user_image_counts_as_its_soft_tokens(tmp_path: Path, budget: int) -> None:
    engine = ScriptedEngine(["A blue frame."], modalities=ALL, image_soft_tokens=budget)
    agent = Agent(engine=engine, workspace=tmp_path, persist=False)
    img = picture()
    [usage], fin = await usage_events(agent, ["What is this?", img])
    assert fin.reason == "final_answer"
    [req] = engine.requests
    expansion = attachment_tokens(img.to_attachment(), image_soft_tokens=budget) - 1
    assert 70 // 2 < expansion <= budget + 1
    # The gauge: rendered ids + the expansion + what was generated.
    assert usage.context_tokens == len(req.prompt_ids) + expansion + usage.generated_tokens
    # What the engine itself counted (from the decoded image it was handed).
    assert usage.prompt_tokens == len(req.prompt_ids) + expansion


async def test_every_step_agrees_with_the_engine_for_user_and_tool_media(tmp_path: Path) -> None:
    make_png(tmp_path / "ui.png", (1280, 800))
    engine = ScriptedEngine(
        [call("view_image", path="ui.png"), call("view_image", path="ui.png"), "Seen twice."],
        modalities=ALL,
    )
    agent = Agent(engine=engine, tools=[view_image], workspace=tmp_path, persist=False)
    usages, fin = await usage_events(agent, ["Compare with this recording.", clip(7.3)])
    assert fin.output == "Seen twice." and len(usages) == 3
    for u, req in zip(usages, engine.requests, strict=True):
        assert u.context_tokens - u.generated_tokens == u.prompt_tokens  # ours == the engine's
        assert u.prompt_tokens > len(req.prompt_ids)
    # Each view_image round adds the image's expanded size, not one placeholder.
    image = attachment_tokens(Image.from_path(tmp_path / "ui.png").to_attachment())
    audio = attachment_tokens(clip(7.3).to_attachment())
    assert audio == 183 + 2  # 116,800 samples: 729 mel frames, two stride-2 convolutions
    first, second, third = engine.requests
    assert usages[0].prompt_tokens == len(first.prompt_ids) + audio - 1
    assert usages[1].prompt_tokens == len(second.prompt_ids) + audio - 1 + image - 1
    assert usages[2].prompt_tokens == len(third.prompt_ids) + audio - 1 + 2 * (image - 1)


def layer(engine: ScriptedEngine, media: bool = True) -> ModelLayer:
    return ModelLayer(
        engine,
        declarations=[],
        instructions="Be brief.",
        thinking=False,
        max_output_tokens=64,
        media=to_media_items if media else None,
    )


def mixed_history() -> tuple[list[Message], list[Attachment]]:
    img, wide, sound = (
        picture((640, 480)).to_attachment(),
        picture((3000, 500), "wide.png").to_attachment(),
        clip(1.0, 44100).to_attachment(),
    )
    c = ToolCall(name="look", arguments={})
    history: list[Message] = [
        UserMessage(content="Here.", attachments=(img, sound)),
        ModelTurn(
            tool_calls=(c,),
            tool_results=(
                ToolResult(call_id=c.id, name="look", content="ok", attachments=(wide,)),
            ),
        ),
        ModelTurn(text="Done."),
        UserMessage(content="Thanks."),
    ]
    return history, [img, sound, wide]


def test_count_tokens_adds_each_attachments_expansion() -> None:
    engine = ScriptedEngine(modalities=ALL, image_soft_tokens=560)
    model = layer(engine)
    history, atts = mixed_history()
    rendered = len(model.render(history))
    expected = rendered + extra(atts, 560)
    assert extra(atts, 560) > 3 * 100
    assert model.count_tokens(history) == expected  # rendered here
    assert model.context_tokens(history) == expected  # kept as the live prompt
    assert model.count_tokens(history) == expected  # counted from the live prompt
    assert model.prompt_tokens(model.prompt_for(history)) == expected
    # A shorter history (a compactor's trial) is rendered with its own media only.
    assert model.count_tokens(history[:1]) == len(model.render(history[:1])) + extra(atts[:2], 560)
    # Without a media loader no media reach the engine: placeholders stay single ids.
    assert layer(engine, media=False).count_tokens(history) == rendered


async def test_the_summary_request_carries_the_media_and_counts_them() -> None:
    engine = ScriptedEngine(["Looked at two pictures."], modalities=ALL)
    model = layer(engine)
    history, atts = mixed_history()
    model.prompt_for(history)
    text, usage = await model.summarize(history, "Summarize.")
    assert text == "Looked at two pictures."
    [req] = engine.requests
    assert [m.source for m in req.request.media] == ["shot.png", "clip.wav", "wide.png"]
    assert usage.prompt_tokens == len(req.prompt_ids) + extra(atts)


async def test_compaction_fires_on_the_expanded_size(tmp_path: Path) -> None:
    """A history whose rendered ids stay under the trigger but whose expanded size crosses it
    is compacted; with the placeholders counted as one id each it would not have been."""

    @tool
    def read(n: int) -> str:
        """Read part n."""
        return f"part {n}: " + "lorem ipsum " * 150

    script = [call("read", n=i) for i in range(4)] + ["All read."]
    img = picture()
    task = ["Read the four parts; the diagram is attached.", img]
    budget = 280

    def agent(engine: ScriptedEngine) -> Agent:
        compactor = ClearOldToolResults(keep_turns=1, min_tokens=0, trigger=0.75, target=0.5)
        return Agent(
            engine=engine,
            tools=[read],
            workspace=tmp_path,
            persist=False,
            compactor=compactor,
            max_output_tokens=100,
        )

    # A dry run with room to spare: the size of each step's prompt, raw and expanded.
    dry = ScriptedEngine(script, modalities=ALL, max_model_len=1_000_000)
    usages, _ = await usage_events(agent(dry), task)
    raw = [len(r.prompt_ids) for r in dry.requests]
    expansion = attachment_tokens(img.to_attachment(), image_soft_tokens=budget) - 1
    assert [u.prompt_tokens for u in usages] == [n + expansion for n in raw]
    # The context for which step 3's prompt is under the trigger raw and over it expanded.
    step = 2
    assert raw[step] > raw[step - 1] + expansion  # earlier steps stay under either way
    limit = -(-(raw[step] + 1) * 4 // 3)  # 0.75 * limit just above the raw size
    assert raw[step] < 0.75 * limit <= raw[step] + expansion
    engine = ScriptedEngine(script, modalities=ALL, max_model_len=limit + 100)
    events = [e async for e in agent(engine).stream(task)]  # type: ignore[arg-type]
    compacted = [e for e in events if isinstance(e, HistoryCompacted)]
    assert compacted, "no compaction"
    first = compacted[0]
    assert first.tokens_before == raw[step] + expansion  # the expanded size triggered it
    assert first.tokens_after < first.tokens_before
    # It happened before step 3's request: that prompt is shorter than in the dry run.
    assert len(engine.requests[step].prompt_ids) < raw[step]
    assert [len(r.prompt_ids) for r in engine.requests[:step]] == raw[:step]


async def test_media_that_alone_fill_the_context_are_refused_before_any_request(
    tmp_path: Path,
) -> None:
    engine = ScriptedEngine(["never"], modalities=ALL, image_soft_tokens=1120, max_model_len=2048)
    agent = Agent(engine=engine, workspace=tmp_path, persist=False)
    big = picture((2000, 2000))
    with pytest.raises(ConfigError) as info:
        await agent.run(["Compare these.", big, picture((1500, 1000), "b.png")])
    message = str(info.value)
    assert "2 images take" in message and "2,048-token context" in message
    assert "max_model_len" in message
    assert engine.requests == []
    # One fits.
    engine.outputs[:] = ["one is fine"]
    assert (await agent.run(["Just this.", big])).output == "one is fine"


async def test_tool_images_that_would_overflow_become_an_error_result(tmp_path: Path) -> None:
    @tool
    def snap() -> ToolOutput:
        """Snap both screens."""
        return ToolOutput("two screens", media=[picture((2000, 2000)), picture((900, 1600))])

    engine = ScriptedEngine(
        [call("snap"), "Could not see them."],
        modalities=ALL,
        image_soft_tokens=1120,
        max_model_len=3000,  # room for two of the three images (about 1,090 ids each)
    )
    agent = Agent(engine=engine, tools=[snap], workspace=tmp_path, persist=False)
    result = await agent.run(["Snap; here is the old one.", picture((1000, 1000))])
    assert result.output == "Could not see them.", result.error
    [res] = result.turns[1].tool_results  # type: ignore[union-attr]
    assert res.is_error and "3 images (counting those already in the conversation)" in res.content
    assert "once the engine expands them" in res.content and res.attachments == ()
    assert [len(r.request.media) for r in engine.requests] == [1, 1]


async def test_a_history_that_only_fits_unexpanded_stops_before_the_engine(
    tmp_path: Path,
) -> None:
    task_text = "Describe the picture. " + "Context. " * 120
    img = picture()
    probe = ScriptedEngine(["x"], modalities=ALL)
    await Agent(engine=probe, workspace=tmp_path, persist=False, compactor=None).run(
        [task_text, img]
    )
    raw = len(probe.requests[0].prompt_ids)
    expansion = attachment_tokens(img.to_attachment()) - 1
    engine = ScriptedEngine(["never"], modalities=ALL, max_model_len=raw + expansion // 2)
    agent = Agent(engine=engine, workspace=tmp_path, persist=False, compactor=None)
    result = await agent.run([task_text, img])
    assert result.reason == "context_overflow"
    assert f"task alone take {raw + expansion} tokens" in (result.error or "")
    assert engine.requests == []


async def test_the_scripted_engine_refuses_what_vllm_refuses() -> None:
    engine = ScriptedEngine(["ok", "ok"], modalities=ALL, max_model_len=280)
    img = picture((640, 480)).to_attachment()
    prompt = engine.tokenizer.encode("<|turn>user\nSee <|image|><turn|>\n<|turn>model\n")
    request = EngineRequest(prompt_ids=prompt, media=tuple(to_media_items([img])))
    with pytest.raises(EngineRequestFailed, match=r"prompt \(287 tokens\).*length of 280"):
        async for _ in engine.generate(request):
            pass
    assert len(prompt) + attachment_tokens(img) - 1 == 287
    with pytest.raises(ValueError, match="image_soft_tokens must be"):
        ScriptedEngine(image_soft_tokens=300)
