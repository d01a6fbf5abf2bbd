"""Training-data export: the exact ids each engine request saw and produced, with loss masks.

The reference for "what the engine received" is the engine itself: ScriptedEngine records every
request, and a recording wrapper around the real CPU engine (tiny model) does the same.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.agent import Step, read_steps
from gemma_agent.agent.compaction import Compaction, CompactionContext
from gemma_agent.agent.engines.base import EngineDelta, EngineRequest
from gemma_agent.agent.messages import Message, ModelTurn
from gemma_agent.cli import main
from gemma_agent.evals.export import segments, trajectories, write_export
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite
from gemma_agent.evals.solvers import AgentSolver
from gemma_agent.evals.tasks import Suite
from gemma_agent.events import HistoryCompacted
from gemma_agent.prompts import render_chat
from gemma_agent.prompts.tokens import ByteTokenizer

call = ScriptedEngine.tool_call
thought = ScriptedEngine.thought


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


def session_file(tmp_path: Path, session_id: str | None) -> Path:
    assert session_id is not None
    return tmp_path / ".gemma-agent" / "sessions" / f"{session_id}.jsonl"


def spans(mask: Sequence[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = None
    for i, m in enumerate([*mask, 0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            out.append((start, i))
            start = None
    return out


def assert_steps_match_requests(steps: Sequence[Step], engine: ScriptedEngine) -> None:
    tok = engine.tokenizer
    assert len(steps) == len(engine.requests)
    for step, request in zip(steps, engine.requests, strict=True):
        assert step.prompt_ids == request.prompt_ids
        assert tok.decode(step.output_ids) == request.output
        assert step.output_ids == tuple(tok.encode(request.output))


async def test_log_records_exact_ids_of_every_request(tmp_path: Path) -> None:
    """Thinking on, family L (its empty thought prefill is not history), non-canonical argument
    text, a malformed call re-decoded, a second user message: the log holds every prompt and
    output as the engine saw them, though a re-render would not reproduce them."""
    engine = ScriptedEngine(
        [
            thought("Echo first.") + '<|tool_call>call:echo{text:<|"|>a<|"|> }<tool_call|>',
            "<|tool_call>call:echo{nope:1}<tool_call|>",  # invalid: re-decoded
            call("echo", text="b"),
            "Done.",
            thought("Again.") + "Still done.",
        ],
        variant="31B",
    )
    agent = Agent(
        engine=engine, tools=[echo], workspace=tmp_path, thinking=True, compactor=None, fsync=False
    )
    first = await agent.run("task")
    await agent.run("more", session_id=first.session_id)
    await agent.aclose()
    engine.assert_complete()
    steps = read_steps(session_file(tmp_path, first.session_id))
    assert_steps_match_requests(steps, engine)
    assert [s.accepted for s in steps] == [True, False, True, True, True]
    # Logged as deltas: the log is far smaller than the prompts it stands for.
    lines = session_file(tmp_path, first.session_id).read_text().splitlines()
    prompt_ids = sum(len(json.loads(x)["prompt"]) for x in lines if '"type":"step"' in x)
    assert prompt_ids < sum(len(r.prompt_ids) for r in engine.requests) / 2


async def test_split_turns_records_are_prompt_plus_output(tmp_path: Path) -> None:
    engine = ScriptedEngine(
        [thought("Hm.") + call("echo", text="x"), call("echo", text="y") + "<turn|>", "End."],
        variant="31B",
    )
    agent = Agent(
        engine=engine, tools=[echo], workspace=tmp_path, thinking=True, compactor=None, fsync=False
    )
    result = await agent.run("task")
    await agent.aclose()
    records = list(trajectories([session_file(tmp_path, result.session_id)], split_turns=True))
    assert len(records) == len(engine.requests) == 3
    tok = engine.tokenizer
    for record, request in zip(records, engine.requests, strict=True):
        out = tok.encode(request.output)
        assert record["input_ids"] == [*request.prompt_ids, *out]
        assert record["loss_mask"] == [0] * len(request.prompt_ids) + [1] * len(out)
        assert record["text"] == request.prompt_text + request.output
        assert record["model"] == "scripted" and record["variant"] == "31B"
        assert record["thinking"] is True and record["reward"] is None
    assert records[0]["reasoning"] == "kept" and records[0]["reasoning_tokens"] == len(
        "thought\nHm."
    )
    assert [r["turn"] for r in records] == [0, 1, 2]


async def test_trajectory_mask_covers_exactly_the_generated_spans(tmp_path: Path) -> None:
    """One record per trajectory: the last prompt plus its output; every earlier output sits
    inside it at its own prompt's end, masked, except a stop id the loop normalised."""
    outputs = [
        thought("Plan.") + call("echo", text="1"),  # ends <|tool_response>: kept as generated
        call("echo", text="2") + "<turn|>",  # <turn|> where <|tool_response> belonged
        "All done.",
    ]
    engine = ScriptedEngine(outputs, variant="E4B")
    agent = Agent(
        engine=engine, tools=[echo], workspace=tmp_path, thinking=True, compactor=None, fsync=False
    )
    result = await agent.run("task")
    await agent.aclose()
    (record,) = trajectories([session_file(tmp_path, result.session_id)])
    ids, mask = record["input_ids"], record["loss_mask"]
    tok = engine.tokenizer
    last = engine.requests[-1]
    assert ids == [*last.prompt_ids, *tok.encode(last.output)]
    expected: list[tuple[int, int]] = []
    for request in engine.requests:
        start = len(request.prompt_ids)
        out = tok.encode(request.output)
        n = len(out) - (1 if request.output.endswith("<tool_call|><turn|>") else 0)
        assert ids[start : start + n] == out[:n]  # the model's own ids, in place
        expected.append((start, start + n))
    assert spans(mask) == expected
    generated = "".join(tok.decode(ids[a:b]) for a, b in spans(mask))
    cut = "<tool_call|><turn|>"
    assert generated == "".join(
        r.output.removesuffix("<turn|>") if r.output.endswith(cut) else r.output
        for r in engine.requests
    )
    assert "<|tool_response>" in engine.requests[0].output  # generated, so trained on
    assert record["num_trained_tokens"] == sum(mask)
    assert record["segments"] == 1 and record["steps"] == 3


