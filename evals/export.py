"""Training data from sessions and eval runs: exact token ids with a loss mask.

    from gemma_agent.evals.export import trajectories, write_export

    for record in trajectories(["eval-runs/repo-tasks"], only_passed=True):
        record["input_ids"], record["loss_mask"], record["reward"]

Every record is built from the ``step`` records of a session log (`gemma_agent.agent.read_steps`):
the prompt ids each engine request received and the ids it generated, never a re-render. The
loss mask is 1 exactly on ids the model generated (its thinking, text and tool calls) and 0 on
everything the engine was given (system turn, user turns, tool responses, the generation prompt,
a stop id the loop normalised). A trajectory whose prompts stop being exact appends of each
other (a compaction, or a new user message re-rendered with earlier reasoning dropped) is cut
into segments: the model never saw the two sides of such a boundary in one prompt.
See docs/training-data.md.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..agent import Step, read_steps, saved_model
from ..errors import ConfigError
from ..prompts import tokens as T
from ..prompts.tokens import ByteTokenizer, Tokenizer
from .results import RESULTS_NAME, SampleResult, read_results

Format = Literal["jsonl", "parquet"]
RewardHook = Callable[[dict[str, Any]], float | None]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet")
_LOCK = "eval.lock"


@dataclass(frozen=True, slots=True)
class Source:
    """One session log to export, with what is known of it (an eval result, the run config)."""

    path: Path
    result: SampleResult | None = None
    config: dict[str, Any] | None = None


def sources(paths: Iterable[str | os.PathLike[str]]) -> list[Source]:
    """The session logs behind each path: an eval output folder (its ``results.jsonl`` and
    trajectories), a folder of session logs, or one session log (``.jsonl``)."""
    found: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if (path / RESULTS_NAME).is_file():
            config = _eval_config(path)
            for r in sorted(read_results(path / RESULTS_NAME), key=lambda r: r.key):
                if r.trajectory and not r.infra and (path / r.trajectory).is_file():
                    found.append(Source(path / r.trajectory, r, config))
        elif path.is_dir():
            found += [Source(p) for p in sorted(path.glob("*.jsonl"))]
        elif path.is_file():
            found.append(Source(path))
        else:
            raise ConfigError(f"{path}: no such eval output folder, sessions folder or session log")
    return found


def _eval_config(out: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((out / _LOCK).read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def resolve_tokenizer(
    model: str | None, tokenizer: Tokenizer | str | os.PathLike[str] | None = None
) -> Tokenizer:
    """The tokenizer to decode a session's ids: the one given (an object, a model folder or a
    ``tokenizer.json``; ``"byte"`` for `ByteTokenizer`), else one found from the model name."""
    if tokenizer is not None and not isinstance(tokenizer, str | os.PathLike):
        return tokenizer
    if tokenizer is not None:
        if str(tokenizer) == "byte":
            return ByteTokenizer()
        return _hf(Path(tokenizer))
    if model in (None, "", "scripted"):
        return ByteTokenizer()  # ScriptedEngine's default
    if model in ("tiny", "tiny-mm"):
        from ..agent.engines.tiny import tiny_model_path

        return _hf(tiny_model_path(multimodal=model == "tiny-mm"))
    if Path(model).exists():
        return _hf(Path(model))
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "tokenizer.json")
    except Exception:  # no hub library, or a name that is not a repository id
        cached = None
    if isinstance(cached, str):
        return _hf(Path(cached))
    raise ConfigError(
        f"no tokenizer found for model {model!r}: pass --tokenizer PATH (a checkpoint folder "
        "or its tokenizer.json)"
    )


def _hf(path: Path) -> Tokenizer:
    from ..agent.engines.tokenizer import HFTokenizer

    return HFTokenizer(path)


def segments(steps: Sequence[Step]) -> list[list[Step]]:
    """Split a log's accepted steps where a prompt is not an exact append of the step before:
    the previous prompt and all of its output but a normalised stop id must lead it."""
    out: list[list[Step]] = []
    for s in steps:
        if out:
            prev = out[-1][-1]
            n = len(prev.prompt_ids)
            p = s.prompt_ids
            if (
                p[:n] == prev.prompt_ids
                and _shared(prev.output_ids, p[n:]) >= len(prev.output_ids) - 1
            ):
                out[-1].append(s)
                continue
        out.append([s])
    return out


def _shared(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def sequence(steps: Sequence[Step]) -> tuple[list[int], list[int]]:
    """The ids of a segment (its last prompt and output) and the mask of generated ids."""
    last = steps[-1]
    ids = [*last.prompt_ids, *last.output_ids]
    mask = [0] * len(ids)
    for s in steps:
        start = len(s.prompt_ids)
        n = _shared(s.output_ids, ids[start:])
        mask[start : start + n] = [1] * n
    return ids, mask


def trajectories(
    paths: Iterable[str | os.PathLike[str]],
    *,
    tokenizer: Tokenizer | str | os.PathLike[str] | None = None,
    split_turns: bool = False,
    only_passed: bool = False,
    min_reward: float | None = None,
    reward: RewardHook | None = None,
) -> Iterator[dict[str, Any]]:
    """Training records of the sessions and eval runs at ``paths`` (see `sources`).

    One record per segment of each trajectory, or with ``split_turns`` one per model turn (each
    engine request: its prompt plus its output, the mask on the output). ``reward(record)``
    replaces the default reward (1.0 for a passed eval sample, 0.0 for a failed one, None
    without an eval result); ``only_passed`` keeps passed eval samples (rejection-sampling
    SFT), ``min_reward`` records whose reward is at least that.
    """
    tokenizers: dict[str | None, Tokenizer] = {}
    for source in sources(paths):
        if only_passed and not (source.result is not None and source.result.passed):
            continue
        steps = [s for s in read_steps(source.path) if s.accepted]
        if not steps:
            continue
        model, variant = saved_model(source.path) or (None, None)
        if model not in tokenizers:
            tokenizers[model] = resolve_tokenizer(model, tokenizer)
        tok = tokenizers[model]
        parts = segments(steps)
        for index, seg in enumerate(parts):
            units = [[s] for s in seg] if split_turns else [seg]
            for turn, unit in enumerate(units):
                record = _record(source, unit, tok, model, variant)
                record.update(
                    segment=index,
                    segments=len(parts),
                    turn=turn if split_turns else None,
                    id=f"{record['session_id']}/{index}" + (f"/{turn}" if split_turns else ""),
                )
                record["reward"] = reward(record) if reward is not None else _reward(source)
                if min_reward is not None and (
                    record["reward"] is None or record["reward"] < min_reward
                ):
                    continue
                yield record


def _reward(source: Source) -> float | None:
    if source.result is None:
        return None
    return 1.0 if source.result.passed else 0.0


def _record(
    source: Source, steps: Sequence[Step], tok: Tokenizer, model: str | None, variant: str | None
) -> dict[str, Any]:
    ids, mask = sequence(steps)
    first = tok.decode(steps[0].prompt_ids)
    thinking = tok.control_id(T.THINK) in steps[0].prompt_ids
    earlier = sum(T.TURN_CLOSE in part for part in first.split(T.TURN_OPEN + "model\n")[1:])
    reasoning = _reasoning_tokens(steps, tok)
    r = source.result
    return {
        "id": "",
        "session_id": source.path.stem,
        "source": str(source.path),
        "task_id": r.task_id if r else None,
        "sample": r.sample if r else None,
        "passed": r.passed if r else None,
        "status": r.status if r else None,
        "tests_run": r.tests_run if r else None,
        "tests_failed": r.tests_failed if r else None,
        "tests_passed_ratio": (
            (r.tests_run - r.tests_failed) / r.tests_run if r and r.tests_run else None
        ),
        "reward": None,
        "model": model,
        "variant": variant,
        "thinking": thinking,
        # Reasoning generated in this record is in its ids (and trained on); reasoning of
        # earlier, finished model turns was dropped by the template before the model saw it.
        "reasoning": "kept" if reasoning else "none",
        "earlier_reasoning": "dropped" if thinking and earlier else "none",
        "reasoning_tokens": reasoning,
        "segment": 0,
        "segments": 1,
        "turn": None,
        "steps": len(steps),
        "input_ids": ids,
        "loss_mask": mask,
        "num_tokens": len(ids),
        "num_trained_tokens": sum(mask),
        "text": tok.decode(ids),
        "config": json.dumps(source.config, sort_keys=True, default=str) if source.config else None,
    }


def _reasoning_tokens(steps: Sequence[Step], tok: Tokenizer) -> int:
    """Generated ids inside a thought channel (the prompt may have opened it)."""
    ch_open = tok.control_id(T.CHANNEL_OPEN)
    n = 0
    for s in steps:
        inside = False
        for t in reversed(s.prompt_ids[-64:]):
            if tok.control_marker(t) not in (None, T.STR):
                inside = t == ch_open
                break
        for t in s.output_ids:
            if t == ch_open:
                inside = True
            elif tok.control_marker(t) not in (None, T.STR):
                inside = False
            elif inside:
                n += 1
    return n


def write_export(
    records: Iterable[dict[str, Any]], output: str | os.PathLike[str], *, fmt: Format = "jsonl"
) -> dict[str, Any]:
    """Write records to ``output/trajectories.jsonl`` or ``.parquet``; return a summary (also
    written as ``output/export.json``). Parquet needs ``pip install 'gemma-agent[export]'``."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"trajectories.{fmt}"
    count = tokens = trained = 0
    sessions: set[str] = set()

    def counted(rs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal count, tokens, trained
        for r in rs:
            count += 1
            tokens += r["num_tokens"]
            trained += r["num_trained_tokens"]
            sessions.add(r["session_id"])
            yield r

    if fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for r in counted(records):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        _write_parquet(counted(records), path)
    summary = {
        "path": str(path),
        "format": fmt,
        "records": count,
        "sessions": len(sessions),
        "tokens": tokens,
        "trained_tokens": trained,
    }
    (out / "export.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _write_parquet(records: Iterable[dict[str, Any]], path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "Parquet export needs pyarrow: pip install 'gemma-agent[export]' (or use "
            "--format jsonl)"
        ) from None
    rows = list(records)
    schema = pa.schema(
        [
            (k, pa.list_(pa.int32()))
            if k in ("input_ids", "loss_mask")
            else (k, _arrow_type(pa, k, rows))
            for k in (rows[0] if rows else {"input_ids": [], "loss_mask": []})
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _arrow_type(pa: Any, key: str, rows: Sequence[dict[str, Any]]) -> Any:
    values = [r[key] for r in rows if r[key] is not None]
    if not values:
        return pa.string()
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``gemma-agent export``."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_OR_SESSIONS",
        help="eval output folders, folders of session logs, or session logs (.jsonl)",
    )
    parser.add_argument("--output", required=True, help="folder for the exported records")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", dest="export_format")
    parser.add_argument(
        "--only-passed", action="store_true", help="passed eval samples only (rejection sampling)"
    )
    parser.add_argument(
        "--min-reward", type=float, default=None, metavar="R", help="records with reward >= R"
    )
    parser.add_argument(
        "--split-turns",
        action="store_true",
        help="one record per model turn (engine request) instead of per trajectory segment",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        metavar="PATH",
        help="checkpoint folder or tokenizer.json to decode with (default: from the model name)",
    )


def run_export(args: argparse.Namespace) -> int:
    records = trajectories(
        args.paths,
        tokenizer=args.tokenizer,
        split_turns=args.split_turns,
        only_passed=args.only_passed,
        min_reward=args.min_reward,
    )
    summary = write_export(records, args.output, fmt=args.export_format)
    print(
        f"exported {summary['records']} records from {summary['sessions']} sessions "
        f"({summary['trained_tokens']} of {summary['tokens']} tokens trained on) "
        f"to {summary['path']}"
    )
    return 0


__all__ = [
    "FORMATS",
    "Format",
    "RewardHook",
    "Source",
    "resolve_tokenizer",
    "segments",
    "sequence",
    "sources",
    "trajectories",
    "write_export",
]
