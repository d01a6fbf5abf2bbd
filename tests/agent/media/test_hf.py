"""Our media rendering on a real (tiny, random-weight) Gemma4ForConditionalGeneration.

The model is ``tiny_model_path(multimodal=True)`` (``--model tiny-mm``); bench/mm_check.py's
CPU part runs on it: our prompt ids, with transformers' Gemma4Processor expansion
``<|image>…<image|>`` folded back, equal the tokenization of the expanded prompt, and a forward
pass sees both the image and the audio. (The processor runs without torchvision thanks to our
vLLM plugin's fixes; tests/agent/media/test_vllm.py takes the same model through vLLM.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers.models.gemma4")

BENCH = Path(__file__).resolve().parents[3] / "bench" / "mm_check.py"


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mm_check", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_expansion_and_forward_on_a_tiny_multimodal_gemma4(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gemma_agent.agent.engines.tiny import tiny_model_path

    check = load_check()
    path = tiny_model_path(multimodal=True)
    ours, text, tokenizer = check.render(path)
    expanded = check.forward_check(path, "cpu", ours, text, tokenizer)
    out = capsys.readouterr().out
    assert "ids match ours after folding" in out and "another image moves them" in out
    assert expanded > len(ours) + 10  # the placeholders really were expanded