async def test_text_is_the_official_template_rendering(tmp_path: Path) -> None:
    """Canonical outputs (family S, thinking off, sorted arguments): the exported ids decode
    to exactly what the chat template renders for the final history, across two user turns."""
    engine = ScriptedEngine(
        [call("echo", text="hi"), "It said hi.", call("echo", text="yo"), "It said yo."],
        variant="E4B",
    )
    agent = Agent(
        engine=engine,
        tools=[echo],
        workspace=tmp_path,
        instructions="Be brief.",
        compactor=None,
        fsync=False,
    )
    first = await agent.run("say hi")
    second = await agent.run("say yo", session_id=first.session_id)
    await agent.aclose()
    (record,) = trajectories([session_file(tmp_path, first.session_id)])
    history: list[Any] = [{"role": "system", "content": "Be brief."}, *second.turns]
    decls = agent.registry.declarations()
    rendered = render_chat(history, decls, variant="E4B", add_generation_prompt=False)
    assert record["text"] + "\n" == rendered
    assert record["input_ids"] == ByteTokenizer().encode(rendered)[:-1]
    # Both model turns of both user turns are trained on, nothing else.
    masked = [
        engine.tokenizer.decode(record["input_ids"][a:b]) for a, b in spans(record["loss_mask"])
    ]
    assert "".join(masked) == "".join(
        call("echo", text=t) + f"<|tool_response>It said {t}.<turn|>" for t in ("hi", "yo")
    )


class CompactOnce:
    """Replaces the first tool result by a stub once the history holds two model turns."""

    name = "stub_first_result"

    def __init__(self) -> None:
        self.done = False

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        turns = [i for i, m in enumerate(history) if isinstance(m, ModelTurn)]
        if self.done or len(turns) < 2:
            return None
        self.done = True
        i = turns[0]
        turn = history[i]
        assert isinstance(turn, ModelTurn)
        stub = tuple(r.model_copy(update={"content": "[cleared]"}) for r in turn.tool_results)
        new = [*history[:i], turn.model_copy(update={"tool_results": stub}), *history[i + 1 :]]
        return Compaction(new, HistoryCompacted(self.name, ctx.tokens, ctx.tokens - 1))


