"""Parse Gemma 4 model output: reasoning, content and tool calls, whole or streamed.

One state machine (docs/format.md, 'Streaming parser') serves both entry points:
:func:`parse_output` feeds it the whole text, :class:`StreamParser` feeds it deltas (text, or token
ids so that control tokens are recognised by id). Every decision depends only on the output seen so
far, never on how it was split, so ``StreamParser.finish()`` equals ``parse_output`` of the whole
text for every split point. Work is linear in the output: a delta is scanned once (control markers,
and brackets only outside strings), and each call is parsed once when it ends (by
``arguments.py``: the argument syntax reader and the schema coercion).

Robustness (docs/format.md, 'Parser robustness'): empty/ghost thought blocks, labels, stray markers,
missing ``call:`` or a stray colon before it, parentheses, calls ended by ``<turn|>``/``<eos>``/end
of output, truncation (incomplete calls are flagged; a call cut off before its arguments, whose
name may be partial, is no call but ``ParsedOutput.call_cut_off``), bare values and unions (a value
stays in the first alternative it fits), whitespace, quoted keys, duplicate keys, unknown tools and
schema mismatches (reported in ``ParsedToolCall.error``). Nothing here raises on model output.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import tokens as T
from .arguments import OPENER_RE, read_call, split_name, tool_schemas
from .tokens import Tokenizer

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Results and events


@dataclass(frozen=True, slots=True)
class ParsedToolCall:
    """One tool call. ``complete`` is False when its body was cut off (never execute it);
    ``error`` says why the arguments could not be parsed or coerced (send it back to the model).
    ``raw`` is the call text as generated (``call:NAME{...}``)."""

    name: str
    arguments: dict[str, Any]
    complete: bool
    raw: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """The authoritative parse of one generation.

    ``stop`` is the stop marker seen (``<turn|>``, ``<|tool_response>``, ``<eos>``, ``<|turn>``)
    or None when the output just ended (cut off, or a text without its stop token).
    ``complete`` is False when the output was cut off inside a call or (without a stop marker)
    inside the reasoning. ``reasoning_as_content``: the answer was written inside a never-closed
    thought channel and is exposed as ``content`` too (robustness case 18). ``call_cut_off``: the
    output ended inside a tool call before its arguments began, so even its name may be partial
    (``<|tool_call>cal``): that call is not in ``tool_calls``, and ``complete`` is False.
    """

    reasoning: str | None
    content: str
    tool_calls: list[ParsedToolCall] = field(default_factory=list)
    complete: bool = True
    stop: str | None = None
    reasoning_as_content: bool = False
    call_cut_off: bool = False


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallArgsDelta:
    """Raw argument text as generated (Gemma syntax, strings delimited by ``<|"|>``);
    provisional, for display. The parsed arguments arrive in :class:`ToolCallEnd`."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    index: int
    call: ParsedToolCall


ParseEvent = ReasoningDelta | ContentDelta | ToolCallStart | ToolCallArgsDelta | ToolCallEnd


def _coalesce(events: list[ParseEvent]) -> list[ParseEvent]:
    """Merge adjacent text deltas of the same kind (and call) produced by one feed: a feed
    yields at most one delta per run, however many tokens or markers it held."""
    if len(events) < 2:
        return events
    out: list[ParseEvent] = []
    texts: list[str] = []
    key: tuple[type, int] | None = None
    for event in events:
        kind = type(event)
        this: tuple[type, int] | None
        if kind is ToolCallArgsDelta:
            this = (kind, event.index)  # type: ignore[union-attr]
        elif kind is ContentDelta or kind is ReasoningDelta:
            this = (kind, 0)
        else:
            this = None
        if this is not None and this == key:
            texts.append(event.text)  # type: ignore[union-attr]
            continue
        if len(texts) > 1:
            out[-1] = _with_text(out[-1], "".join(texts))
        texts = [event.text] if this is not None else []  # type: ignore[union-attr]
        key = this
        out.append(event)
    if len(texts) > 1:
        out[-1] = _with_text(out[-1], "".join(texts))
    return out


def _with_text(event: ParseEvent, text: str) -> ParseEvent:
    if isinstance(event, ToolCallArgsDelta):
        return ToolCallArgsDelta(event.index, text)
    if isinstance(event, ContentDelta):
        return ContentDelta(text)
    return ReasoningDelta(text)


_new_object = object.__new__
_set_index = ToolCallArgsDelta.__dict__["index"].__set__  # the slot descriptors
_set_text = ToolCallArgsDelta.__dict__["text"].__set__

# ---------------------------------------------------------------------------------------------
# Lexing constants

_ALL_MARKERS = sorted(T.CONTROL_TOKENS, key=len, reverse=True)
_MARKER_RE = re.compile("|".join(re.escape(m) for m in _ALL_MARKERS))
_MAX_MARKER = max(len(m) for m in _ALL_MARKERS)
_PARTIAL = frozenset(m[:i] for m in _ALL_MARKERS for i in range(1, len(m)))
_MARKER_SET = frozenset(_ALL_MARKERS)
_CACHE_MAX = 4096  # distinct delta texts whose events are reused, per kind
_CACHE_TEXT = 48  # only texts up to this length (tokens) are looked up
_STOPS = frozenset({T.TURN_CLOSE, T.EOS, T.TOOL_RESPONSE_OPEN, T.TURN_OPEN})
_LABEL = "thought\n"

_OPENERS = frozenset("{(")
_BRACKETS = frozenset("{}[]()")
_BRACKET_RE = re.compile(r"[{}\[\]()]")
_PLAIN_CALL_RE = re.compile(r"(?:<call>|(?<![\w])call:)\s*([A-Za-z_][\w.\-]*)\s*(?=[{(])")

_CONTENT, _REASONING, _CALL, _DONE = 0, 1, 2, 3

_TextEvent = TypeVar("_TextEvent", ContentDelta, ReasoningDelta)


def _text_event(cache: dict[str, _TextEvent], kind: type[_TextEvent], text: str) -> _TextEvent:
    """The event for a content or reasoning delta, reused from ``cache`` when the text recurs."""
    if len(text) > _CACHE_TEXT:
        return kind(text)
    event = cache.get(text)
    if event is None:
        event = kind(text)
        if len(cache) < _CACHE_MAX:
            cache[text] = event
    return event


# ---------------------------------------------------------------------------------------------
# The state machine


def _finish_call(
    runs: list[str], raw: str, schemas: dict[str, dict[str, Any]] | None
) -> ParsedToolCall:
    name, arguments, closed, error = read_call(runs, schemas)
    return ParsedToolCall(name, arguments, closed, raw, error)


class _Call:
    """A tool call being parsed: its text as runs split at the string delimiters (odd runs are
    string contents; the first run starts with the name), its bracket depth, and the argument
    events it emitted."""

    __slots__ = ("closed", "depth", "events", "in_str", "index", "opened", "run", "runs", "started")

    def __init__(self, index: int) -> None:
        self.index = index
        self.run: list[str] = []  # the current run (string contents when in_str)
        self.runs: list[list[str]] = [self.run]
        self.in_str = False
        self.opened = False
        self.closed = False
        self.depth = 0
        self.started = False
        # Events are immutable values: one per distinct delta text is reused (tokens recur).
        self.events: dict[str, ToolCallArgsDelta] = {}

    def event(self, text: str) -> ToolCallArgsDelta:
        """The argument delta for ``text``, reused when the text recurs in this call."""
        if len(text) > _CACHE_TEXT:  # a long text (a whole-text feed) rarely recurs: no hashing
            return ToolCallArgsDelta(self.index, text)
        event = self.events.get(text)
        return event if event is not None else self.new_event(text)

    def new_event(self, text: str) -> ToolCallArgsDelta:
        """A new argument delta (after a miss in ``events``), kept for reuse while there is
        room."""
        event = _new_object(ToolCallArgsDelta)  # as ToolCallArgsDelta(index, text), faster
        _set_index(event, self.index)
        _set_text(event, text)
        if len(self.events) < _CACHE_MAX:
            self.events[text] = event
        return event

    def count_brackets(self, text: str, start: int = 0) -> None:
        """Follow the bracket depth of argument syntax over ``text[start:]``: the arguments
        are closed when it returns to 0 (brackets after that are not counted)."""
        depth = self.depth
        if len(text) - start < 16:  # a token: a plain loop beats setting up a regex scan
            for ch in text[start:] if start else text:
                if ch in "{[(":
                    depth += 1
                elif ch in "}])":
                    depth -= 1
                    if depth == 0:
                        self.closed = True
                        break
        else:
            for mo in _BRACKET_RE.finditer(text, start):
                if mo.group(0) in "{[(":
                    depth += 1
                else:
                    depth -= 1
                    if depth == 0:
                        self.closed = True
                        break
        self.depth = depth


def _markers_by_id(tokenizer: Tokenizer) -> dict[int, str]:
    """id -> control marker, so that classifying a token is one dict lookup."""
    markers: dict[int, str] = {}
    for marker in T.CONTROL_TOKENS:
        try:
            token_id = tokenizer.control_id(marker)
        except (KeyError, ValueError):
            continue  # e.g. a text-only tokenizer without the media markers
        if tokenizer.control_marker(token_id) == marker:
            markers[token_id] = marker
    return markers


def _initial_mode(prompt_tail: str) -> int:
    """The start state: REASONING iff the last of these markers in the prompt is ``<|channel>``."""
    opened = prompt_tail.rfind(T.CHANNEL_OPEN)
    if opened < 0:
        return _CONTENT
    others = (T.CHANNEL_CLOSE, T.TOOL_CALL_OPEN, T.TURN_OPEN, T.TOOL_RESPONSE_OPEN)
    return _REASONING if opened > max(prompt_tail.rfind(m) for m in others) else _CONTENT


class StreamParser:
    """Incremental Gemma 4 output parser (one instance per request).

    ``feed_text`` recognises control tokens by string (a marker split across deltas is held
    back); ``feed_ids`` by id (needs ``tokenizer``; ordinary ids are decoded incrementally).
    Both return the events the delta completes, adjacent deltas of one kind (and call) merged
    into one event per feed; immutable events are reused for recurring token texts. Joined, the
    reasoning/content deltas are the final ``reasoning``/``content`` (except where the end
    re-labels text: robustness cases 4, a stray ``<channel|>``; 18, reasoning exposed as content;
    11, plain-text calls), and a call's argument deltas are its raw text from the opening bracket.
    :meth:`flush` returns the events the end of the output completes (held-back text, a call
    cut off). :meth:`finish` returns the authoritative
    :class:`ParsedOutput`, equal to ``parse_output`` of the whole output. ``prompt_tail`` (text,
    or ``prompt_tail_ids`` with a tokenizer) sets the initial state: a prompt ending in an
    open ``<|channel>thought\\n`` starts in reasoning. ``thinking``: enable_thinking of the
    request (a bare leading ``thought\\n`` then opens reasoning, robustness case 3).
    """

    def __init__(
        self,
        tools: Iterable[Any] | None = None,
        *,
        thinking: bool = False,
        prompt_tail: str = "",
        tokenizer: Tokenizer | None = None,
        prompt_tail_ids: Sequence[int] | None = None,
    ) -> None:
        self._schemas = tool_schemas(tools)
        self._thinking = thinking
        self._decoder = tokenizer.new_decoder() if tokenizer is not None else None
        self._markers_by_id = _markers_by_id(tokenizer) if tokenizer is not None else {}
        if prompt_tail_ids is not None:
            if tokenizer is None:
                raise ValueError("prompt_tail_ids needs a tokenizer")
            prompt_tail = "".join(
                m for m in (tokenizer.control_marker(i) for i in prompt_tail_ids[-64:]) if m
            )
        self._mode = _initial_mode(prompt_tail)
        self._pending = ""  # a partial marker held back (text mode)
        self._result: ParsedOutput | None = None
        self._final_events: list[ParseEvent] = []  # completed by finish(), for flush()
        self._stop: str | None = None
        self._structure = self._mode == _REASONING  # any channel/call seen (robustness case 4)
        # start of output in CONTENT: a bare "thought\n" label may be coming (case 3)
        self._start: str | None = "" if self._mode == _CONTENT else None
        # content
        self._content: list[str] = []
        self._c_started = False
        self._c_hold = ""
        self._stray_close: int | None = None  # chunks before it are reasoning (case 4)
        # reasoning: raw text of each thought segment
        self._segments: list[list[str]] = []
        self._label: str | None = None  # label buffer while the "thought\n" label is undecided
        self._r_hold = ""
        self._r_emitted = False  # this segment emitted text
        self._r_any = False  # an earlier segment emitted text
        self._open_reasoning_at_end = False
        if self._mode == _REASONING:
            self._begin_segment()
        # calls
        self._call: _Call | None = None
        self._calls: list[ParsedToolCall] = []
        self._call_cut_off = False  # the output ended in a call before its arguments
        # feed_text's fast path: the call whose string argument is open, nothing held back
        self._str_call: _Call | None = None
        # Events are immutable values: one per distinct delta text is reused (tokens recur).
        self._content_cache: dict[str, ContentDelta] = {}
        self._reasoning_cache: dict[str, ReasoningDelta] = {}

    # -- public ---------------------------------------------------------------------------

    def feed_text(self, text: str) -> list[ParseEvent]:
        if "<" not in text and text:  # no marker: the string state does not change
            call = self._str_call
            if call is not None:
                # The hottest path: a token inside a string argument (the bulk of tool-heavy
                # output): its text is kept and its event reused.
                call.run.append(text)
                event = call.events.get(text)
                return [event if event is not None else call.new_event(text)]
            if not self._pending:
                return self._plain(text)
        events = self._feed_markup(text)
        call = self._call
        self._str_call = call if call is not None and call.in_str and not self._pending else None
        return events

    def _feed_markup(self, text: str) -> list[ParseEvent]:
        call = self._call
        if text == T.STR and call is not None and call.opened and not self._pending:
            # the most common control token on its own: a string opens or closes
            call.in_str = not call.in_str
            call.run = []
            call.runs.append(call.run)
            return [call.event(text)]
        if self._mode == _DONE or not text:
            return []
        if self._pending or text not in _MARKER_SET:
            events = self._scan(text)
            return _coalesce(events) if len(events) > 1 else events
        # a control token on its own
        events = []
        self._marker(text, events)
        return _coalesce(events) if len(events) > 1 else events

    def _plain(self, text: str) -> list[ParseEvent]:
        """Feed non-empty text that holds no markers, with nothing held back."""
        # Fast paths for the common token: plain text in a steady state. Each returns at
        # most one event, reused from a small cache when the same text recurs (tokens do).
        call = self._call
        if call is not None:
            if call.opened:  # argument text: the bulk of tool-heavy output
                call.run.append(text)
                if not (call.in_str or call.closed or _BRACKETS.isdisjoint(text)):
                    call.count_brackets(text)
                event = call.events.get(text)
                return [event if event is not None else call.new_event(text)]
            if _OPENERS.isdisjoint(text):  # the name, before the opening bracket
                call.run.append(text)
                return []
            events: list[ParseEvent] = []
            self._call_text(text, events)
            return events
        elif self._mode == _CONTENT:
            if self._start is None and self._c_started:
                self._content.append(text)
                if self._c_hold:
                    text = self._c_hold + text
                kept = text.rstrip()
                self._c_hold = text[len(kept) :]
                if not kept:
                    return []
                cache = self._content_cache
                content = cache.get(kept)
                return [content if content is not None else _text_event(cache, ContentDelta, kept)]
        elif self._mode == _REASONING:
            if self._label is None and self._r_emitted:
                self._segments[-1].append(text)
                if self._r_hold:
                    text = self._r_hold + text
                if text[-1] == "\n":  # one trailing newline belongs to the layout
                    self._r_hold = "\n"
                    text = text[:-1]
                else:
                    self._r_hold = ""
                if not text:
                    return []
                r_cache = self._reasoning_cache
                reasoning = r_cache.get(text)
                return [
                    reasoning
                    if reasoning is not None
                    else _text_event(r_cache, ReasoningDelta, text)
                ]
        elif self._mode == _DONE:
            return []
        events = []
        self._text(text, events)
        return events

    def _scan(self, text: str) -> list[ParseEvent]:
        """Feed text that may hold markers (the general path: a marker split across deltas is
        held back in ``_pending``)."""
        events: list[ParseEvent] = []
        if self._pending:
            text = self._pending + text
            self._pending = ""
        pos = 0
        for mo in _MARKER_RE.finditer(text):
            if mo.start() > pos:
                self._text(text[pos : mo.start()], events)
            self._marker(mo.group(0), events)
            if self._mode == _DONE:
                return events
            pos = mo.end()
        lt = text.rfind("<", max(pos, len(text) - _MAX_MARKER + 1))
        if lt >= 0 and text[lt:] in _PARTIAL:
            self._pending = text[lt:]
            end = lt
        else:
            end = len(text)
        if end > pos:
            self._text(text[pos:end], events)
        return events

    def feed_ids(self, ids: Iterable[int]) -> list[ParseEvent]:
        decoder = self._decoder
        if decoder is None:
            raise ValueError("feed_ids needs StreamParser(tokenizer=...)")
        if self._mode == _DONE:
            return []
        events: list[ParseEvent] = []
        if self._pending:
            pending, self._pending = self._pending, ""
            self._text(pending, events)
        markers = self._markers_by_id
        step = decoder.step
        buf: list[str] = []
        for token_id in ids:
            marker = markers.get(token_id)
            if marker is None:
                piece = step(token_id)
                if piece:
                    buf.append(piece)
                continue
            if buf:
                self._text("".join(buf), events)
                buf = []
            self._marker(marker, events)
            if self._mode == _DONE:
                self._str_call = None
                return _coalesce(events)
        if buf:
            if events:
                self._text("".join(buf), events)
            else:  # the common case: a token or a run of text tokens
                events = self._plain("".join(buf))
        self._str_call = None  # feed_text re-derives it from the state when needed
        return _coalesce(events) if len(events) > 1 else events

    def finish(self) -> ParsedOutput:
        """End the output (later feeds are ignored) and return the authoritative result.
        Idempotent. The events the end itself completes are kept for :meth:`flush`."""
        if self._result is None:
            events: list[ParseEvent] = []
            if self._pending:
                pending, self._pending = self._pending, ""
                self._text(pending, events)
            if self._mode != _DONE:
                self._end(None, events)
            self._str_call = None
            self._final_events = _coalesce(events)
            self._result = self._build()
        return self._result

    def flush(self) -> list[ParseEvent]:
        """End the output like :meth:`finish` and return the events its end completes: text
        held back as a possible marker, label or start (``"<tur"``, ``"thought"``), and the
        start/end of a call that was cut off. Call it when the stream ends without a stop
        marker, before or after ``finish()``; each event is returned once (then ``[]``)."""
        self.finish()
        events, self._final_events = self._final_events, []
        return events

    # -- dispatch ---------------------------------------------------------------------------

    def _text(self, text: str, events: list[ParseEvent]) -> None:
        mode = self._mode
        if mode == _CALL:
            self._call_text(text, events)
        elif mode == _REASONING:
            self._reasoning_text(text, events)
        elif mode == _CONTENT:
            if self._start is not None:
                self._start_text(text, events)
            else:
                self._content_text(text, events)

    def _marker(self, marker: str, events: list[ParseEvent]) -> None:
        mode = self._mode
        if mode == _DONE:
            return
        if self._start is not None:
            self._decide_start(events, final=True)
            mode = self._mode
        if marker in _STOPS:
            self._end(marker, events)
        elif mode == _CALL:
            self._call_marker(marker, events)
        elif mode == _REASONING:
            if marker == T.CHANNEL_CLOSE:
                self._end_segment(events)
                self._mode = _CONTENT
            elif marker == T.TOOL_CALL_OPEN:
                self._end_segment(events)
                self._begin_call()
            elif marker == T.STR:
                self._reasoning_text(marker, events)
            else:
                log.debug("dropped %s inside reasoning", marker)
        else:  # CONTENT
            if marker == T.CHANNEL_OPEN:
                self._structure = True
                self._mode = _REASONING
                self._begin_segment()
            elif marker == T.TOOL_CALL_OPEN:
                self._structure = True
                self._begin_call()
            elif marker == T.CHANNEL_CLOSE:
                if not self._structure:  # robustness case 4: the text so far was reasoning
                    self._structure = True
                    self._stray_close = len(self._content)
                log.debug("dropped a stray <channel|>")
            elif marker == T.STR:
                self._content_text(marker, events)
            else:
                log.debug("dropped %s in content", marker)

    def _end(self, stop: str | None, events: list[ParseEvent]) -> None:
        if self._start is not None:
            self._decide_start(events, final=True)
        if self._mode == _CALL:
            call = self._call
            if stop is None and call is not None and not call.opened:
                # Cut off before the arguments: the name may be partial. No call, no events
                # (its ToolCallStart is sent only at the opening bracket).
                self._call = None
                self._call_cut_off = True
            else:
                self._end_call(events)
        elif self._mode == _REASONING:
            self._open_reasoning_at_end = True
            self._end_segment(events)
        self._stop = stop
        self._mode = _DONE

    # -- start of output (robustness case 3) ----------------------------------------------------

    def _start_text(self, text: str, events: list[ParseEvent]) -> None:
        self._start = (self._start or "") + text
        self._decide_start(events, final=False)

    def _decide_start(self, events: list[ParseEvent], *, final: bool) -> None:
        buf = self._start or ""
        if not final and len(buf) < len(_LABEL) and _LABEL.startswith(buf):
            return  # still undecided
        self._start = None
        if buf.startswith(_LABEL):
            if self._thinking:
                self._structure = True
                self._mode = _REASONING
                self._begin_segment()
                self._reasoning_text(buf, events)  # the label is stripped there
                return
            buf = buf[len(_LABEL) :]
        if buf:
            self._content_text(buf, events)

    # -- content ------------------------------------------------------------------------------

    def _content_text(self, text: str, events: list[ParseEvent]) -> None:
        self._content.append(text)
        if not self._c_started:
            text = text.lstrip()
            if not text:
                return
            self._c_started = True
        if self._c_hold:
            text = self._c_hold + text
        kept = text.rstrip()
        self._c_hold = text[len(kept) :]
        if kept:
            events.append(_text_event(self._content_cache, ContentDelta, kept))

    # -- reasoning ----------------------------------------------------------------------------

    def _begin_segment(self) -> None:
        self._segments.append([])
        self._label = ""
        self._r_hold = ""
        if self._r_emitted:
            self._r_any = True
        self._r_emitted = False

    def _reasoning_text(self, text: str, events: list[ParseEvent]) -> None:
        self._segments[-1].append(text)
        if self._label is not None:
            buf = self._label + text
            if len(buf) < len(_LABEL) and _LABEL.startswith(buf):
                self._label = buf
                return
            self._label = None
            text = buf[len(_LABEL) :] if buf.startswith(_LABEL) else buf
        self._emit_reasoning(text, events)

    def _emit_reasoning(self, text: str, events: list[ParseEvent]) -> None:
        if self._r_hold:
            text = self._r_hold + text
        if text.endswith("\n"):  # one trailing newline belongs to the block's layout
            self._r_hold = "\n"
            text = text[:-1]
        else:
            self._r_hold = ""
        if text:
            if not self._r_emitted and self._r_any:
                text = "\n" + text
            self._r_emitted = True
            events.append(_text_event(self._reasoning_cache, ReasoningDelta, text))

    def _end_segment(self, events: list[ParseEvent]) -> None:
        label = self._label
        if label is not None:
            self._label = None
            if label and label != _LABEL.rstrip("\n"):
                self._emit_reasoning(label, events)

    # -- calls --------------------------------------------------------------------------------

    def _begin_call(self) -> None:
        self._call = _Call(len(self._calls))
        self._mode = _CALL

    def _call_text(self, text: str, events: list[ParseEvent]) -> None:
        call = self._call
        assert call is not None
        call.run.append(text)
        if call.opened:
            events.append(call.event(text))
            if not (call.in_str or call.closed or _BRACKETS.isdisjoint(text)):
                call.count_brackets(text)
            return
        mo = None if _OPENERS.isdisjoint(text) else OPENER_RE.search(text)
        if mo is None:
            return  # still the name, before the opening bracket
        call.opened = True
        call.depth = 1
        call.started = True
        head = "".join(call.run)  # the first run: all the call's text so far
        name = split_name(head[: len(head) - len(text) + mo.start()])
        events.append(ToolCallStart(call.index, name))
        events.append(call.event(text[mo.start() :]))
        if mo.end() < len(text):
            call.count_brackets(text, mo.end())

    def _call_marker(self, marker: str, events: list[ParseEvent]) -> None:
        call = self._call
        assert call is not None
        if marker == T.STR:
            if not call.opened:
                call.run.append(marker)  # part of the name (dropped there)
                return
            call.in_str = not call.in_str
            call.run = []
            call.runs.append(call.run)
            events.append(call.event(marker))
        elif marker == T.TOOL_CALL_CLOSE:
            self._end_call(events)
            self._mode = _CONTENT
        elif marker == T.TOOL_CALL_OPEN:
            self._end_call(events)
            self._begin_call()
        elif call.in_str and call.opened:
            self._call_text(marker, events)  # a marker inside a string value is its text
        elif marker == T.CHANNEL_OPEN and call.closed:
            self._end_call(events)  # the model forgot <tool_call|> and starts thinking
            self._mode = _CONTENT
            self._marker(marker, events)
        else:
            log.debug("dropped %s inside a tool call", marker)

    def _end_call(self, events: list[ParseEvent]) -> None:
        call = self._call
        assert call is not None
        self._call = None
        runs = ["".join(r) for r in call.runs]
        parsed = _finish_call(runs, T.STR.join(runs), self._schemas)
        if not call.started:
            events.append(ToolCallStart(call.index, parsed.name))
        events.append(ToolCallEnd(call.index, parsed))
        self._calls.append(parsed)

    # -- final result -------------------------------------------------------------------------

    def _build(self) -> ParsedOutput:
        segments = ["".join(s) for s in self._segments]
        content_chunks = self._content
        if self._stray_close is not None:
            segments.insert(0, "".join(content_chunks[: self._stray_close]))
            content_chunks = content_chunks[self._stray_close :]
        texts = [t for t in (_segment_text(s) for s in segments) if t]
        reasoning = "\n".join(texts) or None
        content = "".join(content_chunks).strip()
        calls = list(self._calls)
        if not calls and content and self._schemas:
            content, calls = _plain_text_calls(content, self._schemas)
        as_content = False
        if (
            self._open_reasoning_at_end
            and self._stop in (T.TURN_CLOSE, T.EOS, T.TURN_OPEN)
            and not content
            and not calls
            and reasoning
        ):
            content, as_content = reasoning, True  # robustness case 18
        complete = (
            all(c.complete for c in calls)
            and not (self._stop is None and self._open_reasoning_at_end)
            and not self._call_cut_off
        )
        return ParsedOutput(
            reasoning, content, calls, complete, self._stop, as_content, self._call_cut_off
        )


def _segment_text(raw: str) -> str:
    if raw.startswith(_LABEL):
        raw = raw[len(_LABEL) :]
    elif raw == _LABEL.rstrip("\n"):
        raw = ""
    return raw[:-1] if raw.endswith("\n") else raw


def _plain_text_calls(
    content: str, schemas: dict[str, dict[str, Any]]
) -> tuple[str, list[ParsedToolCall]]:
    """Robustness case 11: ``call:name{...}`` written as plain text, accepted for declared tools
    only."""
    calls: list[ParsedToolCall] = []
    kept: list[str] = []
    pos = 0
    for mo in _PLAIN_CALL_RE.finditer(content):
        if mo.start() < pos or mo.group(1) not in schemas:
            continue
        end = _matching_close(content, mo.end())
        if end is None:
            continue
        body = content[mo.start(1) : end]
        call = _finish_call(body.split(T.STR), content[mo.start() : end], schemas)
        if not call.complete:
            continue
        calls.append(call)
        kept.append(content[pos : mo.start()])
        pos = end
    if not calls:
        return content, calls
    kept.append(content[pos:])
    return "".join(kept).strip(), calls


def _matching_close(text: str, start: int) -> int | None:
    """Index after the closer matching the opener at ``start`` (strings are opaque)."""
    depth = 0
    in_str = False
    i = start
    n = len(text)
    while i < n:
        if text.startswith(T.STR, i):
            in_str = not in_str
            i += len(T.STR)
            continue
        ch = text[i]
        if not in_str:
            if ch in "{[(":
                depth += 1
            elif ch in "}])":
                depth -= 1
                if depth == 0:
                    return i + 1
        i += 1
    return None


def parse_output(
    text: str,
    tools: Iterable[Any] | None = None,
    *,
    thinking: bool = False,
    prompt_tail: str = "",
) -> ParsedOutput:
    """Parse a whole generation (control tokens recognised by string: for tests
    and offline tools; the live loop feeds ids to :class:`StreamParser`).

    Include the stop marker (``<turn|>``, ``<|tool_response>``…) to get ``stop``; vLLM's
    ``text`` leaves it out. ``tools`` (declarations or Tool objects) enable schema coercion of
    bare values and unknown-tool errors.
    """
    parser = StreamParser(tools, thinking=thinking, prompt_tail=prompt_tail)
    if text:
        parser._scan(text)  # the events are not needed: skip feed_text's merging
    return parser.finish()
