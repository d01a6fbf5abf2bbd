"""Multimodal check on a tiny random-weight Gemma4ForConditionalGeneration (no real weights).

    python bench/mm_check.py [--device cuda] [--out DIR] [--vllm]

1. Builds the model: the tiny text model's tokenizer and text config (agent/engines/tiny.py)
   plus tiny vision and audio towers; the HF processor files when transformers can build
   ``Gemma4Processor`` (it imports torchvision).
2. Renders a user turn with an image and an audio clip with OUR renderer (``render_ids``:
   one ``<|image|>``/``<|audio|>`` control id each) and with ``render_chat`` (text).
3. Expands the placeholders with the HF processor and checks that its ids, with every
   ``<|image>…<image|>`` / ``<|audio>…<audio|>`` run folded back to one placeholder, equal our
   ids exactly (our safe tokenization agrees with the processor's).
   Without torchvision the PIL image processor and the audio feature extractor are used and the
   expansion is replicated (said in the output).
4. Runs a forward pass on ``--device`` and checks the towers are wired: another image (audio)
   changes the last logits, finite everywhere.
5. ``--vllm``: when ``vllm`` imports, the same request through VLLMEngine (media as
   multi_modal_data with our prompt ids); prints the prompt tokens vLLM counted.

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

MEDIA_MARKERS = {
    "image_token": "<|image|>",
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "audio_token": "<|audio|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
}


def say(msg: str) -> None:
    print(msg, flush=True)


def fail(msg: str) -> NoReturn:
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def hf_processor_class() -> tuple[Any, str | None]:
    try:
        from transformers.models.gemma4.processing_gemma4 import Gemma4Processor
    except Exception as e:  # ModuleNotFoundError: torchvision
        return None, f"{type(e).__name__}: {e}"
    return Gemma4Processor, None


def build(dest: Path, text_model: Path | None = None) -> Path:
    """Write the model to ``dest``; ``text_model``: a built tiny text model (its tokenizer)."""
    import torch
    from gemma_agent.agent.engines.tiny import _config_kwargs, tiny_model_path
    from tokenizers import Tokenizer
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration

    src = text_model or tiny_model_path(dest.parent / "cache")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("tokenizer.json", "special_tokens_map.json", "generation_config.json"):
        shutil.copy(src / name, dest / name)
    tok_cfg = json.loads((src / "tokenizer_config.json").read_text())
    tok_cfg["extra_special_tokens"] = dict(MEDIA_MARKERS)
    (dest / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
    tok = Tokenizer.from_file(str(dest / "tokenizer.json"))
    ids = {
        m: tok.token_to_id(m)
        for m in [*MEDIA_MARKERS.values(), "<|video|>", "<pad>", "<eos>", "<bos>"]
    }
    missing = [m for m, i in ids.items() if i is None]
    if missing:
        fail(f"the tiny tokenizer lacks {missing}")
    vocab = -(-tok.get_vocab_size() // 64) * 64
    text = _config_kwargs(vocab, ids)
    text.pop("architectures")
    config = Gemma4Config(
        text_config=text,
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "patch_size": 16,
            "pooling_kernel_size": 3,
            "position_embedding_size": 1024,
        },
        audio_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "subsampling_conv_channels": [128, 4],  # [0] must be the mel bins (128)
            "output_proj_dims": 32,
        },
        image_token_id=ids["<|image|>"],
        boi_token_id=ids["<|image>"],
        eoi_token_id=ids["<image|>"],
        audio_token_id=ids["<|audio|>"],
        boa_token_id=ids["<|audio>"],
        eoa_token_index=ids["<audio|>"],
        video_token_id=ids["<|video|>"],
        tie_word_embeddings=True,
    )
    config.architectures = ["Gemma4ForConditionalGeneration"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = Gemma4ForConditionalGeneration(config).float().eval()
    model.save_pretrained(dest, safe_serialization=True)
    proc_cls, _ = hf_processor_class()
    if proc_cls is not None:
        from transformers import AutoTokenizer
        from transformers.models.gemma4.feature_extraction_gemma4 import (
            Gemma4AudioFeatureExtractor,
        )
        from transformers.models.gemma4.image_processing_gemma4 import Gemma4ImageProcessor
        from transformers.models.gemma4.video_processing_gemma4 import Gemma4VideoProcessor

        proc = proc_cls(
            feature_extractor=Gemma4AudioFeatureExtractor(),
            image_processor=Gemma4ImageProcessor(max_soft_tokens=70),
            tokenizer=AutoTokenizer.from_pretrained(dest),
            video_processor=Gemma4VideoProcessor(),
        )
        proc.save_pretrained(dest)
    n = sum(p.numel() for p in model.parameters())
    say(f"built tiny Gemma4ForConditionalGeneration: {n:,} parameters at {dest}")
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
    if proc_cls is not None:
        proc = proc_cls.from_pretrained(path)
        enc = proc(
            text=[text], images=[[img]], audio=[clip], return_tensors="pt", add_special_tokens=False
        )
        return dict(enc), "HF Gemma4Processor"
    return replicated_inputs(path, text, img, clip), f"replicated expansion ({why})"


def replicated_inputs(path: Path, text: str, img: Any, clip: Any) -> dict[str, Any]:
    """What Gemma4Processor does, from its parts that need no torchvision."""
    import torch
    from tokenizers import Tokenizer
    from transformers.models.gemma4.feature_extraction_gemma4 import Gemma4AudioFeatureExtractor
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil

    image = Gemma4ImageProcessorPil(max_soft_tokens=70)([img], return_tensors="pt")
    audio = Gemma4AudioFeatureExtractor()([clip], return_tensors="pt")
    n_img = int(image["num_soft_tokens_per_image"][0])
    mask = audio["input_features_mask"][0]
    t = len(mask)
    for _ in range(2):  # the two stride-2 convolutions (Gemma4Processor.replace_audio_token)
        t_out = (t + 2 - 3) // 2 + 1
        mask = mask[::2][:t_out]
        t = len(mask)
    n_aud = int(mask.sum())
    expanded = text.replace("<|image|>", "<|image>" + "<|image|>" * n_img + "<image|>").replace(
        "<|audio|>", "<|audio>" + "<|audio|>" * n_aud + "<audio|>"
    )
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    ids = tok.encode(expanded, add_special_tokens=False).ids
    return {
        "input_ids": torch.tensor([ids]),
        "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
        "pixel_values": image["pixel_values"],
        "image_position_ids": image["image_position_ids"],
        "input_features": audio["input_features"],
        "input_features_mask": audio["input_features_mask"],
    }


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
        limit_mm_per_prompt={"image": 2, "audio": 2},
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
        proc_cls, why = hf_processor_class()
        try:
            import vllm  # noqa: F401
        except Exception as e:
            say(f"vLLM check skipped: vllm does not import ({type(e).__name__}: {e})")
        else:
            if proc_cls is None:
                # vllm/model_executor/models/gemma4_mm.py imports transformers' Gemma4Processor,
                # whose image processor imports torchvision: the architecture cannot load.
                say(
                    f"vLLM check skipped: vLLM cannot load Gemma4ForConditionalGeneration here ({why})"
                )
            else:
                asyncio.run(vllm_check(path, ours, expanded))
    say("MM CHECK OK")


if __name__ == "__main__":
    main()