async def test_compacted_session_exports_one_segment_per_prompt_lineage(tmp_path: Path) -> None:
    engine = ScriptedEngine(
        [
            call("echo", text="long output " * 5),
            call("echo", text="b"),
            call("echo", text="c"),
            "ok",
        ]
    )
    agent = Agent(
        engine=engine, tools=[echo], workspace=tmp_path, compactor=CompactOnce(), fsync=False
    )
    result = await agent.run("task")
    await agent.aclose()
    path = session_file(tmp_path, result.session_id)
    steps = read_steps(path)
    assert_steps_match_requests(steps, engine)
    assert [len(s) for s in segments(steps)] == [2, 2]  # the compaction re-rendered step 3
    records = list(trajectories([path]))
    assert [(r["segment"], r["segments"], r["steps"]) for r in records] == [(0, 2, 2), (1, 2, 2)]
    before, after = records
    full = 'response:echo{value:<|"|>long output'
    assert full in before["text"] and "[cleared]" not in before["text"]
    assert "[cleared]" in after["text"] and full not in after["text"]
    # Each segment is the exact prompt + output of its last request.
    tok = engine.tokenizer
    for record, request in zip(records, (engine.requests[1], engine.requests[3]), strict=True):
        assert record["input_ids"] == [*request.prompt_ids, *tok.encode(request.output)]
    # The compacted segment's prompt holds the earlier model turns untrained.
    first_prompt = len(engine.requests[2].prompt_ids)
    assert not any(after["loss_mask"][:first_prompt])


async def test_eval_run_with_pass_at_k_samples(tmp_path: Path) -> None:
    """Two samples of one task, one passes and one fails: rewards, filters, sample index,
    config, and the Parquet file read back with `datasets`."""
    task = load_suite("humaneval").tasks[0]
    solution = task.files["solution.py"].decode() + (
        "    return any(abs(a - b) < threshold\n"
        "               for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
    )
    engine = ScriptedEngine(
        [call("write_file", content=solution, path="solution.py"), "Fixed.", "I give up."]
    )
    out = tmp_path / "run"
    await run_suite(
        Suite("humaneval", (task,)),
        [task],
        AgentSolver(engine, trajectories=out / "trajectories"),
        EvalOptions(output=out, progress=False, samples=2, concurrency=1),
        {"suite": "humaneval", "model": "scripted"},
    )
    records = sorted(trajectories([out]), key=lambda r: r["sample"])
    assert [(r["task_id"], r["sample"], r["passed"], r["reward"]) for r in records] == [
        ("HumanEval/0", 0, True, 1.0),
        ("HumanEval/0", 1, False, 0.0),
    ]
    assert records[0]["tests_passed_ratio"] == 1.0 and records[0]["status"] == "passed"
    assert json.loads(records[0]["config"])["suite"] == "humaneval"
    assert all(r["input_ids"][: len(engine.requests[0].prompt_ids)] for r in records)
    passed = list(trajectories([out], only_passed=True))
    assert [r["sample"] for r in passed] == [0]
    assert [r["sample"] for r in trajectories([out], min_reward=0.5)] == [0]

    def shorter_is_better(record: dict[str, Any]) -> float:
        return 1.0 / record["num_tokens"]

    custom = list(trajectories([out], reward=shorter_is_better, min_reward=0.0))
    assert {r["reward"] for r in custom} == {1.0 / r["num_tokens"] for r in custom}

    pytest.importorskip("pyarrow")
    datasets = pytest.importorskip("datasets")
    target = tmp_path / "data"
    code = main(["export", str(out), "--output", str(target), "--format", "parquet"])
    assert code == 0
    summary = json.loads((target / "export.json").read_text())
    assert summary["records"] == 2 and summary["trained_tokens"] > 0
    ds = datasets.load_dataset(
        "parquet", data_files=str(target / "trajectories.parquet"), split="train"
    )
    rows = sorted(ds, key=lambda r: r["sample"])
    assert [r["input_ids"] for r in rows] == [r["input_ids"] for r in records]
    assert [r["loss_mask"] for r in rows] == [r["loss_mask"] for r in records]
    assert rows[0]["passed"] is True and rows[1]["reward"] == 0.0


