"""The file tools through the editor's file system (ACP ``fs/read_text_file`` and
``fs/write_text_file``), when the client offers both: the model sees the editor's unsaved
buffers, and its edits land in the editor (and its undo history) instead of behind its back.

Each tool is the built-in one run on a private copy of the file: the editor's text is placed
in a scratch folder at the same relative path, the built-in ``read_file`` / ``write_file`` /
``edit_file`` runs there (the same checks, messages and edit matching), and what it wrote goes
back through the editor. A file the editor cannot read falls back to the disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..tools import Tool, ToolContext

NAMES = ("read_file", "write_file", "edit_file")


class EditorFiles:
    """The editor's file system for one session (``session_id`` is set once it is known), and
    the diffs its writes made, by call id."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.session_id: str | None = None
        self.diffs: dict[str, tuple[str, str | None, str]] = {}

    async def read(self, path: Path) -> str | None:
        try:
            response = await self.client.read_text_file(session_id=self.session_id, path=str(path))
        except Exception:  # not open, not a text file, gone: the disk says what is wrong
            return None
        return str(response.content)

    async def write(self, path: Path, content: str) -> None:
        await self.client.write_text_file(
            session_id=self.session_id, path=str(path), content=content
        )

    def tools(self, originals: Sequence[Tool]) -> list[Tool]:
        """Stand-ins for the built-in file tools among ``originals`` (the others unchanged)."""
        return [_EditorTool(t, self) if t.name in NAMES else t for t in originals]


class _EditorTool(Tool):
    def __init__(self, original: Tool, files: EditorFiles) -> None:
        self.original = original
        self.files = files
        super().__init__(
            name=original.name,
            description=original.description,
            parameters=original.parameters,
            read_only=original.read_only,
            sequential=original.sequential,
            timeout=original.timeout,
            max_output_chars=original.max_output_chars,
        )

    def validate(self, arguments: Any) -> Any:
        return self.original.validate(arguments)

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        target = ctx.resolve(args.path)  # confined to the workspace, as on disk
        relative = _relative(target, Path(ctx.workspace))
        old = await self.files.read(target)
        if old is None and self.name != "write_file":
            return await self.original.execute(args, ctx)
        with tempfile.TemporaryDirectory(prefix="gemma-agent-editor-") as scratch:
            copy = Path(scratch) / relative
            _place(copy, old)
            result = await self.original.execute(
                args, ToolContext(Path(scratch), ctx.deps, ctx.call_id, ctx.emit, ctx.spill)
            )
            new = _text(copy) if self.name != "read_file" else old
        if new is not None and new != old:
            await self.files.write(target, new)
            self.files.diffs[ctx.call_id] = (str(target), old, new)
        return result


def _relative(target: Path, workspace: Path) -> Path:
    return target.relative_to(workspace.resolve())


def _place(path: Path, text: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is not None:
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write(text)


def _text(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return f.read()
    except OSError:
        return None
