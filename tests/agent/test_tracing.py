"""OpenTelemetry spans and metrics from real runs (ScriptedEngine), through the SDK's in-memory
exporter and reader, and one real OTLP/HTTP export to a receiver on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from gemma_agent import Agent, ScriptedEngine, ToolContext, tool
from gemma_agent.agent import Tracing, instrument_all
from gemma_agent.agent.tracing import configure, tracing_wanted
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from .helpers import call, thought


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@tool
def broken(text: str) -> str:
    """Always fails."""
    raise ValueError("nope")


class Otel:
    def __init__(self, content: bool = False) -> None:
        self.spans = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.tracing = Tracing(
            tracer_provider=self.provider, meter_provider=self.meters, include_content=content
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out


@pytest.fixture
def otel() -> Otel:
    return Otel()


async def test_spans_follow_the_genai_conventions(tmp_path: Path, otel: Otel) -> None:
    engine = ScriptedEngine([call("echo", text="hi"), "Done: hi"])
    agent = Agent(engine=engine, tools=[echo], workspace=tmp_path, tracing=otel.tracing)
    result = await agent.run("say hi")
    assert result.ok

    (run,) = otel.named("invoke_agent")
    chats = otel.named("chat")
    (tool_span,) = otel.named("execute_tool")
    assert run.name == "invoke_agent gemma-agent" and run.parent is None
    assert run.attributes is not None and run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.conversation.id"] == result.session_id
    assert run.attributes["gen_ai.provider.name"] == "scripted"
    assert run.attributes["gemma_agent.stop_reason"] == "final_answer"
    assert run.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert run.attributes["gen_ai.usage.output_tokens"] == result.usage.generated_tokens
    assert run.status.status_code != StatusCode.ERROR

    assert len(chats) == 2
    for chat in chats:
        a = chat.attributes
        assert a is not None and chat.kind == SpanKind.CLIENT
        assert chat.parent is not None and chat.parent.span_id == run.context.span_id
        assert chat.name == f"chat {engine.info.model}" and a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.request.model"] == engine.info.model
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.usage.cache_read.input_tokens" in a
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        assert (
            0 <= a["gen_ai.response.time_to_first_chunk"] <= (chat.end_time - chat.start_time) / 1e9
        )  # type: ignore[operator]
        assert run.start_time <= chat.start_time <= chat.end_time <= run.end_time  # type: ignore[operator]
    # The second request appends to the first: the engine's prefix cache hits.
    assert chats[1].attributes["gen_ai.usage.cache_read.input_tokens"] > 0  # type: ignore[index]

    t = tool_span.attributes
    assert t is not None and tool_span.parent is not None
    assert tool_span.parent.span_id == run.context.span_id
    assert t["gen_ai.tool.name"] == "echo" and t["gen_ai.operation.name"] == "execute_tool"
    call_id = result.turns[1].tool_calls[0].id  # type: ignore[union-attr]
    assert t["gen_ai.tool.call.id"] == call_id and t["gemma_agent.tool.outcome"] == "ok"
    assert chats[0].end_time <= tool_span.start_time <= tool_span.end_time <= chats[1].start_time  # type: ignore[operator]

    # No content unless asked.
    for span in otel.finished():
        keys = set(span.attributes or {})
        assert not keys & {"gen_ai.input.messages", "gen_ai.output.messages",
                           "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}  # fmt: skip

    metrics = otel.metrics()
    usage = metrics["gen_ai.client.token.usage"]
    by_type = {p.attributes["gen_ai.token.type"]: p for p in usage}
    assert by_type["input"].sum == result.usage.prompt_tokens
    assert by_type["output"].sum == result.usage.generated_tokens
    assert by_type["input"].count == 2
    ops = {
        p.attributes["gen_ai.operation.name"]: p
        for p in metrics["gen_ai.client.operation.duration"]
    }
    assert set(ops) == {"chat", "execute_tool", "invoke_agent"} and ops["chat"].count == 2
    assert sum(p.count for p in metrics["gen_ai.client.operation.time_to_first_chunk"]) == 2


async def test_thinking_tokens_tool_errors_and_stop_reasons(tmp_path: Path, otel: Otel) -> None:
    engine = ScriptedEngine(
        [thought("I will try it.") + call("broken", text="x"), call("broken", text="y")]
    )
    agent = Agent(
        engine=engine, tools=[broken], workspace=tmp_path, thinking=True, max_steps=2,
        tracing=otel.tracing,
    )  # fmt: skip
    result = await agent.run("try")
    assert result.reason == "max_steps"
    (run,) = otel.named("invoke_agent")
    assert run.status.status_code == StatusCode.ERROR
    assert run.attributes["error.type"] == "max_steps"  # type: ignore[index]
    assert run.attributes["gen_ai.usage.reasoning.output_tokens"] > 0  # type: ignore[index]
    first = otel.named("chat")[0]
    assert first.attributes["gen_ai.usage.reasoning.output_tokens"] > 0  # type: ignore[index]
    tools = otel.named("execute_tool")
    assert len(tools) == 2
    for span in tools:
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes["error.type"] == "tool_error"  # type: ignore[index]
        assert span.attributes["gemma_agent.tool.outcome"] == "error"  # type: ignore[index]


async def test_content_only_when_asked(tmp_path: Path) -> None:
    otel = Otel(content=True)
    engine = ScriptedEngine([call("echo", text="secret"), "Done: secret"])
    agent = Agent(engine=engine, tools=[echo], workspace=tmp_path, tracing=otel.tracing)
    await agent.run("say secret")
    (run,) = otel.named("invoke_agent")
    a = run.attributes
    assert a is not None
    assert json.loads(a["gen_ai.input.messages"]) == [  # type: ignore[arg-type]
        {"role": "user", "parts": [{"type": "text", "content": "say secret"}]}
    ]
    out = json.loads(a["gen_ai.output.messages"])  # type: ignore[arg-type]
    assert out[0]["parts"][0]["content"] == "Done: secret"
    first, second = otel.named("chat")
    parts = json.loads(first.attributes["gen_ai.output.messages"])[0]["parts"]  # type: ignore[arg-type, index]
    assert parts[0]["type"] == "tool_call" and parts[0]["arguments"] == {"text": "secret"}
    parts = json.loads(second.attributes["gen_ai.output.messages"])[0]["parts"]  # type: ignore[arg-type, index]
    assert parts == [{"type": "text", "content": "Done: secret"}]
    (tool_span,) = otel.named("execute_tool")
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"text": "secret"}  # type: ignore[arg-type, index]
    assert json.loads(tool_span.attributes["gen_ai.tool.call.result"]) == "secret"  # type: ignore[arg-type, index]


async def test_caller_span_is_the_parent_and_nested_runs_nest(tmp_path: Path, otel: Otel) -> None:
    inner_engine = ScriptedEngine(["inner answer"])

    @tool
    async def ask_helper(question: str, ctx: ToolContext) -> str:
        """Ask a helper agent."""
        helper = Agent(engine=inner_engine, workspace=tmp_path, tracing=otel.tracing)
        return (await helper.run(question)).output

    engine = ScriptedEngine([call("ask_helper", question="q?"), "Done."])
    agent = Agent(engine=engine, tools=[ask_helper], workspace=tmp_path, tracing=otel.tracing)
    with otel.tracing.span("eval_task t1", {"gemma_agent.eval.task_id": "t1"}) as task_span:
        await agent.run("delegate")
    outer, inner = sorted(otel.named("invoke_agent"), key=lambda s: s.start_time or 0)
    assert outer.parent is not None and outer.parent.span_id == task_span.get_span_context().span_id
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert {s.context.trace_id for s in otel.finished()} == {outer.context.trace_id}


async def test_instrument_all_and_off(tmp_path: Path, otel: Otel) -> None:
    instrument_all(otel.tracing)
    try:
        await Agent(engine=ScriptedEngine(["a"]), workspace=tmp_path).run("x")
        await Agent(engine=ScriptedEngine(["b"]), workspace=tmp_path, tracing=False).run("x")
    finally:
        instrument_all(None)
    await Agent(engine=ScriptedEngine(["c"]), workspace=tmp_path).run("x")
    assert len(otel.named("invoke_agent")) == 1


class CompactOnce:
    """Compacts once, at the second step: drops nothing, says so (a compaction the loop runs)."""

    name = "compact_once"

    def __init__(self) -> None:
        self.calls = 0

    async def compact(self, history: Any, ctx: Any) -> Any:
        from gemma_agent.agent.compaction import Compaction
        from gemma_agent.events import HistoryCompacted

        self.calls += 1
        if self.calls != 2:
            return None
        event = HistoryCompacted("compact_once", ctx.tokens, ctx.tokens - 1)
        return Compaction(list(history), event)


async def test_compaction_span(tmp_path: Path, otel: Otel) -> None:
    engine = ScriptedEngine([call("echo", text="x"), "Done."])
    agent = Agent(
        engine=engine, tools=[echo], workspace=tmp_path, compactor=CompactOnce(),
        tracing=otel.tracing,
    )  # fmt: skip
    assert (await agent.run("one")).ok
    (span,) = otel.named("compact_history")
    (run,) = otel.named("invoke_agent")
    (tool_span,) = otel.named("execute_tool")
    second = otel.named("chat")[1]
    assert span.name == "compact_history compact_once"
    assert span.parent is not None and span.parent.span_id == run.context.span_id
    assert tool_span.end_time <= span.start_time <= span.end_time <= second.start_time  # type: ignore[operator]
    assert span.attributes["gemma_agent.compaction.tokens_before"] > 0  # type: ignore[index]


def test_no_opentelemetry_import_when_off(tmp_path: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "from gemma_agent import Agent, ScriptedEngine\n"
        f"agent = Agent(engine=ScriptedEngine(['hi']), workspace={str(tmp_path)!r})\n"
        "assert asyncio.run(agent.run('x')).ok\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_env_turns_tracing_on() -> None:
    assert not tracing_wanted(False, {})
    assert tracing_wanted(True, {})
    assert tracing_wanted(False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"})
    assert tracing_wanted(False, {"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing_wanted(False, {"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing_wanted(True, {"OTEL_SDK_DISABLED": "true"})


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    got: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((self.path, self.headers.get("Content-Type", ""), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_otlp_http_export_to_a_local_receiver(
    tmp_path: Path, receiver: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    url, got = receiver
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "agent-test"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        tracing = configure(env=env)
        engine = ScriptedEngine([call("echo", text="hi"), "Done."])
        agent = Agent(engine=engine, tools=[echo], workspace=tmp_path, tracing=tracing)
        assert (await agent.run("say hi")).ok
        tracing.shutdown()  # flushes both signals
    traces = [body for path, _, body in got if path == "/v1/traces"]
    assert traces and all(ct == "application/x-protobuf" for p, ct, _ in got)
    names: list[str] = []
    service = set()
    for body in traces:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            service |= {
                a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
            }
            for ss in rs.scope_spans:
                names += [s.name for s in ss.spans]
    assert service == {"agent-test"}
    assert sorted(names) == sorted(
        ["invoke_agent gemma-agent", f"chat {engine.info.model}", f"chat {engine.info.model}",
         "execute_tool echo"]
    )  # fmt: skip
    metrics = [body for path, _, body in got if path == "/v1/metrics"]
    assert metrics
    metric_names = {
        m.name
        for body in metrics
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= metric_names


async def test_sub_agents_of_the_task_tool_nest_under_their_parent(
    tmp_path: Path, otel: Otel
) -> None:
    engine = ScriptedEngine([
        call("task", agent_type="explore", description="look", prompt="find it"),
        "explorer report",
        "Done.",
    ])  # fmt: skip
    agent = Agent(
        engine=engine, workspace=tmp_path, tracing=otel.tracing, subagents=True,
        sessions_dir=tmp_path / ".s", fsync=False,
    )  # fmt: skip
    assert (await agent.run("delegate")).output == "Done."
    outer, inner = sorted(otel.named("invoke_agent"), key=lambda s: s.start_time or 0)
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert len(otel.named("chat")) == 3 and len(otel.named("execute_tool task")) == 1