async def test_cli_jsonl_only_passed_and_split_turns(tmp_path: Path) -> None:
    engine = ScriptedEngine([call("echo", text="a"), "done"])
    agent = Agent(engine=engine, tools=[echo], workspace=tmp_path, compactor=None, fsync=False)
    result = await agent.run("task")
    await agent.aclose()
    sessions = tmp_path / ".gemma-agent" / "sessions"
    target = tmp_path / "data"
    assert main(["export", str(sessions), "--output", str(target), "--split-turns"]) == 0
    lines = (target / "trajectories.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [f"{result.session_id}/0/{i}" for i in (0, 1)]
    # A session is not an eval sample: nothing passed, no reward.
    assert main(["export", str(sessions), "--output", str(target), "--only-passed"]) == 0
    assert (target / "trajectories.jsonl").read_text() == ""
    assert write_export([], tmp_path / "empty")["records"] == 0
    assert main(["export", str(tmp_path / "nope"), "--output", str(target)]) == 2


# -- the real CPU engine (tiny model) --------------------------------------------------------


class Recording:
    """Wraps an engine; records each request's prompt ids and the ids it streamed back."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.info = engine.info
        self.tokenizer = engine.tokenizer
        self.seen: list[tuple[tuple[int, ...], list[int]]] = []

    def count_tokens(self, ids: Sequence[int]) -> int:
        return int(self.engine.count_tokens(ids))

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        out: list[int] = []
        self.seen.append((tuple(request.prompt_ids), out))
        async for delta in self.engine.generate(request):
            out.extend(delta.token_ids)
            yield delta

    async def aclose(self) -> None:
        return None


@pytest.mark.engine
@pytest.mark.asyncio(loop_scope="session")
async def test_real_cpu_engine_ids_are_exported_exactly(
    vllm_engine: Any, tmp_path: Path, tiny_model_path: Path
) -> None:
    engine = Recording(vllm_engine)
    agent = Agent(
        engine=engine,  # type: ignore[arg-type]
        tools=[echo],
        workspace=tmp_path,
        thinking=True,
        compactor=None,
        max_output_tokens=48,
        max_steps=3,
        fsync=False,
        close_engine=False,
    )
    first = await agent.run("Echo hello, then answer.")
    await agent.run("And again.", session_id=first.session_id)
    await agent.aclose()
    path = session_file(tmp_path, first.session_id)
    steps = read_steps(path)
    assert [(s.prompt_ids, list(s.output_ids)) for s in steps] == engine.seen
    records = list(trajectories([path], split_turns=True, tokenizer=tiny_model_path))
    accepted = [s for s in steps if s.accepted]
    assert len(records) == len(accepted)
    tok = vllm_engine.tokenizer
    for record, step in zip(records, accepted, strict=True):
        assert record["input_ids"] == [*step.prompt_ids, *step.output_ids]
        assert sum(record["loss_mask"]) == len(step.output_ids)
        assert record["text"] == tok.decode(record["input_ids"])
    whole = list(trajectories([path], tokenizer=tiny_model_path))
    assert sum(r["steps"] for r in whole) == len(accepted)


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.asyncio(loop_scope="session")
async def test_one_training_step_of_the_tiny_model_on_the_export(
    vllm_engine: Any, tmp_path: Path, tiny_model_path: Path
) -> None:
    """Parquet export → `datasets` → one optimizer step of the tiny model (plain torch loop on
    the HF checkpoint): the loss is finite, and only masked (generated) tokens contribute."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    datasets = pytest.importorskip("datasets")
    agent = Agent(
        engine=vllm_engine,
        tools=[echo],
        workspace=tmp_path,
        compactor=None,
        max_output_tokens=32,
        max_steps=2,
        fsync=False,
    )
    await agent.run("Say something.")
    await agent.aclose()
    sessions = tmp_path / ".gemma-agent" / "sessions"
    out = tmp_path / "data"
    assert main(
        ["export", str(sessions), "--output", str(out), "--format", "parquet",
         "--tokenizer", str(tiny_model_path)]
    ) == 0  # fmt: skip
    ds = datasets.load_dataset("parquet", data_files=str(out / "trajectories.parquet"))["train"]
    row = ds[0]
    ids = torch.tensor([row["input_ids"]])
    mask = torch.tensor([row["loss_mask"]])
    assert int(mask.sum()) > 0
    labels = ids.masked_fill(mask == 0, -100)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=1e-2)
    result = model(input_ids=ids, labels=labels)
    loss = result.loss
    assert torch.isfinite(loss)
    # Only masked tokens contribute: the loss is the mean cross-entropy over them alone.
    logits = result.logits[0, :-1].float()
    targets = ids[0, 1:]
    per_token = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    trained = mask[0, 1:].bool()
    assert torch.allclose(loss, per_token[trained].mean(), atol=1e-5)
    assert not torch.allclose(loss, per_token.mean())  # the prompt would change it
    loss.backward()
    optim.step()
    optim.zero_grad()
    with torch.no_grad():
        after = model(input_ids=ids, labels=labels).loss
    assert torch.isfinite(after) and not torch.equal(after, loss)
