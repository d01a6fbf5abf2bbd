"""The real `gemma-agent` console script in a pseudo-terminal, on the tiny CPU model.

No subcommand opens the TUI; on a machine without a GPU the tiny random-weight model is picked
(its outputs are noise). With --thinking and --tool-choice required the noise still produces a
thinking block and a tool call, which must show up on the screen.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.engine

SCRIPT = Path(sys.executable).parent / "gemma-agent"
# Every status a tool card can show after its name.
CARD = re.compile(r"· (queued|waiting for approval|running|done|failed|denied|cancelled)")


def test_console_script_shows_thinking_and_a_tool_card(tmp_path: Path) -> None:
    from gemma_agent.agent.engines.vllm import vllm_installed

    if not vllm_installed():
        if os.environ.get("CI"):
            pytest.fail("vLLM is not installed: `make install`")
        pytest.skip("vLLM is not installed: `make install`")
    assert SCRIPT.exists(), f"{SCRIPT} missing: pip install -e ."
    (tmp_path / "README.md").write_text("# demo\n")
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no user config; approvals stay here
        "NO_COLOR": "",
    }
    child = pexpect.spawn(
        str(SCRIPT),
        [
            *("--workspace", str(tmp_path)),
            "--thinking",
            *("--tool-choice", "required"),
            *("--approval", "read-only"),  # noise may call anything: only reads may run
            "--no-subagents",  # a noise `task` call would start children of 20-30 noise steps
            *("--max-steps", "2"),
            *("--max-model-len", "4096"),
        ],
        cwd=str(tmp_path),
        env=env,
        dimensions=(40, 120),
        encoding="utf-8",
        codec_errors="replace",
        timeout=600,
    )
    try:
        child.expect("Starting the engine", timeout=120)
        # Typed while the engine loads: queued, sent once it is up. Three tasks: a noise model
        # may end a run (final_answer) without thinking; the queued runs give it more chances.
        for _ in range(3):
            child.send("list the files here")
            child.send("\r")
        child.expect("tiny random-weight model", timeout=600)  # the "outputs are noise" banner
        child.expect("✻", timeout=600)  # a thinking block (live or folded)
        child.expect(CARD, timeout=600)  # a tool card with its status
        child.sendcontrol("c")
        child.sendcontrol("c")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        if child.isalive():
            child.terminate(force=True)
    child.close()
    assert child.exitstatus == 0, child.before
    # vLLM's output (its loggers and the engine-core process's raw stderr) went to a file,
    # not over the screen.
    log = (tmp_path / ".gemma-agent" / "logs" / "engine.log").read_text()
    assert "EngineCore" in log
