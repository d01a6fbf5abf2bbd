"""Model presets: the Gemma 4 checkpoints with sensible engine defaults.

Every default is overridable (CLI flags, ``create_engine`` config, or ``ModelPreset.engine_args``
keyword arguments). Multi-GPU and multi-node are vLLM's own settings, passed through after
validation: ``tensor_parallel_size``, ``pipeline_parallel_size``, ``data_parallel_size``,
``enable_expert_parallel`` (the MoE 26B-A4B) and ``distributed_executor_backend="ray"``.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ...errors import ConfigError


@dataclass(frozen=True, slots=True)
class ModelPreset:
    name: str  # short name and template variant: "E4B"
    hf_id: str
    family: Literal["L", "S"]
    context_length: int  # what the model supports
    modalities: frozenset[str]
    size: str  # for people: "4B effective", "26B MoE, 4B active"
    max_model_len: int  # default context we allocate (KV memory grows with it)
    gpu_memory_utilization: float = 0.90
    kv_cache_dtype: str = "auto"
    moe: bool = False

    @property
    def variant(self) -> str:
        return self.name

    def engine_args(self, *, media: bool = False, **overrides: Any) -> dict[str, Any]:
        """vLLM engine arguments for this preset; ``None`` overrides are ignored.

        Without media the vision/audio towers are not loaded (``language_model_only``), which
        saves memory and start-up time.
        """
        args: dict[str, Any] = {
            "max_model_len": self.max_model_len,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "kv_cache_dtype": self.kv_cache_dtype,
            "language_model_only": not media,
        }
        if media:
            args["limit_mm_per_prompt"] = media_limits_for_vllm(
                with_audio="audio" in self.modalities
            )
        args.update({k: v for k, v in overrides.items() if v is not None})
        if args["max_model_len"] > self.context_length:
            raise ConfigError(
                f"max_model_len {args['max_model_len']} exceeds what {self.hf_id} supports "
                f"({self.context_length}); use at most {self.context_length}"
            )
        return args


def media_limits_for_vllm(*, with_audio: bool) -> dict[str, int]:
    """vLLM's per-prompt media limits: what our own check lets through, and no video (never
    sent; vLLM would otherwise reserve encoder budget for it)."""
    from ..media import MediaLimits

    limits = MediaLimits()
    out = {"image": limits.max_images, "video": 0}
    if with_audio:
        out["audio"] = limits.max_audio_clips
    return out


_K = 1024
PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset(
            "E2B",
            "google/gemma-4-E2B-it",
            "S",
            128 * _K,
            frozenset({"text", "image", "audio"}),
            "2B effective (5B with embeddings)",
            max_model_len=32 * _K,
        ),
        ModelPreset(
            "E4B",
            "google/gemma-4-E4B-it",
            "S",
            128 * _K,
            frozenset({"text", "image", "audio"}),
            "4B effective (8B with embeddings)",
            max_model_len=32 * _K,
        ),
        ModelPreset(
            "12B",
            "google/gemma-4-12B-it",
            "L",
            256 * _K,
            frozenset({"text", "image"}),
            "12B dense",
            max_model_len=64 * _K,
        ),
        ModelPreset(
            "26B-A4B",
            "google/gemma-4-26B-A4B-it",
            "L",
            256 * _K,
            frozenset({"text", "image"}),
            "26B MoE, 4B active",
            max_model_len=64 * _K,
            kv_cache_dtype="fp8",
            moe=True,
        ),
        ModelPreset(
            "31B",
            "google/gemma-4-31B-it",
            "L",
            256 * _K,
            frozenset({"text", "image"}),
            "31B dense",
            max_model_len=64 * _K,
            kv_cache_dtype="fp8",
        ),
    )
}

DEFAULT_GPU_MODEL = "E4B"


def find_preset(model: str) -> ModelPreset | None:
    """The preset for a short name ("E4B", "e4b"), an HF id or its last part, else None."""
    key = model.strip().lower()
    for p in PRESETS.values():
        hf = p.hf_id.lower()
        if key in (p.name.lower(), hf, hf.split("/")[-1], hf.split("/")[-1].removesuffix("-it")):
            return p
    return None


def model_problem(name: str, variant: str | None = None) -> str | None:
    """Why ``name`` cannot be a model, with the names that exist (None: it can be one: a
    preset, ``tiny``, a checkpoint folder, or a Hugging Face id). Reads no weights."""
    from ...prompts.render import VALID_VARIANTS, template_family

    if variant is not None:
        try:
            template_family(variant)
        except ConfigError:
            return f"Unknown variant {variant!r}: use one of {', '.join(VALID_VARIANTS)}."
    if name in ("tiny", "tiny-mm") or find_preset(name) is not None:
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        return None
    names = [*PRESETS, "tiny", "tiny-mm"]
    if path.exists():
        return f"{name} is a file: give the checkpoint folder (config.json, weights, tokenizer)."
    if name.startswith((".", "/", "~")):
        return f"No checkpoint folder at {name}."
    if "/" in name:
        return None  # a Hugging Face id (the engine says if it needs --variant)
    close = difflib.get_close_matches(name.upper(), [n.upper() for n in names], n=1)
    hint = f" Did you mean {names[[n.upper() for n in names].index(close[0])]}?" if close else ""
    return (
        f"Unknown model {name!r}.{hint} Presets: {', '.join(names)}; or a local checkpoint "
        "folder, or a Hugging Face id with --variant (`gemma-agent models` lists the presets)."
    )


BACKENDS = ("mp", "ray", "uni", "external_launcher")


def validate_parallel(
    *,
    tensor_parallel_size: int | None = None,
    pipeline_parallel_size: int | None = None,
    data_parallel_size: int | None = None,
    enable_expert_parallel: bool | None = None,
    distributed_executor_backend: str | None = None,
    preset: ModelPreset | None = None,
    cpu: bool = False,
) -> dict[str, Any]:
    """Check the multi-GPU/multi-node settings; returns the ones to pass to vLLM."""
    out: dict[str, Any] = {}
    for name, value in (
        ("tensor_parallel_size", tensor_parallel_size),
        ("pipeline_parallel_size", pipeline_parallel_size),
        ("data_parallel_size", data_parallel_size),
    ):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        out[name] = value
    gpus = out.get("tensor_parallel_size", 1) * out.get("pipeline_parallel_size", 1)
    if cpu and (gpus > 1 or out.get("data_parallel_size", 1) > 1):
        raise ConfigError(
            "tensor/pipeline/data parallelism needs GPUs and the CUDA build of vLLM "
            "(pip install 'gemma-agent[vllm]'); this machine has the CPU build"
        )
    if enable_expert_parallel:
        if preset is not None and not preset.moe:
            moe = [p.name for p in PRESETS.values() if p.moe]
            raise ConfigError(
                f"enable_expert_parallel only applies to mixture-of-experts models ({', '.join(moe)}); "
                f"{preset.name} is dense: use tensor_parallel_size instead"
            )
        out["enable_expert_parallel"] = True
    if distributed_executor_backend is not None:
        if distributed_executor_backend not in BACKENDS:
            raise ConfigError(
                f"distributed_executor_backend must be one of {', '.join(BACKENDS)}, "
                f"got {distributed_executor_backend!r}"
            )
        if distributed_executor_backend == "ray" and importlib.util.find_spec("ray") is None:
            raise ConfigError(
                "distributed_executor_backend='ray' needs Ray: pip install 'ray[default]', start "
                "the cluster (`ray start --head` on the first node, `ray start --address=...` on "
                "the others), then run gemma-agent on the head node"
            )
        out["distributed_executor_backend"] = distributed_executor_backend
    return out


def presets_table() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for p in PRESETS.values():
        rows.append(
            {
                "preset": p.name,
                "model": p.hf_id,
                "size": p.size,
                "family": p.family,
                "context": f"{p.context_length // _K}K",
                "default max_model_len": f"{p.max_model_len // _K}K",
                "kv cache": p.kv_cache_dtype,
                "input": ", ".join(sorted(p.modalities)),
            }
        )
    rows.append(
        {
            "preset": "tiny",
            "model": "built locally (random weights)",
            "size": "~0.3M, output is noise",
            "family": "S",
            "context": "128K",
            "default max_model_len": "8K",
            "kv cache": "auto",
            "input": "text",
        }
    )
    rows.append(
        {
            "preset": "tiny-mm",
            "model": "built locally (random weights)",
            "size": "~0.4M + tiny vision/audio towers",
            "family": "S",
            "context": "128K",
            "default max_model_len": "8K",
            "kv cache": "auto",
            "input": "audio, image, text",
        }
    )
    return rows


def print_presets() -> None:
    """`gemma-agent models`: the presets as a table."""
    from rich.console import Console
    from rich.table import Table

    rows = presets_table()
    table = Table(title="Gemma 4 model presets (--model NAME or HF id; or a local folder)")
    for col in rows[0]:
        table.add_column(col)
    for r in rows:
        table.add_row(*r.values())
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=200)
    console.print(table)
    console.print(
        "Override defaults with --max-model-len, --gpu-memory-utilization; multi-GPU with "
        "--tensor-parallel-size, --pipeline-parallel-size, --data-parallel-size, "
        "--enable-expert-parallel (26B-A4B), --distributed-executor-backend ray (multi-node)."
    )
