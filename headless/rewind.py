"""`gemma-agent rewind SESSION` and `gemma-agent checkpoints prune`: checkpoints from a shell.

    gemma-agent rewind SESSION                 list the points (what changed since each)
    gemma-agent rewind SESSION --to 2          rewind code and conversation to point 2
    gemma-agent rewind SESSION --to 2 --code-only | --conversation-only | --dry-run | --force
    gemma-agent rewind SESSION --undo          take the last rewind back (again: the one before)
    gemma-agent checkpoints prune [--older-than DAYS | --all]

Public SDK surface only (``Agent.checkpoints``, ``Agent.rewind``, ``Agent.undo_rewind``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser is built on every start: the SDK is imported only to run
    from ..agent import Checkpoint, RewindResult


def add_rewind_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", help="the session id (see .gemma-agent/sessions/)")
    p.add_argument("--to", default=None, metavar="N", help="the point to go back to (a number)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--code-only", action="store_true", help="restore the files only")
    which.add_argument("--conversation-only", action="store_true", help="cut the conversation only")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument(
        "--force", action="store_true", help="also overwrite files changed outside the agent"
    )
    p.add_argument(
        "--undo",
        action="store_true",
        help="take the session's last rewind back (again: the one before it)",
    )
    p.add_argument("--workspace", default=".", help="the session's workspace (default: .)")


def add_checkpoints_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="checkpoints_command", metavar="ACTION", required=True)
    prune = sub.add_parser("prune", help="delete old snapshots of this workspace")
    prune.add_argument(
        "--older-than", type=float, default=30.0, metavar="DAYS", help="(default: 30)"
    )
    prune.add_argument("--all", action="store_true", help="delete every snapshot")
    prune.add_argument("--workspace", default=".", help="(default: .)")


def describe(point: Checkpoint) -> str:
    added = sum(c.added for c in point.changes)
    removed = sum(c.removed for c in point.changes)
    files = len(point.changes)
    where = "before message" if point.kind == "message" else f"before step {point.step}"
    change = f"{files} file(s) +{added} -{removed}" if files else "no file changes since"
    return f"{point.index:>3}  {where}: {point.title[:60]!r}  [{change}]"


def _print_result(result: RewindResult) -> None:
    verb = "would change" if result.dry_run else "changed"
    for c in result.changes:
        print(f"  {c.status:<8} {c.path}  +{c.added} -{c.removed}")
    for path in result.conflicts:
        print(f"  conflict {path}  (changed outside the agent since)")
    print(
        f"{verb} {len(result.changes)} file(s); "
        f"{result.messages_dropped} message(s) {'would be ' if result.dry_run else ''}cut"
    )
    if result.dry_run and result.diff:
        print(result.diff, end="" if result.diff.endswith("\n") else "\n")


def run_rewind(args: argparse.Namespace) -> int:
    from ..agent import Agent, RewindConflict

    agent = Agent(workspace=args.workspace, compactor=None)

    async def main() -> int:
        try:
            if args.undo:
                await agent.undo_rewind(args.session, force=args.force)
                print(f"undid the last rewind of {args.session}")
                return 0
            if args.to is None:
                for point in await agent.checkpoints(args.session):
                    print(describe(point))
                return 0
            to: int | str = int(args.to) if str(args.to).isdigit() else args.to
            result = await agent.rewind(
                args.session,
                to=to,
                code=not args.conversation_only,
                conversation=not args.code_only,
                force=args.force,
                dry_run=args.dry_run,
            )
            _print_result(result)
            return 0
        except RewindConflict as e:
            print(f"gemma-agent: {e}", file=sys.stderr)
            return 1
        finally:
            await agent.aclose()

    return asyncio.run(main())


def run_checkpoints(args: argparse.Namespace) -> int:
    from ..agent import Agent

    store = Agent(workspace=args.workspace, compactor=None).checkpoint_store()
    dropped = store.prune(older_than_days=args.older_than, everything=args.all)
    print(f"pruned {dropped} snapshot(s) of {store.workspace}; {store.size() / 1e6:.1f} MB left")
    return 0


__all__ = ["add_checkpoints_arguments", "add_rewind_arguments", "run_checkpoints", "run_rewind"]
