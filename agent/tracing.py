"""OpenTelemetry traces and metrics of agent runs, from the event stream (no probes in the loop).

    from opentelemetry.sdk.trace import TracerProvider
    from gemma_agent.agent import Agent, Tracing

    agent = Agent(engine=..., tracing=Tracing(tracer_provider=TracerProvider()))

A `RunTrace` is a subscriber: it sees each event of a run synchronously (the run's ``on_emit``
tap) and turns it into spans and metrics that follow the OpenTelemetry GenAI semantic
conventions:

- ``invoke_agent gemma-agent`` per run (conversation id, request model, usage totals, stop
  reason); its context is the current one while the run goes on, so a run started inside a tool
  (a sub-agent) nests under it, and a span the caller holds (an eval task) is its parent;
- ``chat MODEL`` per model call (token usage in/out, cached input tokens, reasoning tokens,
  finish reason, time to first chunk); its start is the event's end minus the call's duration;
- ``execute_tool NAME`` per tool call (call id, outcome; ``error.type`` when it failed);
- ``compact_history TIER`` where compaction ran (tokens before/after, items dropped).

Metrics: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` (histograms, per
operation), ``gen_ai.client.operation.time_to_first_chunk``.

No prompt, answer or tool content is recorded unless ``include_content=True`` (the conventions'
opt-in): then ``gen_ai.input.messages``/``gen_ai.output.messages`` on the run and model spans
and ``gen_ai.tool.call.arguments``/``result`` on tool spans.

Nothing here imports OpenTelemetry until a trace is made: with tracing off a run pays one
``None`` check. `configure` builds SDK providers with OTLP/HTTP exporters from the standard
``OTEL_*`` variables (what ``--otel`` does); `instrument_all` makes a `Tracing` the default of
every `Agent` built without ``tracing=``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigError
from .events import (
    HistoryCompacted,
    RunFinished,
    RunStarted,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
)

SCOPE = "gemma_agent"
AGENT_NAME = "gemma-agent"
INSTALL_HINT = "pip install 'gemma-agent[otel]'"

# Variables that turn tracing on in the CLI without --otel (the SDK's standard ones).
_ENV_ON = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_default: Tracing | None = None


class Tracing:
    """Where a run's spans and metrics go, and whether they carry content.

    ``tracer_provider``/``meter_provider``: None takes OpenTelemetry's global ones (a no-op
    until the application installs an SDK provider). ``include_content``: prompts, answers,
    reasoning and tool arguments/results go into span attributes (off by default: they may
    hold secrets). ``provider``: ``gen_ai.provider.name`` (default: from the engine).
    """

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        include_content: bool = False,
        agent_name: str = AGENT_NAME,
        provider: str | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.include_content = include_content
        self.agent_name = agent_name
        self.provider = provider
        self._instruments: _Instruments | None = None
        self._shutdown: list[Callable[[], Any]] = []

    def run_trace(self, provider: Callable[[], str] | None = None) -> RunTrace:
        """A subscriber for one run (``provider`` names the engine once the run starts)."""
        if self._instruments is None:
            self._instruments = _Instruments(self.tracer_provider, self.meter_provider)
        return RunTrace(self, self._instruments, provider)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """A span that runs started inside the block nest under (an eval task, a batch)."""
        if self._instruments is None:
            self._instruments = _Instruments(self.tracer_provider, self.meter_provider)
        with self._instruments.tracer.start_as_current_span(
            name, attributes=dict(attributes or {})
        ) as span:
            yield span

    def shutdown(self) -> None:
        """Flush and close the providers `configure` built (a no-op for the caller's own)."""
        for close in self._shutdown:
            close()
        self._shutdown.clear()


def instrument_all(tracing: Tracing | None) -> None:
    """Make ``tracing`` the default of every `Agent` built without ``tracing=`` (None: off)."""
    global _default
    _default = tracing


def default_tracing() -> Tracing | None:
    """The `Tracing` that `instrument_all` set, if any."""
    return _default


def tracing_wanted(flag: bool = False, env: Mapping[str, str] | None = None) -> bool:
    """Whether the CLI traces: ``--otel``, or an OTLP endpoint / traces exporter in the
    environment (and not ``OTEL_SDK_DISABLED=true``)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if flag:
        return True
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return any(env.get(k) for k in _ENV_ON) or exporter not in ("", "none")


def content_wanted(flag: bool = False, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return flag or env.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def configure(*, include_content: bool = False, env: Mapping[str, str] | None = None) -> Tracing:
    """SDK providers exporting over OTLP/HTTP (protobuf), configured by the ``OTEL_*``
    variables (endpoint, headers, service name, resource attributes); ``OTEL_TRACES_EXPORTER``
    / ``OTEL_METRICS_EXPORTER`` may say ``console`` or ``none``. Call `Tracing.shutdown` at exit.
    """
    env = os.environ if env is None else env
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            ConsoleMetricExporter,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as e:
        raise ConfigError(f"Tracing needs OpenTelemetry: {INSTALL_HINT} ({e}).") from e
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or AGENT_NAME})
    tracer_provider = TracerProvider(resource=resource)
    traces = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if traces == "console":
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif traces != "none":
        tracer_provider.add_span_processor(BatchSpanProcessor(_otlp("trace")))
    readers = []
    metrics = env.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() or "otlp"
    if metrics == "console":
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    elif metrics != "none":
        readers.append(PeriodicExportingMetricReader(_otlp("metric")))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    tracing = Tracing(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        include_content=include_content,
    )
    tracing._shutdown += [tracer_provider.shutdown, meter_provider.shutdown]
    return tracing


def _otlp(signal: str) -> Any:
    try:
        if signal == "trace":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    except ImportError as e:
        raise ConfigError(f"The OTLP exporter is missing: {INSTALL_HINT} ({e}).") from e


class _Instruments:
    """The tracer and the histograms (built once per `Tracing`)."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError as e:
            raise ConfigError(f"Tracing needs OpenTelemetry: {INSTALL_HINT} ({e}).") from e
        from .. import __version__

        self.context = context
        self.trace = trace
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per operation"
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Operation duration"
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to the first generated token of a model call",
        )
        self.internal = trace.SpanKind.INTERNAL
        self.client = trace.SpanKind.CLIENT
        self.error = trace.StatusCode.ERROR


