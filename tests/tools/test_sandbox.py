"""Issue 15: run_shell's sandbox holds against host sockets, home secrets and environment leaks,
and toolchains still work inside. Real bubblewrap, real sockets, no mocks.

Scratch folders that must stay visible to the sandbox live under /var/tmp: the sandbox's /tmp is
private, so a socket or a secret under /tmp would be hidden for the wrong reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gemma_agent.tools import ApprovalPolicy, SpillStore, ToolContext, ToolRegistry
from gemma_agent.tools.builtin import RunShell, sandbox_status
from gemma_agent.tools.builtin.sandbox import (
    HIDDEN_HOME,
    SandboxRules,
    sandbox_environment,
    sandbox_mounts,
)
from gemma_agent.tools.builtin.sandbox_check import SocketServer

BWRAP = sandbox_status()
needs_bwrap = pytest.mark.skipif(not BWRAP.available, reason=f"no usable sandbox: {BWRAP.detail}")
MODES = ["none", pytest.param("bwrap", marks=needs_bwrap)]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def outside() -> Iterator[Path]:
    """A scratch folder outside /tmp (so the sandbox's private /tmp does not hide it)."""
    base = Path("/var/tmp")
    if not os.access(base, os.W_OK):
        pytest.skip("/var/tmp is not writable")
    path = Path(tempfile.mkdtemp(prefix="gemma-sandbox-test-", dir=base)).resolve()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def runner(ws: Path, sandbox: str = "bwrap", **options: object):  # type: ignore[no-untyped-def]
    registry = ToolRegistry([RunShell(sandbox=sandbox, rules=SandboxRules(), **options)])  # type: ignore[arg-type]
    ctx = ToolContext(workspace=ws, spill=SpillStore(ws.parent / "spill"))

    async def run(command: str) -> tuple[int, str]:
        out = await registry.call("run_shell", {"command": command, "timeout": 120}, ctx)
        assert not out.is_error, out.content
        return out.content["exit_code"], out.content["output"]

    return run


def connect(path: Path) -> str:
    code = (
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
        "try:\n s.connect(sys.argv[1]); print('REACHED', s.recv(100))\n"
        "except OSError as e: print('blocked', e.strerror)"
    )
    return f'python3 -c "{code}" {path}'


def run_folder() -> Path:
    for d in (os.environ.get("XDG_RUNTIME_DIR"), f"/run/user/{os.getuid()}", "/run"):
        if d and os.path.isdir(d) and os.access(d, os.W_OK):
            return Path(d)
    pytest.skip("no writable folder under /run")


@needs_bwrap
@pytest.mark.parametrize("where", ["run", "home"])
async def test_host_unix_sockets_are_unreachable(
    ws: Path, outside: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "run":
        folder = Path(tempfile.mkdtemp(prefix="gemma-sock-", dir=run_folder()))
    else:  # a socket in the (fake) home folder, e.g. Docker Desktop's ~/.docker/run/docker.sock
        home = outside / "home"
        folder = home / ".local" / "share" / "app"
        folder.mkdir(parents=True)
        monkeypatch.setenv("HOME", str(home))
    server = SocketServer(folder / "probe.sock")
    try:
        plain = await runner(ws, "none")(connect(server.path))
        assert "REACHED" in plain[1] and server.hits == 1  # the probe itself works
        _, output = await runner(ws)(connect(server.path))
        assert "REACHED" not in output and "blocked" in output
        assert server.hits == 1  # nothing arrived from inside the sandbox
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


@needs_bwrap
async def test_run_and_runtime_folders_are_empty_inside(ws: Path) -> None:
    _, output = await runner(ws)("ls -A /run /var/run | grep -v ':$' | grep -c . || true")
    assert output.strip() == "0"


@needs_bwrap
async def test_home_secrets_are_hidden_and_configurable(
    ws: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"SECRET-{uuid.uuid4().hex}"
    home = outside / "home"
    for rel in (".ssh/id_rsa", ".aws/credentials", ".netrc", ".bash_history",
                ".docker/config.json", ".config/gh/hosts.yml", "notes/private.txt"):  # fmt: skip
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(marker + "\n")
    (home / ".gitconfig").write_text("[user]\n\tname = Someone\n")
    project = home / "project"  # the workspace inside the home folder, as usual
    (project / ".ssh").mkdir(parents=True)
    (project / ".ssh" / "config").write_text("workspace file\n")
    (project / ".npmrc").write_text("workspace npmrc\n")
    monkeypatch.setenv("HOME", str(home))

    run = runner(project)
    _, output = await run(
        "cat ~/.ssh/id_rsa ~/.aws/credentials ~/.netrc ~/.bash_history ~/.docker/config.json "
        "~/.config/gh/hosts.yml 2>&1; ls -A ~/.ssh ~/.aws; cat ~/.gitconfig ~/notes/private.txt"
    )
    assert output.count(marker) == 1  # only notes/private.txt, not hidden by default
    assert "id_rsa" not in output.replace("/.ssh/id_rsa", "")
    assert "name = Someone" in output  # the rest of the home folder stays readable
    _, inside = await run("cat .ssh/config .npmrc")
    assert inside == "workspace file\nworkspace npmrc\n"  # never hidden inside the workspace
    _, write = await run("echo x > ~/.ssh/new 2>&1; echo x > ~/new 2>&1; true")
    assert not (home / ".ssh" / "new").exists() and not (home / "new").exists()
    assert "Read-only file system" in write

    custom = runner(project, hide=["notes"], show=[".netrc"])
    _, output = await custom("cat ~/.netrc ~/notes/private.txt 2>/dev/null; ls -A ~/notes")
    assert output.strip() == marker  # .netrc shown, notes hidden


def test_mounts_skip_the_workspace_and_missing_paths(outside: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    home = outside / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".netrc").write_text("x")
    monkeypatch.setenv("HOME", str(home))
    mounts = sandbox_mounts(home / "ws")
    assert str(home / ".ssh") in mounts.hidden_dirs
    assert str(home / ".netrc") in mounts.hidden_files
    assert not any(".aws" in p for p in mounts.hidden_dirs + mounts.hidden_files)
    # The workspace is the home folder itself: nothing inside it is hidden.
    inside = sandbox_mounts(home)
    assert not [p for p in inside.hidden_dirs + inside.hidden_files if p.startswith(str(home))]
    assert ".ssh" in HIDDEN_HOME and ".bash_history" in HIDDEN_HOME


@pytest.mark.parametrize("sandbox", MODES)
async def test_environment_is_an_allow_list(
    ws: Path, sandbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SECRET_TOKEN", "tok-123456")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdef")
    monkeypatch.setenv("LC_PAPER", "en_GB.UTF-8")
    _, output = await runner(ws, sandbox)("env")
    assert "tok-123456" not in output and "sk-abcdef" not in output
    names = {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}
    assert {"PATH", "HOME", "LC_PAPER", "TERM", "TMPDIR"} <= names
    _, passed = await runner(ws, sandbox, pass_env=["MY_*"], env={"EXTRA": "1"})("env")
    assert "MY_SECRET_TOKEN=tok-123456" in passed and "EXTRA=1" in passed
    assert "sk-abcdef" not in passed


def test_environment_rules() -> None:
    source = {"PATH": "/bin", "HOME": "/h", "AWS_SECRET_ACCESS_KEY": "x", "https_proxy": "p",
              "VIRTUAL_ENV": "/elsewhere/.venv", "LC_ALL": "C"}  # fmt: skip
    env = sandbox_environment(Path("/w"), source=source)
    assert env["PATH"] == "/bin" and env["LC_ALL"] == "C" and env["TMPDIR"] == "/tmp"
    assert "AWS_SECRET_ACCESS_KEY" not in env and "https_proxy" not in env
    assert "VIRTUAL_ENV" not in env  # not the workspace's venv
    assert sandbox_environment(Path("/w"), network=True, source=source)["https_proxy"] == "p"
    venv = {**source, "VIRTUAL_ENV": "/w/.venv"}
    assert sandbox_environment(Path("/w"), source=venv)["VIRTUAL_ENV"] == "/w/.venv"


@needs_bwrap
async def test_toolchains_work_inside(ws: Path) -> None:
    run = runner(ws)
    code, out = await run("python3 -c 'import sys; print(sys.version_info[0])'")
    assert (code, out) == (0, "3\n")
    code, out = await run(
        "git init -q . && echo hi > a.txt && git add a.txt && "
        "git -c user.name=t -c user.email=t@example.com commit -qm first && git log --oneline"
    )
    assert code == 0 and "first" in out, out
    code, out = await run("python3 -m venv .venv && .venv/bin/pip --version")
    assert code == 0 and "pip" in out and str(ws / ".venv") in out, out
    with zipfile.ZipFile(ws / "tinypkg-1.0-py3-none-any.whl", "w") as wheel:  # offline install
        info = "tinypkg-1.0.dist-info"
        wheel.writestr("tinypkg.py", "X = 7\n")
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(
            f"{info}/RECORD", f"tinypkg.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n"
        )
    code, out = await run(
        ".venv/bin/pip install -q --no-index ./tinypkg-1.0-py3-none-any.whl && "
        ".venv/bin/python -c 'import tinypkg; print(tinypkg.X)'"
    )
    assert (code, out.strip().splitlines()[-1]) == (0, "7"), out
    if shutil.which("make"):
        (ws / "Makefile").write_text("all:\n\t@echo made\n")
        assert await run("make") == (0, "made\n")
    _, procs = await run("ls /proc | grep -c '^[0-9]'")
    assert 0 < int(procs) < 10  # only the sandbox's own processes


@needs_bwrap
async def test_node_works_inside(ws: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    assert await runner(ws)("node -e 'console.log(6 * 7)'") == (0, "42\n")


def test_status_and_approval_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gemma_agent.tools.builtin import sandbox as sandbox_module

    assert isinstance(BWRAP.available, bool)
    monkeypatch.setattr(sandbox_module, "_probe_result", sandbox_module.SandboxStatus(False, "no"))
    shell = RunShell(sandbox="auto")
    assert shell.unsandboxed_reason == "no"
    decision = ApprovalPolicy("auto", workspace=tmp_path).decide(shell, {"command": "ls"})
    assert decision.action == "ask" and "not sandboxed (no)" in decision.reason


@needs_bwrap
def test_sandbox_check_command_holds_here(capsys: pytest.CaptureFixture[str]) -> None:
    from gemma_agent.cli import main

    code = main(["sandbox-check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAIL" not in out and "The sandbox holds" in out
