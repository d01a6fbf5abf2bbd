"""/attach and pasted paths in the real Textual app (Pilot), on the real Agent."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.tui.blocks import NoticeBlock, UserBlock

from ...tui.harness import make_app, send, wait_idle
from .conftest import make_png, make_wav

SIZE = (110, 40)


def notices(app: object) -> list[str]:
    return [b.message for b in app.blocks() if isinstance(b, NoticeBlock)]  # type: ignore[attr-defined]


async def test_attach_command_sends_the_image_with_the_next_message(tmp_path: Path) -> None:
    make_png(tmp_path / "shot.png", (64, 48))
    engine = ScriptedEngine(["A red square."], modalities=("image", "audio"))
    app, _ = make_app(tmp_path, engine=engine, thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/attach shot.png")
        chip = notices(app)[-1]
        assert chip.startswith("📎 shot.png (") and "64×48" in chip and "next message" in chip
        await send(pilot, "What is wrong?")
        await wait_idle(pilot)
        user = next(b for b in app.blocks() if isinstance(b, UserBlock))
        assert user.text == "What is wrong?"
        shown = app.rendered_text()
        assert "📎 shot.png (" in shown and "64×48)" in shown
        [req] = engine.requests
        [item] = req.request.media
        assert item.data.size == (64, 48)
        assert app.attachments == []  # used up by that message
        await send(pilot, "/attach missing.png")
        assert "Cannot attach" in notices(app)[-1] and "not found" in notices(app)[-1]
        await send(pilot, "/attach")
        assert "Usage: /attach PATH" in notices(app)[-1]


async def test_pasted_audio_path_attaches_instead_of_sending(tmp_path: Path) -> None:
    clip = make_wav(tmp_path / "voice note.wav", 1.25)
    engine = ScriptedEngine(["It is a tone."], modalities=("image", "audio"))
    app, _ = make_app(tmp_path, engine=engine, thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, f"'{clip}'")  # a file dropped on the terminal, quoted
        assert "📎 voice note.wav (" in notices(app)[-1] and "1.2 s)" in notices(app)[-1]
        assert engine.requests == [] and len(app.attachments) == 1
        await send(pilot, "What is it?")
        await wait_idle(pilot)
        [req] = engine.requests
        assert [m.modality for m in req.request.media] == ["audio"]
        assert "📎 voice note.wav (" in app.rendered_text()


async def test_attach_on_a_text_only_engine_warns_and_the_run_refuses(tmp_path: Path) -> None:
    make_png(tmp_path / "shot.png")
    engine = ScriptedEngine(["never"])
    app, _ = make_app(tmp_path, engine=engine, thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/attach shot.png")
        assert "takes no image input" in notices(app)[-1]
        await send(pilot, "describe")
        await wait_idle(pilot)
        assert "takes no images" in app.rendered_text()
        assert engine.requests == []
