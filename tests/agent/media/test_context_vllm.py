"""Our context count equals the prompt size real vLLM reports, media expanded by vLLM itself.

vLLM (CPU build) serves the tiny multimodal Gemma 4 (``--model tiny-mm``, 70 soft tokens per
image at most); every request's prompt_tokens come from vLLM's own Gemma 4 processor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.events import Usage
from gemma_agent.agent.media import Audio, Image, attachment_tokens
from gemma_agent.agent.media_tokens import vllm_image_soft_tokens
from gemma_agent.agent.messages import UserMessage
from PIL import Image as PILImage

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def engine(mm_engine: Any) -> Any:
    return mm_engine


def picture(size: tuple[int, int]) -> Image:
    return Image.from_pil(PILImage.new("RGB", size, (9, 99, 199)), f"{size[0]}x{size[1]}.png")


def tone(seconds: float) -> Audio:
    t = np.arange(round(seconds * 16000)) / 16000
    return Audio.from_array(0.2 * np.sin(2 * np.pi * 300 * t), 16000, f"{seconds}s.wav")


async def test_the_engine_budget_is_the_one_vllm_expands_with(engine: Any) -> None:
    config = engine._llm.model_config
    expected = vllm_image_soft_tokens(
        config.hf_config.vision_config.default_output_length,
        config.multimodal_config.mm_processor_kwargs,
    )
    assert engine.info.image_soft_tokens == expected == 70


@pytest.mark.parametrize(
    "media",
    [
        [picture((1, 1))],
        [picture((1920, 1080)), picture((600, 2400))],
        [picture((17, 1190)), picture((3, 900))],  # vLLM's rounding and its clamp
        [tone(0.1), tone(1.0)],
        [picture((128, 96)), tone(7.3)],
    ],
    ids=["tiny", "wide+tall", "edge-cases", "short-clips", "image+clip"],
)
async def test_every_request_is_as_long_as_we_count(
    engine: Any, tmp_path: Path, media: list[Any]
) -> None:
    agent = Agent(
        engine=engine, workspace=tmp_path, persist=False, max_output_tokens=2, temperature=0.0
    )
    usage = [e async for e in agent.stream(["What is this?", *media]) if isinstance(e, Usage)]
    assert len(usage) == 1
    [u] = usage
    assert u.context_tokens - u.generated_tokens == u.prompt_tokens  # ours == vLLM's
    [user] = [m for m in agent.history() if isinstance(m, UserMessage)]
    soft = engine.info.image_soft_tokens
    expansion = sum(attachment_tokens(a, image_soft_tokens=soft) - 1 for a in user.attachments)
    assert expansion > 0 and u.prompt_tokens > expansion
