"""Media through the real Agent: request assembly, placeholders, tool images, refusals.

The engine is a ScriptedEngine declared image/audio capable; like vLLM it refuses a request
whose media do not match the placeholder ids of its prompt one for one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine, ScriptedRequest, tool_call
from gemma_agent.agent.media import Audio, Image, MediaLimits
from gemma_agent.agent.messages import ModelTurn
from gemma_agent.cli import build_parser
from gemma_agent.errors import ConfigError
from gemma_agent.headless import run_headless
from gemma_agent.prompts import tokens as T
from gemma_agent.tools import ToolOutput, tool
from gemma_agent.tools.builtin import view_image

from .conftest import make_png, make_wav

S = '<|"|>'
call = tool_call
ALL = ("image", "audio")


def agent_for(engine: ScriptedEngine, ws: Path, tools: list[object] = (), **kw: object) -> Agent:  # type: ignore[assignment]
    return Agent(engine=engine, tools=tools, workspace=ws, persist=False, **kw)  # type: ignore[arg-type]


def placeholders(req: ScriptedRequest, tokenizer: object) -> list[tuple[int, str]]:
    """(position, "image"|"audio") of every media control id in the prompt."""
    image = tokenizer.control_id(T.IMAGE)  # type: ignore[attr-defined]
    audio = tokenizer.control_id(T.AUDIO)  # type: ignore[attr-defined]
    ids = req.prompt_ids
    return [
        (i, "image" if t == image else "audio") for i, t in enumerate(ids) if t in (image, audio)
    ]


def prefix_text(engine: ScriptedEngine, req: ScriptedRequest, position: int) -> str:
    return engine.tokenizer.decode(req.prompt_ids[:position])


async def test_image_reaches_the_request_with_one_placeholder_in_the_user_turn(
    tmp_path: Path, shot: Path
) -> None:
    engine = ScriptedEngine(["A red square."], modalities=ALL)
    result = await agent_for(engine, tmp_path).run(["What is wrong?", Image.from_path(shot)])
    assert result.output == "A red square."
    [req] = engine.requests
    [item] = req.request.media
    assert item.modality == "image" and item.source == "shot.png"
    assert item.data.mode == "RGB" and item.data.size == (64, 48)
    assert item.data.getpixel((3, 3)) == (200, 30, 30)
    [(pos, kind)] = placeholders(req, engine.tokenizer)
    assert kind == "image"
    before = prefix_text(engine, req, pos)
    # Inside the last user turn, right after its text (parts joined as they are).
    assert before.endswith(f"{T.TURN_OPEN}user\nWhat is wrong?")
    after = engine.tokenizer.decode(req.prompt_ids[pos + 1 :])
    assert after == f"{T.TURN_CLOSE}\n{T.TURN_OPEN}model\n"
    user = result.turns[0]
    assert [a.name for a in user.attachments] == ["shot.png"]  # type: ignore[union-attr]


async def test_marker_text_typed_by_the_user_is_not_a_placeholder(tmp_path: Path) -> None:
    engine = ScriptedEngine(["ok"], modalities=ALL)
    await agent_for(engine, tmp_path).run("what does <|image|> mean?")
    [req] = engine.requests
    assert req.request.media == () and placeholders(req, engine.tokenizer) == []
    assert "<|image|>" in req.prompt_text  # as text, not as the control id


async def test_audio_on_e4b(tmp_path: Path, note: Path) -> None:
    engine = ScriptedEngine(["It says hello."], modalities=ALL, variant="E4B")
    await agent_for(engine, tmp_path).run(["Transcribe this.", Audio.from_path(note)])
    [req] = engine.requests
    [item] = req.request.media
    samples, rate = item.data
    assert item.modality == "audio" and rate == 16000 and samples.shape == (8000,)
    assert samples.dtype == np.float32 and 0.2 < float(np.abs(samples).max()) < 0.3
    [(pos, kind)] = placeholders(req, engine.tokenizer)
    assert kind == "audio"
    assert prefix_text(engine, req, pos).endswith("user\nTranscribe this.")


async def test_media_order_matches_placeholder_order(tmp_path: Path) -> None:
    small = make_png(tmp_path / "a.png", (10, 10))
    big = make_png(tmp_path / "c.png", (20, 30))
    clip = make_wav(tmp_path / "b.wav", 0.25)
    engine = ScriptedEngine(["seen", "again"], modalities=ALL, variant="E2B")
    agent = agent_for(engine, tmp_path)
    first = await agent.run(["Compare.", Image.from_path(small), Audio.from_path(clip), big])
    req = engine.requests[0]
    assert [m.modality for m in req.request.media] == ["image", "audio", "image"]
    assert [k for _, k in placeholders(req, engine.tokenizer)] == ["image", "audio", "image"]
    assert req.request.media[0].data.size == (10, 10) and req.request.media[2].data.size == (20, 30)
    # A second message with another image: earlier media stay first, in prompt order.
    third = make_png(tmp_path / "d.png", (5, 7))
    await agent.run(["And this?", Image.from_path(third)], session_id=first.session_id)
    req2 = engine.requests[1]
    assert [m.source for m in req2.request.media] == ["a.png", "b.wav", "c.png", "d.png"]
    assert [k for _, k in placeholders(req2, engine.tokenizer)] == [
        "image", "audio", "image", "image",
    ]  # fmt: skip


async def test_refusals_happen_before_any_request(tmp_path: Path, shot: Path, note: Path) -> None:
    # Audio to a variant without an audio tower (even if the engine claimed audio).
    engine = ScriptedEngine(["x"], modalities=ALL, variant="31B")
    with pytest.raises(ConfigError, match="takes no audio"):
        await agent_for(engine, tmp_path).run(["hear", Audio.from_path(note)])
    assert engine.requests == []
    # Media to a text-only engine.
    text_only = ScriptedEngine(["x"])
    with pytest.raises(ConfigError, match="takes no images"):
        await agent_for(text_only, tmp_path).run(["see", Image.from_path(shot)])
    with pytest.raises(ConfigError, match="takes no audio"):
        await agent_for(ScriptedEngine(["x"], modalities=("image",)), tmp_path).run(["hear", note])
    assert text_only.requests == []
    # Unreadable, unsupported and missing files.
    engine = ScriptedEngine(["x"], modalities=ALL)
    agent = agent_for(engine, tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 20)
    with pytest.raises(ConfigError, match="cannot be decoded"):
        await agent.run(["see", broken])
    notes = tmp_path / "notes.txt"
    notes.write_text("hi")
    with pytest.raises(ConfigError, match="not a supported image"):
        await agent.run(["see", notes])
    with pytest.raises(ConfigError, match="not found"):
        await agent.run(["see", tmp_path / "nope.png"])
    assert engine.requests == []


async def test_limits_count_the_whole_conversation(tmp_path: Path, shot: Path) -> None:
    engine = ScriptedEngine(["one", "two"], modalities=ALL)
    agent = agent_for(engine, tmp_path, media_limits=MediaLimits(max_images=2))
    img = Image.from_path(shot)
    with pytest.raises(ConfigError, match="3 images in one request; the limit is 2"):
        await agent.run(["three", img, img, img])
    first = await agent.run(["two", img, img])
    assert len(engine.requests[0].request.media) == 2
    with pytest.raises(ConfigError, match="already in the conversation"):
        await agent.run(["one more", img], session_id=first.session_id)
    assert len(engine.requests) == 1
    tiny = agent_for(
        ScriptedEngine(["x"], modalities=ALL),
        tmp_path,
        media_limits=MediaLimits(max_image_pixels=100),
    )
    with pytest.raises(ConfigError, match="Downscale"):
        await tiny.run(["big", img])
    clip = Audio.from_array(np.zeros(16000 * 3), 16000)
    short = agent_for(
        ScriptedEngine(["x"], modalities=ALL),
        tmp_path,
        media_limits=MediaLimits(max_audio_seconds=2),
    )
    with pytest.raises(ConfigError, match=r"lasts 3\.0 s"):
        await short.run(["long", clip])


@tool
def note_tool(text: str) -> str:
    """Write a note."""
    return f"noted {text}"


async def test_view_image_round_shows_the_image_after_the_tool_response(
    tmp_path: Path,
) -> None:
    make_png(tmp_path / "ui.png", (40, 30), (0, 0, 255))
    engine = ScriptedEngine(
        [call("view_image", path="ui.png"), call("note_tool", text="blue"), "It is blue."],
        modalities=ALL,
    )
    result = await agent_for(engine, tmp_path, [view_image, note_tool]).run("Look at ui.png")
    assert result.output == "It is blue."
    turn = result.turns[1]
    assert isinstance(turn, ModelTurn)
    [res] = turn.tool_results
    assert not res.is_error and "40×30" in res.content
    [att] = res.attachments
    assert (att.kind, att.name, att.mime) == ("image", "ui.png", "image/png")
    first, second, third = engine.requests
    assert first.request.media == ()
    [item] = second.request.media
    assert item.data.size == (40, 30) and item.data.getpixel((0, 0)) == (0, 0, 255)
    [(pos, _)] = placeholders(second, engine.tokenizer)
    # After the tool response, inside the same model turn (docs/format.md, 'Tool responses').
    assert prefix_text(engine, second, pos).endswith(T.TOOL_RESPONSE_CLOSE)
    assert prefix_text(engine, second, pos).endswith(
        f"response:view_image{{value:{S}ui.png: PNG image, 40×30 pixels, {att_size(att)}; "
        f"shown below.{S}}}{T.TOOL_RESPONSE_CLOSE}"
    )
    # The next tool round is an exact append again, the media carried along.
    assert list(third.prompt_ids[: len(second.prompt_ids)]) == list(second.prompt_ids)
    assert [m.source for m in third.request.media] == ["ui.png"]
    assert len(placeholders(third, engine.tokenizer)) == 1


def att_size(att: object) -> str:
    import base64

    n = len(base64.b64decode(att.data_b64))  # type: ignore[attr-defined]
    return f"{n} B" if n < 1024 else f"{n / 1024:.0f} KB"


async def test_tool_media_refused_by_a_text_only_model_becomes_an_error_result(
    tmp_path: Path,
) -> None:
    make_png(tmp_path / "ui.png")
    engine = ScriptedEngine([call("view_image", path="ui.png"), "I cannot see it."])
    result = await agent_for(engine, tmp_path, [view_image]).run("Look at ui.png")
    assert result.ok
    [res] = result.turns[1].tool_results  # type: ignore[union-attr]
    assert res.is_error and "cannot see" in res.content and "takes no images" in res.content
    assert res.attachments == ()
    assert engine.requests[1].request.media == ()


async def test_tool_media_over_the_limit_becomes_an_error_result(
    tmp_path: Path, shot: Path
) -> None:
    make_png(tmp_path / "ui.png")
    engine = ScriptedEngine([call("view_image", path="ui.png"), "ok"], modalities=ALL)
    agent = agent_for(engine, tmp_path, [view_image], media_limits=MediaLimits(max_images=1))
    result = await agent.run(["here is one", Image.from_path(shot)])
    [res] = result.turns[1].tool_results  # type: ignore[union-attr]
    assert res.is_error and "already in the conversation" in res.content
    assert [m.source for m in engine.requests[1].request.media] == ["shot.png"]


async def test_custom_tool_returning_image_and_audio(tmp_path: Path) -> None:
    png = make_png(tmp_path / "chart.png", (12, 8))
    wav = make_wav(tmp_path / "beep.wav", 0.1)

    @tool
    def render_chart() -> ToolOutput:
        """Render the chart."""
        return ToolOutput({"points": 3}, media=[Image.from_path(png), Audio.from_path(wav)])

    @tool
    def snapshot() -> Image:
        """Take a snapshot."""
        return Image.from_path(png)

    engine = ScriptedEngine(
        [call("render_chart") + call("snapshot"), "done"], modalities=ALL, variant="E4B"
    )
    result = await agent_for(engine, tmp_path, [render_chart, snapshot]).run("chart it")
    chart, snap = result.turns[1].tool_results  # type: ignore[union-attr]
    assert [a.kind for a in chart.attachments] == ["image", "audio"]
    assert snap.content == "image chart.png attached" and len(snap.attachments) == 1
    req = engine.requests[1]
    assert [m.modality for m in req.request.media] == ["image", "audio", "image"]
    assert [k for _, k in placeholders(req, engine.tokenizer)] == ["image", "audio", "image"]
    text = req.prompt_text
    # Each result's media follow its own response; a mapping renders as its JSON text.
    assert (
        f'response:render_chart{{value:{S}{{"points": 3}}{S}}}{T.TOOL_RESPONSE_CLOSE}'
        f"{T.IMAGE}{T.AUDIO}{T.TOOL_RESPONSE_OPEN}response:snapshot" in text
    )


async def test_media_survive_a_session_resume_from_disk(tmp_path: Path, shot: Path) -> None:
    engine = ScriptedEngine(["first", "second"], modalities=ALL)
    sessions = tmp_path / "sessions"
    agent = Agent(engine=engine, workspace=tmp_path, sessions_dir=sessions, fsync=False)
    first = await agent.run(["See.", Image.from_path(shot)])
    again = Agent(engine=engine, workspace=tmp_path, sessions_dir=sessions, fsync=False)
    await again.resume(first.session_id, "And now?")
    [item] = engine.requests[1].request.media
    assert item.data.size == (64, 48)
    assert len(placeholders(engine.requests[1], engine.tokenizer)) == 1


def test_headless_cli_image_and_audio(tmp_path: Path, shot: Path, note: Path) -> None:
    engine = ScriptedEngine(["A red square and a tone."], modalities=ALL)
    out = io.StringIO()
    args = build_parser().parse_args(
        ["run", "describe", "--image", str(shot), "--audio", str(note), "--json",
         "--workspace", str(tmp_path)]
    )  # fmt: skip
    assert run_headless(args, engine=engine, tools=[], out=out) == 0
    [req] = engine.requests
    assert [m.modality for m in req.request.media] == ["image", "audio"]
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[-1]["output"] == "A red square and a tone."


def test_headless_cli_refuses_audio_on_a_model_without_it(tmp_path: Path, note: Path) -> None:
    engine = ScriptedEngine(["x"], modalities=("image",), variant="12B")
    args = build_parser().parse_args(
        ["run", "listen", "--audio", str(note), "--workspace", str(tmp_path)]
    )
    with pytest.raises(ConfigError, match="takes no audio"):
        run_headless(args, engine=engine, tools=[], out=io.StringIO())
    assert engine.requests == []


def test_json_events_name_media_but_leave_their_bytes_in_the_session_log() -> None:
    from gemma_agent.agent.events import ToolCallFinished, event_to_dict
    from gemma_agent.agent.messages import Attachment, ToolCall, ToolResult

    att = Attachment(kind="image", name="shot.png", mime="image/png", data_b64="QUJD" * 1000)
    call = ToolCall(name="view_image", arguments={"path": "shot.png"})
    result = ToolResult(call_id=call.id, name="view_image", content="ok", attachments=(att,))
    out = event_to_dict(ToolCallFinished(call=call, result=result, step=1, seconds=0.1))
    assert out["result"]["attachments"] == [
        {"kind": "image", "name": "shot.png", "mime": "image/png"}
    ]
    assert "QUJD" not in str(out)
