"""Tiny model, tokenizer, grammar, presets and factory: fast tests without an engine."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gemma_agent.agent.engines import factory, presets, tiny
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.errors import ConfigError
from gemma_agent.prompts import tokens as T
from gemma_agent.prompts.grammar import tool_call_grammar

# -- tiny model and tokenizer -------------------------------------------------------------


def test_tiny_model_is_cached_and_complete(tiny_model_path: Path) -> None:
    t0 = time.perf_counter()
    again = tiny.tiny_model_path()
    assert again == tiny_model_path and time.perf_counter() - t0 < 0.5
    cfg = json.loads((tiny_model_path / "config.json").read_text())
    assert cfg["architectures"] == ["Gemma4ForCausalLM"]
    assert cfg["layer_types"].count("sliding_attention") == 3
    assert cfg["layer_types"][-1] == "full_attention"
    assert cfg["vocab_size"] % 64 == 0
    gen = json.loads((tiny_model_path / "generation_config.json").read_text())
    tok = HFTokenizer(tiny_model_path)
    assert gen["eos_token_id"] == [
        tok.control_id(m) for m in (T.EOS, T.TURN_CLOSE, T.TOOL_RESPONSE_OPEN)
    ]
    assert (tiny_model_path / "chat_template.jinja").read_text().startswith("{#- gemma-agent")


def test_cli_tiny_model_command_builds_the_same_model(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gemma_agent", "tiny-model", str(tmp_path / "t")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json"):
        assert (tmp_path / "t" / name).read_bytes() == (tiny_model_path / name).read_bytes()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        tiny.build_tiny_model(tmp_path / "busy")


def test_tokenizer_control_tokens_and_payload_text(tiny_model_path: Path) -> None:
    tok = HFTokenizer(tiny_model_path)
    for marker in T.CONTROL_TOKENS:
        i = tok.control_id(marker)
        assert tok.encode(marker) == [i]
        assert tok.control_marker(i) == marker
        assert tok.decode([i]) == marker
        # In payload text a marker is ordinary text: several ids, none of them control ids.
        plain = tok.encode_text(marker)
        assert len(plain) > 1 and all(tok.control_marker(t) is None for t in plain)
        assert tok.decode(plain) == marker
    text = 'call:f{a:<|"|>x<|"|>}'
    assert tok.encode(text).count(tok.control_id(T.STR)) == 2
    assert tok.control_id(T.STR) not in tok.encode_text(text)
    assert tok.encode("hello")[0] != tok.bos_id  # no BOS added
    s = "naïve 東京 ok"
    dec = tok.new_decoder()
    assert "".join(dec.step(t) for t in tok.encode_text(s)) == s


def test_tokenizer_refuses_a_non_gemma_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    Tokenizer(models.BPE()).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ConfigError, match="not a Gemma 4 tokenizer"):
        HFTokenizer(tmp_path)
    with pytest.raises(ConfigError, match="no tokenizer"):
        HFTokenizer(tmp_path / "missing")


# -- grammar (checked with llguidance itself, no engine) ------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "edit",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "count": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "opts": {
                        "type": "object",
                        "properties": {
                            "x": {"type": "boolean"},
                            "y": {"type": "array", "items": {"type": "number"}},
                        },
                        "required": ["x"],
                    },
                    "note": {"type": ["string", "null"]},
                },
                "required": ["path"],
            },
        },
    },
    {"name": "now", "parameters": {"type": "object", "properties": {}}},
]


@pytest.fixture(scope="module")
def matcher(tiny_model_path: Path):
    pytest.importorskip("llguidance")
    import llguidance
    import llguidance.hf
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_file=str(tiny_model_path / "tokenizer.json"))
    info = llguidance.hf.from_tokenizer(hf)
    tok = HFTokenizer(tiny_model_path)
    logging.getLogger("llguidance").setLevel(logging.ERROR)

    def accepts(choice: str, text: str, tools=TOOLS, **kw) -> bool:
        grammar = tool_call_grammar(tools, choice, **kw)
        compiled = llguidance.LLMatcher.grammar_from_lark(grammar)
        is_err, msgs = llguidance.LLMatcher.validate_grammar_with_warnings(compiled, info)
        assert not is_err, msgs
        m = llguidance.LLMatcher(info, compiled, log_level=0)
        ok = m.consume_tokens(tok.encode(text))
        return bool(ok) and not m.is_error() and m.is_accepting()

    return accepts


CALL = '<|tool_call>call:edit{path:<|"|>a.py<|"|>}<tool_call|>'
FULL = (
    '<|tool_call>call:edit{count:3,mode:<|"|>b<|"|>,note:null,opts:{x:true,y:[1.5,-2]},'
    'path:<|"|>x, "y" {z}<|"|>}<tool_call|><|tool_call>call:now{}<tool_call|><|tool_response>'
)


@pytest.mark.parametrize(
    ("choice", "text", "ok", "kw"),
    [
        ("required", CALL + "<|tool_response>", True, {}),
        ("required", FULL, True, {}),
        ("required", "<|channel>hmm<channel|>" + CALL + "<|tool_response>", True, {}),
        (
            "required",
            "<|channel>hmm<channel|>" + CALL + "<|tool_response>",
            False,
            {"thinking": False},
        ),
        (
            "required",
            "plan<channel|>" + CALL + "<|tool_response>",
            True,
            {"prompt_in_thought": True},
        ),
        ("required", "hello" + CALL + "<|tool_response>", False, {}),
        ("required", "ok<turn|>", False, {}),
        ("required", "<|tool_call>call:edit{count:3}<tool_call|><|tool_response>", False, {}),
        (
            "required",
            '<|tool_call>call:edit{path:<|"|>a<|"|>,mode:<|"|>c<|"|>}<tool_call|><|tool_response>',
            False,
            {},
        ),
        (
            "required",
            '<|tool_call>call:edit{path:<|"|>a<|"|>,opts:{y:[1]}}<tool_call|><|tool_response>',
            False,
            {},
        ),
        ("required", "<|tool_call>call:edit{path:a}<tool_call|><|tool_response>", False, {}),
        ("required", "<|tool_call>call:rm{}<tool_call|><|tool_response>", False, {}),
        ("auto", "Sure. <|channel>x<channel|>Done.<turn|>", True, {}),
        ("auto", "Let me look." + CALL + "<|tool_response>", True, {}),
        ("auto", "<|tool_call>call:edit{}<tool_call|><|tool_response>", False, {}),
        ("none", "Just text.<turn|>", True, {}),
        ("none", "x" + CALL, False, {}),
        ("now", "<|tool_call>call:now{}<tool_call|><|tool_response>", True, {}),
        ("now", CALL + "<|tool_response>", False, {}),
        (
            "required",
            '<|tool_call>call:edit{path:<|"|>abcdefgh<|"|>}<tool_call|><|tool_response>',
            False,
            {"max_string_chars": 4},
        ),
    ],
)
def test_grammar_accepts_exactly_valid_outputs(matcher, choice, text, ok, kw) -> None:
    assert matcher(choice, text, **kw) is ok


def test_grammar_lets_a_union_take_each_of_its_types(matcher) -> None:
    """The declaration shows one type of ``int | str``; the grammar allows every alternative."""
    from gemma_agent import tool

    @tool
    def pick(key: int | str, ids: list[int | str], note: int | str | None = None) -> str:
        """Pick."""
        return ""

    q = '<|"|>'

    def ok(args: str) -> bool:
        text = f"<|tool_call>call:pick{{{args}}}<tool_call|><|tool_response>"
        return matcher("required", text, tools=[pick.declaration()])

    assert ok("ids:[],key:5") and ok(f"ids:[1,{q}a{q}],key:{q}k{q}")
    assert ok(f"ids:[{q}x{q}],key:7,note:null") and ok(f"ids:[2],key:1,note:{q}n{q}")
    assert not ok("ids:[],key:true") and not ok("ids:[true],key:1")


def test_grammar_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="not a registered tool"):
        tool_call_grammar(TOOLS, "delete")
    with pytest.raises(ConfigError, match="needs at least one tool"):
        tool_call_grammar([], "required")
    with pytest.raises(ConfigError, match="cannot be called"):
        tool_call_grammar([{"name": "bad name", "parameters": {}}])
    assert "<|tool_call>" not in tool_call_grammar([], "auto")


# -- presets and factory ----------------------------------------------------------------


def test_presets_cover_the_family_and_defaults() -> None:
    assert set(presets.PRESETS) == {"E2B", "E4B", "12B", "26B-A4B", "31B"}
    e4b = presets.find_preset("google/gemma-4-E4B-it")
    assert e4b is presets.find_preset("e4b") is presets.find_preset("gemma-4-e4b")
    assert e4b is not None and e4b.family == "S" and e4b.context_length == 131072
    big = presets.PRESETS["31B"]
    assert big.family == "L" and big.context_length == 262144
    args = big.engine_args(max_model_len=100_000, gpu_memory_utilization=None)
    assert args["max_model_len"] == 100_000 and args["language_model_only"] is True
    assert args["gpu_memory_utilization"] == big.gpu_memory_utilization
    assert "limit_mm_per_prompt" in e4b.engine_args(media=True)
    with pytest.raises(ConfigError, match="exceeds"):
        e4b.engine_args(max_model_len=10**6)


def test_parallel_settings_are_validated() -> None:
    moe, dense = presets.PRESETS["26B-A4B"], presets.PRESETS["31B"]
    assert presets.validate_parallel(
        tensor_parallel_size=4, enable_expert_parallel=True, preset=moe
    ) == {"tensor_parallel_size": 4, "enable_expert_parallel": True}
    with pytest.raises(ConfigError, match="mixture-of-experts"):
        presets.validate_parallel(enable_expert_parallel=True, preset=dense)
    with pytest.raises(ConfigError, match=">= 1"):
        presets.validate_parallel(tensor_parallel_size=0)
    with pytest.raises(ConfigError, match="CUDA build"):
        presets.validate_parallel(tensor_parallel_size=2, cpu=True)
    with pytest.raises(ConfigError, match="one of"):
        presets.validate_parallel(distributed_executor_backend="mpi")


def test_print_presets(capsys) -> None:
    presets.print_presets()
    out = capsys.readouterr().out
    assert "google/gemma-4-26B-A4B-it" in out and "256K" in out and "tiny" in out


def test_resolve_model(tiny_model_path: Path, tmp_path: Path) -> None:
    r = factory.resolve_model(None, cpu=True)
    assert r.name == "tiny" and r.variant == "tiny" and r.banner and "noise" in r.banner
    assert Path(r.model) == tiny_model_path
    g = factory.resolve_model(None, cpu=False)
    assert g.model == "google/gemma-4-E4B-it" and g.banner is None
    assert factory.resolve_model("31B").variant == "31B"
    with pytest.raises(ConfigError, match="--variant"):
        factory.resolve_model(str(tiny_model_path))  # our template is not an official one
    assert factory.resolve_model(str(tiny_model_path), variant="E2B").variant == "E2B"
    with pytest.raises(ConfigError, match="unknown model"):
        factory.resolve_model("nonsense")
    with pytest.raises(ConfigError, match="--variant"):
        factory.resolve_model("someone/finetune")


def test_local_checkpoint_family_by_template_hash(tmp_path: Path, monkeypatch) -> None:
    import hashlib

    from gemma_agent.prompts import render

    text = "{{ bos_token }}a stand-in for the official large-model template"
    (tmp_path / "chat_template.jinja").write_text(text)
    with pytest.raises(ConfigError, match="--variant"):
        factory.resolve_model(str(tmp_path))
    # The official bytes are not shipped: register the stand-in's hash as family L.
    monkeypatch.setitem(render.TEMPLATE_HASHES, hashlib.sha256(text.encode()).hexdigest(), "L")
    assert factory.resolve_model(str(tmp_path)).variant == "31B"
    assert factory.resolve_model(str(tmp_path), variant="12B").variant == "12B"  # override
    # A template embedded in tokenizer_config.json (third-party repos) is hashed too.
    (tmp_path / "chat_template.jinja").unlink()
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": text}))
    assert factory.resolve_model(str(tmp_path)).variant == "31B"


async def test_factory_errors_are_actionable() -> None:
    with pytest.raises(ConfigError, match="--base-url"):
        await factory.create_engine(factory.EngineConfig(engine="http"))
    with pytest.raises(ConfigError, match="CUDA build"):
        await factory.create_engine(
            factory.EngineConfig(model="tiny", tensor_parallel_size=2, quiet=True)
        )


def test_cli_flags_parse_into_a_config() -> None:
    from gemma_agent.cli import add_engine_arguments

    p = argparse.ArgumentParser()
    add_engine_arguments(p)
    ns = p.parse_args(
        [
            "--model",
            "31B",
            "--base-url",
            "http://a",
            "--base-url",
            "http://b",
            "--no-grammar",
            "--tensor-parallel-size",
            "2",
            "--distributed-executor-backend",
            "ray",
        ]
    )
    cfg = factory.EngineConfig.from_namespace(ns)
    assert cfg.model == "31B" and cfg.base_url == ["http://a", "http://b"]
    assert cfg.grammar is False and cfg.tensor_parallel_size == 2
    assert factory.EngineConfig.from_namespace(p.parse_args([])) == factory.EngineConfig()
