"""``run_shell`` in the editor's terminals (ACP ``terminal/*``), when the client offers them: the
person sees each command run in their editor, live, inside its tool call.

What the command runs is what the built-in ``run_shell`` would run, unchanged: the same
bubblewrap sandbox around it (where it can run here; else the same unsandboxed fallback, for
which the approval policy asks before each command), the same allow-listed environment (the
editor's own variables are cleared with ``env -i``), the same resource limits, stdin closed,
the same timeout. Only who starts the process changes: the editor does, on this machine (it
started us), in ``cwd`` the workspace. The approval policy decides before the call runs, as
for any tool. A background command (``background: true``) stays ours (``shell_output`` and
``shell_kill`` read and stop it).

The output the model reads is what the editor kept of it (``output_byte_limit``: the end, when
there is more), cut to the tool's limit with the whole kept for ``recall_output``. At the
timeout, or when the call is cancelled (session/cancel), the terminal is killed; it is always
released (the editor goes on showing it in the tool call).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Sequence
from typing import Any

from acp import tool_terminal_ref, update_tool_call

from ..tools import Tool, ToolContext, ToolError, ToolOutput

OUTPUT_BYTE_LIMIT = 4 * 1024 * 1024  # what the editor keeps of a command's output (its end)
ANNOUNCED_WAIT = 10.0  # seconds a call waits for its tool call to be shown before its terminal


class EditorTerminals:
    """The editor's terminals for one session (``session_id`` is set once it is known): which
    tool call runs in which terminal (by ACP call id), and which calls the editor has been
    shown (a terminal is added to a call only after the call itself)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.session_id: str | None = None
        self.terminals: dict[str, str] = {}
        self._shown: dict[str, asyncio.Event] = {}

    def tools(self, originals: Sequence[Tool]) -> list[Tool]:
        """``run_shell`` through the editor's terminals (the other tools unchanged)."""
        return [_TerminalShell(t, self) if _is_shell(t) else t for t in originals]

    def shown(self, call_id: str) -> None:
        """The editor has been told of the call ``call_id`` (its ACP id)."""
        self._shown.setdefault(call_id, asyncio.Event()).set()

    def forget(self, call_id: str) -> str | None:
        """The call is over: its terminal's id, if it ran in one."""
        self._shown.pop(call_id, None)
        return self.terminals.pop(call_id, None)

    async def _after_shown(self, call_id: str) -> None:
        event = self._shown.setdefault(call_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANNOUNCED_WAIT):
                await event.wait()

    async def run(
        self,
        call_id: str,
        label: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        seconds: float,
    ) -> tuple[str, bool, int | None, str | None, bool]:
        """Run ``argv`` with exactly ``env`` in a new terminal (``label``: the command, for
        people): ``(output, truncated, exit code, signal, timed out)``. Cancelled: the
        terminal is killed, then released."""
        # The editor shows this command line: the model's command comes first (as bash's $0),
        # then the environment and the sandbox.
        launcher = shutil.which("env") or "/usr/bin/env"
        variables = [f"{k}={v}" for k, v in env.items()]
        created = await self.client.create_terminal(
            session_id=self.session_id,
            command="/bin/bash",
            args=["-c", f'exec {launcher} -i "$@" </dev/null', label, *variables, *argv],
            cwd=cwd,
            output_byte_limit=OUTPUT_BYTE_LIMIT,
        )
        terminal = created.terminal_id
        self.terminals[call_id] = terminal
        exited = timed_out = False
        try:
            await self._after_shown(call_id)
            await self.client.session_update(
                session_id=self.session_id,
                update=update_tool_call(
                    call_id, status="in_progress", content=[tool_terminal_ref(terminal)]
                ),
            )
            status: Any = None
            try:
                async with asyncio.timeout(seconds):
                    status = await self._wait(terminal)
            except TimeoutError:
                timed_out = True
                await self._kill(terminal)
                with contextlib.suppress(TimeoutError):  # how it ended, once the editor knows
                    async with asyncio.timeout(10):
                        status = await self._wait(terminal)
            exited = status is not None
            got = await self.client.terminal_output(
                session_id=self.session_id, terminal_id=terminal
            )
            status = got.exit_status or status
            code = status.exit_code if status is not None else None
            signal = status.signal if status is not None else None
            return got.output, got.truncated, code, signal, timed_out
        finally:
            # Cancelled or failed: nothing may outlive the call. Shielded: a cancelled call
            # still reaches the editor.
            await asyncio.shield(self._end(terminal, kill=not exited))

    async def _wait(self, terminal: str) -> Any:
        return await self.client.wait_for_terminal_exit(
            session_id=self.session_id, terminal_id=terminal
        )

    async def _kill(self, terminal: str) -> None:
        await self.client.kill_terminal(session_id=self.session_id, terminal_id=terminal)

    async def _end(self, terminal: str, *, kill: bool) -> None:
        with contextlib.suppress(Exception):  # the editor may have closed it already
            if kill:
                await self._kill(terminal)
            await self.client.release_terminal(session_id=self.session_id, terminal_id=terminal)