class RunTrace:
    """The subscriber of one run: call it with each event; `close` ends what is still open."""

    def __init__(
        self, tracing: Tracing, inst: _Instruments, provider: Callable[[], str] | None
    ) -> None:
        self.tracing = tracing
        self.inst = inst
        self.content = tracing.include_content
        self._provider = provider
        self.run_span: Any = None
        self.ctx: Any = None
        self._token: Any = None
        self._model = ""
        self._common: dict[str, Any] = {}
        self._run_start = 0
        self._boundary = 0  # ns: the last step boundary (where compaction starts)
        self._chat: tuple[Any, int, int] | None = None  # span, end ns, step
        self._tools: dict[str, tuple[Any, int]] = {}
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            RunStarted: self._started,
            Usage: self._usage,
            TurnFinished: self._turn,
            ToolCallStarted: self._tool_started,
            ToolCallFinished: self._tool_finished,
            HistoryCompacted: self._compacted,
            RunFinished: self._finished,
        }
        if self.content:
            self._handlers[TextDelta] = lambda e: self._text.append(e.text)
            self._handlers[ThinkingDelta] = lambda e: self._thinking.append(e.text)

    def __call__(self, event: object) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # -- the run ---------------------------------------------------------------------------

    def _started(self, e: RunStarted) -> None:
        now = time.time_ns()
        provider = self.tracing.provider or (self._provider() if self._provider else "")
        self._model = e.model
        self._common = {
            "gen_ai.provider.name": provider or AGENT_NAME,
            "gen_ai.request.model": e.model,
        }
        name = self.tracing.agent_name
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": name,
            "gen_ai.conversation.id": e.session_id,
            **self._common,
            "gemma_agent.resumed": e.resumed,
        }
        if e.variant:
            attrs["gemma_agent.variant"] = e.variant
        if self.content and e.task:
            attrs["gen_ai.input.messages"] = _messages(
                "user", [{"type": "text", "content": e.task}]
            )
        span = self.inst.tracer.start_span(
            f"invoke_agent {name}", kind=self.inst.internal, attributes=attrs, start_time=now
        )
        self.run_span, self._run_start, self._boundary = span, now, now
        self.ctx = self.inst.trace.set_span_in_context(span)
        self._token = self.inst.context.attach(self.ctx)

    def _finished(self, e: RunFinished) -> None:
        now = time.time_ns()
        self._end_chat(None)
        self._end_tools("the run ended before the call finished", now)
        span = self.run_span
        if span is None:
            return
        u = e.usage
        attrs: dict[str, Any] = {"gemma_agent.stop_reason": e.reason, "gemma_agent.steps": e.steps}
        if u is not None:
            attrs |= {
                "gen_ai.usage.input_tokens": u.prompt_tokens,
                "gen_ai.usage.output_tokens": u.generated_tokens,
                "gen_ai.usage.cache_read.input_tokens": u.cached_prompt_tokens,
                "gen_ai.usage.reasoning.output_tokens": u.thinking_tokens,
                "gemma_agent.requests": u.requests,
                "gemma_agent.tool_calls": u.tool_calls,
            }
        if self.content and e.output is not None:
            text = e.output if isinstance(e.output, str) else _json(e.output)
            attrs["gen_ai.output.messages"] = _messages(
                "assistant", [{"type": "text", "content": text}], finish=e.reason
            )
        span.set_attributes(attrs)
        if e.reason != "final_answer":
            span.set_attribute("error.type", e.reason)
            span.set_status(self.inst.error, e.error or e.reason)
        span.end(end_time=now)
        self.inst.duration.record(
            (now - self._run_start) / 1e9, {"gen_ai.operation.name": "invoke_agent", **self._common}
        )
        self.run_span = None
        self._detach()

    def close(self, error: BaseException | None = None) -> None:
        """End whatever the run left open (it raised, or was cancelled before RunFinished)."""
        now = time.time_ns()
        self._end_chat(None)
        self._end_tools("the run stopped before the call finished", now)
        if self.run_span is not None:
            span, self.run_span = self.run_span, None
            if error is not None:
                span.record_exception(error)
                span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(self.inst.error, str(error) or type(error).__qualname__)
            span.end(end_time=now)
        self._detach()

    def _detach(self) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            try:
                self.inst.context.detach(token)
            except Exception:  # another context (a consumer closed the stream elsewhere)
                pass

    # -- model calls -----------------------------------------------------------------------

    def _usage(self, e: Usage) -> None:
        now = time.time_ns()
        self._end_chat(None)  # a re-decoded attempt: the previous call ends here
        start = now - int(e.seconds * 1e9)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            **self._common,
            "gen_ai.usage.input_tokens": e.prompt_tokens,
            "gen_ai.usage.output_tokens": e.generated_tokens,
            "gen_ai.usage.cache_read.input_tokens": e.cached_prompt_tokens,
            "gen_ai.usage.reasoning.output_tokens": e.thinking_tokens,
            "gemma_agent.step": e.step,
            "gemma_agent.context_tokens": e.context_tokens,
        }
        if e.finish_reason:
            attrs["gen_ai.response.finish_reasons"] = (e.finish_reason,)
        if e.first_token_seconds is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = e.first_token_seconds
        span = self.inst.tracer.start_span(
            f"chat {self._model}",
            context=self.ctx,
            kind=self.inst.client,
            attributes=attrs,
            start_time=start,
        )
        self._chat = (span, now, e.step)
        metric = {"gen_ai.operation.name": "chat", **self._common}
        self.inst.tokens.record(e.prompt_tokens, {**metric, "gen_ai.token.type": "input"})
        self.inst.tokens.record(e.generated_tokens, {**metric, "gen_ai.token.type": "output"})
        self.inst.duration.record(e.seconds, metric)
        if e.first_token_seconds is not None:
            self.inst.first_chunk.record(e.first_token_seconds, metric)

    def _turn(self, e: TurnFinished) -> None:
        self._end_chat(e)
        self._boundary = time.time_ns()

    def _end_chat(self, turn: TurnFinished | None) -> None:
        if self._chat is None:
            return
        span, end, step = self._chat
        self._chat = None
        if self.content:
            if turn is not None and turn.step == step:
                t = turn.turn
                parts = _turn_parts(t.reasoning, t.text, t.tool_calls)
            else:
                parts = _turn_parts("".join(self._thinking), "".join(self._text), ())
            span.set_attribute("gen_ai.output.messages", _messages("assistant", parts))
            self._text.clear()
            self._thinking.clear()
        span.end(end_time=end)

    # -- tools and compaction --------------------------------------------------------------

    def _tool_started(self, e: ToolCallStarted) -> None:
        now = time.time_ns()
        call = e.call
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
            "gen_ai.tool.type": "function",
            "gemma_agent.step": e.step,
        }
        if self.content:
            attrs["gen_ai.tool.call.arguments"] = _json(call.arguments)
        span = self.inst.tracer.start_span(
            f"execute_tool {call.name}", context=self.ctx, kind=self.inst.internal,
            attributes=attrs, start_time=now,
        )  # fmt: skip
        self._tools[call.id] = (span, now)

    def _tool_finished(self, e: ToolCallFinished) -> None:
        now = time.time_ns()
        entry = self._tools.pop(e.call.id, None)
        if entry is None:
            return
        span, start = entry
        result = e.result
        span.set_attribute("gemma_agent.tool.outcome", "error" if result.is_error else "ok")
        if self.content:
            span.set_attribute("gen_ai.tool.call.result", _json(result.content))
        if result.is_error:
            span.set_attribute("error.type", "tool_error")
            span.set_status(self.inst.error, "the call returned an error result")
        span.end(end_time=now)
        self.inst.duration.record(
            (now - start) / 1e9,
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": e.call.name},
        )
        if not self._tools:
            self._boundary = now

    def _end_tools(self, why: str, now: int) -> None:
        for span, _start in self._tools.values():
            span.set_attribute("error.type", "cancelled")
            span.set_status(self.inst.error, why)
            span.end(end_time=now)
        self._tools.clear()

    def _compacted(self, e: HistoryCompacted) -> None:
        now = time.time_ns()
        span = self.inst.tracer.start_span(
            f"compact_history {e.tier}",
            context=self.ctx,
            kind=self.inst.internal,
            attributes={
                "gen_ai.operation.name": "compact_history",
                "gemma_agent.compaction.tier": e.tier,
                "gemma_agent.compaction.tokens_before": e.tokens_before,
                "gemma_agent.compaction.tokens_after": e.tokens_after,
                "gemma_agent.compaction.dropped": len(e.dropped),
            },
            start_time=min(self._boundary, now),
        )
        if self.content and e.summary:
            span.set_attribute("gemma_agent.compaction.summary", e.summary)
        span.end(end_time=now)
        self._boundary = now


def _turn_parts(reasoning: str | None, text: str, calls: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if reasoning:
        parts.append({"type": "reasoning", "content": reasoning})
    if text:
        parts.append({"type": "text", "content": text})
    for c in calls:
        parts.append({"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments})
    return parts


def _messages(role: str, parts: list[dict[str, Any]], finish: str | None = None) -> str:
    message: dict[str, Any] = {"role": role, "parts": parts}
    if finish is not None:
        message["finish_reason"] = finish
    return _json([message])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


__all__ = [
    "CONTENT_ENV",
    "RunTrace",
    "Tracing",
    "configure",
    "content_wanted",
    "default_tracing",
    "instrument_all",
    "tracing_wanted",
]
