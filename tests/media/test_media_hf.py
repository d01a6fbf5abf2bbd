"""Our media rendering on a real (tiny, random-weight) Gemma4ForConditionalGeneration.

bench/mm_check.py builds the model with tiny vision and audio towers; here its CPU part runs:
our prompt ids, with the processor's ``<|image>…<image|>`` expansion folded back, equal the
tokenization of the expanded prompt, and a forward pass sees both the image and the audio.
The HF Gemma4Processor itself needs torchvision (absent on CPU installs): then the expansion
is replicated from its parts (the PIL image processor, the audio feature extractor).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers.models.gemma4")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "mm_check.py"


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mm_check", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_expansion_and_forward_on_a_tiny_multimodal_gemma4(
    tmp_path: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check = load_check()
    path = check.build(tmp_path / "mm", tiny_model_path)
    ours, text, tokenizer = check.render(path)
    expanded = check.forward_check(path, "cpu", ours, text, tokenizer)
    out = capsys.readouterr().out
    assert "ids match ours after folding" in out and "another image moves them" in out
    assert expanded > len(ours) + 10  # the placeholders really were expanded