class _TerminalShell(Tool):
    """The built-in ``run_shell`` whose foreground commands run in the editor's terminal."""

    def __init__(self, original: Any, terminals: EditorTerminals) -> None:
        self.original = original
        self.terminals = terminals
        super().__init__(
            name=original.name,
            description=original.description,
            parameters=original.parameters,
            read_only=original.read_only,
            sequential=original.sequential,
            timeout=original.timeout,
            max_output_chars=original.max_output_chars,
        )
        self.shell_argument = original.shell_argument

    @property
    def unsandboxed_reason(self) -> str | None:  # the approval policy reads it (auto mode)
        return self.original.unsandboxed_reason

    def validate(self, arguments: Any) -> Any:
        return self.original.validate(arguments)

    async def aclose(self) -> None:
        await self.original.aclose()

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        shell = self.original
        if getattr(args, "background", False) and shell.processes is not None:
            return await shell.execute(args, ctx)  # ours, for shell_output/shell_kill
        workspace = ctx.files.root
        argv, env = await shell.command_line(args.command, args.timeout, ctx)
        try:
            output, truncated, code, signal, timed_out = await self.terminals.run(
                _acp_call_id(ctx), args.command, argv, env, str(workspace), args.timeout
            )
        except (ToolError, asyncio.CancelledError):
            raise
        except Exception as e:  # the editor refused or failed: the model reads why
            raise ToolError(f"the editor's terminal could not run the command: {e}") from e
        if truncated:
            output = f"[the beginning was cut: the editor keeps the last bytes]\n{output}"
        spill_id = None
        if len(output) > shell.output_chars:  # head and tail; the whole for recall_output
            spill_id = ctx.spill.put(output, label=f"run_shell: {args.command[:80]}")
            output = _cap(output, shell.output_chars, spill_id)
        if timed_out:
            output += f"\n[killed: the command ran longer than its {args.timeout} s timeout]"
        result: dict[str, Any] = {
            "exit_code": code,
            "output": output if output.strip() else "(no output)",
        }
        if signal and not timed_out:
            result["signal"] = signal
        if timed_out:
            result["timed_out"] = True
        return ToolOutput(result, spill_id)


def _is_shell(tool: Tool) -> bool:
    """The built-in run_shell (which can say what it would run)."""
    return tool.name == "run_shell" and callable(getattr(tool, "command_line", None))


def _cap(text: str, limit: int, spill_id: str) -> str:
    head, tail = text[: limit // 2], text[len(text) - limit // 2 :]
    cut = len(text) - len(head) - len(tail)
    return f'{head}\n[... {cut:,} characters cut; full output: recall_output(spill_id="{spill_id}") ...]\n{tail}'


def _acp_call_id(ctx: ToolContext[Any]) -> str:
    """The call's id as the editor knows it: a sub-agent's is prefixed with its path."""
    path = str(getattr(ctx.parent, "path", "") or "")
    return f"{path}/{ctx.call_id}" if "/" in path else ctx.call_id
