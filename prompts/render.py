"""Render Gemma 4 prompts: byte-exact chat rendering, safe tokenization, tool-round continuations.

The templates in ``templates/`` are rendered with the same Jinja settings as
``transformers.apply_chat_template`` (docs/format.md, 'Jinja settings'): an
``ImmutableSandboxedEnvironment`` with ``trim_blocks``, ``lstrip_blocks`` and ``loopcontrols``.
Input is preprocessed as transformers does it (objects to plain data, top-level ``None`` keys
dropped, reasoning aliases).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import ConfigError, RenderError
from . import tokens as T
from .tokens import Tokenizer

Family = Literal["L", "S"]

TEMPLATE_DIR = Path(__file__).parent / "templates"

# SHA-256 of the official chat_template.jinja files (docs/format.md, 'Template identification').
TEMPLATE_HASHES: dict[str, Family] = {
    "ae53464bf3be25802b3a5b37def7fd89667067d7577049b3b2d74c4d8de4c6d4": "L",
    "0a2c8073c878ab1da004bee933a998606537bbb62016310352c7285c3f01c5b5": "S",
}

_SMALL = {"e2b", "e4b", "tiny"}
_LARGE = {"12b", "26b", "31b"}
VALID_VARIANTS = ("E2B", "E4B", "12B", "26B-A4B", "31B", "tiny")


def template_family(variant: str) -> Family:
    """The template family of a checkpoint: "S" for E2B/E4B (and "tiny"), "L" for 12B/26B-A4B/31B.

    Accepts short names ("E4B", "26B-A4B") and model ids ("google/gemma-4-E4B-it").
    """
    if not isinstance(variant, str) or not variant.strip():
        raise ConfigError(
            f"unknown Gemma 4 variant {variant!r}; use one of {', '.join(VALID_VARIANTS)}"
        )
    words = set(re.split(r"[-_/ .:]+", variant.strip().lower()))
    small, large = bool(words & _SMALL), bool(words & _LARGE)
    if small != large:
        return "S" if small else "L"
    raise ConfigError(
        f"unknown Gemma 4 variant {variant!r}: cannot tell the chat template family; use one of "
        f"{', '.join(VALID_VARIANTS)} (or a model id such as google/gemma-4-E4B-it)"
    )


def family_from_template(template_text: str) -> Family | None:
    """Identify an official Gemma 4 chat template by its SHA-256; None if unknown."""
    digest = hashlib.sha256(template_text.encode("utf-8")).hexdigest()
    return TEMPLATE_HASHES.get(digest)


# ---------------------------------------------------------------------------------------------
# Jinja environment (docs/format.md, 'Jinja settings')


class _TemplateRaised(Exception):
    """raise_exception() inside our templates."""


def _raise_exception(message: str) -> None:
    raise _TemplateRaised(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:  # fmt: skip
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)  # fmt: skip


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[jinja2.ext.loopcontrols],
        autoescape=False,
    )
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = dict
    env.filters["tojson"] = _tojson
    return env


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


# ---------------------------------------------------------------------------------------------
# Input preprocessing (as transformers does it)


def _plain(x: Any) -> Any:
    """Objects to plain dict/list/str/int/float/bool/None."""
    if x is None or isinstance(x, str | bool | int | float):
        return x
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    dump = getattr(x, "model_dump", None)
    if callable(dump):
        return _plain(dump())
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _plain(dataclasses.asdict(x))
    return x


def _typed_message(m: Any) -> list[dict[str, Any]] | None:
    """The agent's typed messages (UserMessage, ModelTurn, SummaryMessage) as chat dicts.

    Duck-typed so that prompts/ does not import agent/. A ModelTurn with text and calls becomes
    two assistant messages (text first) so generation order survives (docs/format.md, 'Placement
    within a model turn'); its results become native ``tool_responses`` (any JSON value renders;
    mappings render natively), or,
    when a result carries attachments, ``role: "tool"`` messages whose media placeholders follow
    ``<tool_response|>`` (see :func:`_media_tool_message`).
    """
    role = getattr(m, "role", None)
    if isinstance(m, Mapping) or not isinstance(role, str):
        return None
    if role == "user" and hasattr(m, "content"):
        attachments = getattr(m, "attachments", ()) or ()
        if not attachments:
            return [{"role": "user", "content": m.content}]
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}]
        parts += [{"type": getattr(a, "kind", "image")} for a in attachments]
        return [{"role": "user", "content": parts}]
    if role == "summary" and hasattr(m, "content"):
        return [{"role": "user", "content": m.content}]
    if role == "model" and hasattr(m, "tool_calls"):
        text = getattr(m, "text", "") or ""
        reasoning = getattr(m, "reasoning", None)
        calls = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": _plain(c.arguments)},
            }
            for c in m.tool_calls
        ]
        tool_results = tuple(getattr(m, "tool_results", ()))
        with_media = any(getattr(r, "attachments", ()) for r in tool_results)
        results = (
            []
            if with_media
            else [{"name": r.name, "response": _plain(r.content)} for r in tool_results]
        )
        if not calls:
            out: dict[str, Any] = {"role": "assistant", "content": text}
            if reasoning:
                out["reasoning"] = reasoning
            return [out]
        msgs: list[dict[str, Any]] = []
        if text:
            msgs.append({"role": "assistant", "content": text})
        call_msg: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
        if results:
            call_msg["tool_responses"] = results
        (msgs[0] if msgs else call_msg)["reasoning"] = reasoning
        msgs.append(call_msg)
        out_msgs = [{k: v for k, v in x.items() if v is not None} for x in msgs]
        if with_media:
            out_msgs += [_media_tool_message(r) for r in tool_results]
        return out_msgs
    return None


def _media_tool_message(result: Any) -> dict[str, Any]:
    """A tool result as an OpenAI ``role: "tool"`` message: the only shape in which the template
    renders media, placeholders after ``<tool_response|>`` (docs/format.md, 'Tool responses').

    Used for every result of a turn where some result has attachments (native
    ``tool_responses`` would make the template drop the tool messages). Strings, numbers,
    booleans and None render byte-identically to the native shape; a mapping or list (which
    this shape cannot carry: a dict crashes the template, and a list reads as content
    parts) renders as its JSON text, ``value:<|"|>{...}<|"|>``.
    """
    content = _plain(result.content)
    if not (content is None or isinstance(content, str | int | float | bool)):
        content = json.dumps(content, ensure_ascii=False)
    attachments = getattr(result, "attachments", ()) or ()
    if attachments:
        parts: list[dict[str, Any]] = []
        if content is not None:
            text = content if isinstance(content, str) else json.dumps(content)
            parts.append({"type": "text", "text": text})
        parts += [{"type": getattr(a, "kind", "image")} for a in attachments]
        content = parts
    return {
        "role": "tool",
        "tool_call_id": result.call_id,
        "name": result.name,
        "content": content,
    }


def history_to_dicts(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """Messages (dicts, pydantic models, the agent's typed messages) as plain chat dicts."""
    out: list[dict[str, Any]] = []
    for index, m in enumerate(messages):
        typed = _typed_message(m)
        items = typed if typed is not None else [_plain(m)]
        for item in items:
            if not isinstance(item, dict):
                raise RenderError(
                    f"message {index} is a {type(item).__name__}, not a mapping: pass messages as "
                    'dicts such as {"role": "user", "content": "..."}'
                )
            msg = {k: v for k, v in item.items() if v is not None}
            # HF reasoning aliasing: first non-None of reasoning_content, thinking, reasoning.
            for key in ("reasoning_content", "thinking", "reasoning"):
                if item.get(key) is not None:
                    msg["reasoning_content"] = item[key]
                    msg.setdefault("thinking", item[key])
                    break
            out.append(msg)
    return out


def _tools_list(tools: Any) -> list[Any] | None:
    if tools is None:
        return None
    result = []
    for t in tools:
        decl = getattr(t, "declaration", None)
        result.append(_plain(decl() if callable(decl) else t))
    return result


# ---------------------------------------------------------------------------------------------
# render_chat


def _render(template: str, **context: Any) -> str:
    try:
        return _template(template).render(**context)
    except _TemplateRaised as e:
        raise RenderError(str(e)) from None
    except RenderError:
        raise
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
        raise RenderError(
            f"the Gemma 4 chat template cannot render these messages/tools ({type(e).__name__}: "
            f"{e}); check that messages and tools are OpenAI-style dicts (tool declarations as "
            '{"type": "function", "function": {"name", "description", "parameters"}})'
        ) from e


def render_chat(
    messages: Sequence[Any],
    tools: Sequence[Any] | None = None,
    *,
    variant: str = "31B",
    enable_thinking: bool = False,
    add_generation_prompt: bool = True,
    preserve_thinking: bool = False,
) -> str:
    """Render a conversation exactly as the official Gemma 4 chat template does.

    ``messages``/``tools`` take the input of ``tokenizer.apply_chat_template`` (OpenAI-style
    dicts, Gemma extras ``reasoning`` and ``tool_responses``, multimodal content parts) and the
    agent's typed messages. ``variant`` selects the template family (docs/format.md, 'Template
    families'). Raises :class:`RenderError` where the official template raises, naming the message
    and the fix.
    """
    family = template_family(variant)
    return _render_family(
        history_to_dicts(messages),
        _tools_list(tools),
        family=family,
        enable_thinking=enable_thinking,
        add_generation_prompt=add_generation_prompt,
        preserve_thinking=preserve_thinking,
    )


def _render_family(
    messages: list[dict[str, Any]],
    tools: list[Any] | None,
    *,
    family: Family,
    enable_thinking: bool,
    add_generation_prompt: bool,
    preserve_thinking: bool,
) -> str:
    return _render(
        "gemma4_chat.jinja",
        messages=messages,
        tools=tools,
        documents=None,
        bos_token=T.BOS,
        eos_token=T.EOS,
        pad_token=T.PAD,
        add_generation_prompt=add_generation_prompt,
        enable_thinking=enable_thinking,
        preserve_thinking=preserve_thinking,
        family=family,
    )


# ---------------------------------------------------------------------------------------------
# Safe tokenization (docs/format.md, 'Tokenization')

_MARKERS = sorted(T.CONTROL_TOKENS, key=len, reverse=True)
_MARKER_RE = re.compile("|".join(re.escape(m) for m in _MARKERS))
# Candidate sentinel blocks (private use areas); the first one absent from the input is used.
_SENTINEL_BASES = (0xF0000, 0x100000, 0xE000, 0xF8000)


class _Protector:
    """Swaps control strings in payload text for private-use sentinels and back."""

    def __init__(self, strings: list[str]) -> None:
        self.base: int | None = None
        for base in _SENTINEL_BASES:
            block = re.compile(f"[{chr(base)}-{chr(base + len(_MARKERS) - 1)}]")
            if not any(block.search(s) for s in strings):
                self.base = base
                break
        if self.base is not None:
            self._to = {m: chr(self.base + i) for i, m in enumerate(_MARKERS)}
            self._back = {chr(self.base + i): m for i, m in enumerate(_MARKERS)}
            self._back_re = re.compile(f"[{chr(self.base)}-{chr(self.base + len(_MARKERS) - 1)}]")

    def protect(self, s: str) -> str:
        if self.base is None or "<" not in s:
            return s
        return _MARKER_RE.sub(lambda mo: self._to[mo.group(0)], s)

    def restore(self, s: str) -> str:
        if self.base is None:
            return s
        return self._back_re.sub(lambda mo: self._back[mo.group(0)], s)


def _strings(x: Any, out: list[str]) -> None:
    if isinstance(x, str):
        out.append(x)
    elif isinstance(x, Mapping):
        for v in x.values():
            _strings(v, out)
    elif isinstance(x, list):
        for v in x:
            _strings(v, out)


def _protect(x: Any, p: _Protector) -> Any:
    """Protect every string value (dict keys stay as they are, like HF)."""
    if isinstance(x, str):
        return p.protect(x)
    if isinstance(x, Mapping):
        return {k: _protect(v, p) for k, v in x.items()}
    if isinstance(x, list):
        return [_protect(v, p) for v in x]
    return x


def _strip_thoughts(text: str) -> str:
    """Model text without inline thought blocks, trimmed (the template's strip_thoughts macro)."""
    return "".join(piece.split(T.CHANNEL_OPEN)[0] for piece in text.split(T.CHANNEL_CLOSE)).strip()


def _prestrip_model_content(messages: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    """Remove inline thought blocks before protecting, so that protected thought markers are still
    removed."""
    out = []
    for i, m in enumerate(messages):
        if i >= offset and m.get("role") in ("assistant", "model"):
            content = m.get("content")
            if isinstance(content, str):
                m = {**m, "content": _strip_thoughts(content)}
            elif isinstance(content, list):
                parts = [
                    {**p, "text": _strip_thoughts(p["text"])}
                    if isinstance(p, Mapping)
                    and p.get("type") == "text"
                    and isinstance(p.get("text"), str)
                    else p
                    for p in content
                ]
                m = {**m, "content": parts}
        out.append(m)
    return out


def _encode_rendered(text: str, tokenizer: Tokenizer, protector: _Protector) -> list[int]:
    """Split on the template's control strings; payload runs are tokenized as plain text."""
    ids: list[int] = []
    pos = 0
    for mo in _MARKER_RE.finditer(text):
        if mo.start() > pos:
            ids += tokenizer.encode_text(protector.restore(text[pos : mo.start()]))
        ids.append(tokenizer.control_id(mo.group(0)))
        pos = mo.end()
    if pos < len(text):
        ids += tokenizer.encode_text(protector.restore(text[pos:]))
    return ids


def render_ids(
    messages: Sequence[Any],
    tools: Sequence[Any] | None,
    tokenizer: Tokenizer,
    *,
    variant: str,
    enable_thinking: bool = False,
    add_generation_prompt: bool = True,
    preserve_thinking: bool = False,
) -> list[int]:
    """Token ids of :func:`render_chat`, tokenized safely (docs/format.md, 'Tokenization').

    Control tokens written by the template become their ids; control strings inside payload
    (user text, tool results, arguments, descriptions) stay ordinary text. Without control strings
    in payload the ids equal ``tokenizer.encode(render_chat(...))``. Starts with one BOS.
    """
    family = template_family(variant)
    msgs = history_to_dicts(messages)
    tool_list = _tools_list(tools)
    offset = 1 if msgs and msgs[0].get("role") in ("system", "developer") else 0
    msgs = _prestrip_model_content(msgs, offset)
    found: list[str] = []
    _strings(msgs, found)
    _strings(tool_list, found)
    protector = _Protector(found)
    text = _render_family(
        _protect(msgs, protector),
        _protect(tool_list, protector),
        family=family,
        enable_thinking=enable_thinking,
        add_generation_prompt=add_generation_prompt,
        preserve_thinking=preserve_thinking,
    )
    ids = _encode_rendered(text, tokenizer, protector)
    bos = tokenizer.control_id(T.BOS)
    if not ids or ids[0] != bos or bos in ids[1:]:
        raise RenderError(
            "the rendered prompt must start with exactly one <bos>"
        )  # pragma: no cover
    return ids


# ---------------------------------------------------------------------------------------------
# Tool-round continuation (docs/format.md, 'Exact appends and the prefix cache')


def _responses(responses: Sequence[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "response": _plain(value)} for name, value in responses]


def render_tool_responses(responses: Sequence[tuple[str, Any]], *, enable_thinking: bool) -> str:
    """The text appended after a generated tool round, without the first ``<|tool_response>``.

    ``"response:NAME{...}<tool_response|>" + "<|tool_response>response:...<tool_response|>"...``
    plus ``"<|channel>thought\\n"`` when thinking is on. A mapping result renders natively
    (sorted keys); anything else as ``{value:...}``. The blocks are byte-identical to what
    :func:`render_chat` writes for the same results given as native ``tool_responses``.

    Where appending coincides with a full re-render: ``render_chat(history + [assistant with
    tool_calls], ...)`` ends with ``<|tool_response>`` (calls waiting for results); appending this
    string gives exactly ``render_chat`` of the same history with those calls' ``tool_responses``
    and empty content (a tool round), in both families and both thinking modes. In the live loop the
    generated ids stand in for the canonical call rendering, and the two differ (docs/format.md,
    'Re-rendering differences') when: the family-L thinking-off prefill
    ``<|channel>thought\\n<channel|>`` precedes the generated calls (it is not part of the canonical
    history); the model's argument text is not canonical (key order, number formatting, bare values,
    spaces); the generated reasoning is not ``R\\n<channel|>``; text was written before the calls
    (re-rendered after the results); or the model ended the round with ``<turn|>``/``<eos>`` instead
    of ``<|tool_response>`` (the tail is fixed).
    """
    if not responses:
        raise ConfigError("render_tool_responses needs at least one (name, result) pair")
    return _render(
        "gemma4_tool_responses.jinja",
        responses=_responses(responses),
        enable_thinking=enable_thinking,
    )


def tokenize_tool_responses(
    responses: Sequence[tuple[str, Any]], tokenizer: Tokenizer, *, enable_thinking: bool
) -> list[int]:
    """Ids of :func:`render_tool_responses`, tokenized safely (payload via ``encode_text``)."""
    items = _responses(responses)
    found: list[str] = []
    _strings(items, found)
    protector = _Protector(found)
    if not items:
        raise ConfigError("tokenize_tool_responses needs at least one (name, result) pair")
    text = _render(
        "gemma4_tool_responses.jinja",
        responses=_protect(items, protector),
        enable_thinking=enable_thinking,
    )
    return _encode_rendered(text, tokenizer, protector)


# The contract's name for the same helper.
tokenize_continuation = tokenize_tool_responses
