"""The shell sandbox's rules, in one place (``docs/sandbox.md`` explains them to users).

run_shell runs every command in bubblewrap (``bwrap``) with these rules:

- visible, read-only: the whole file system (``--ro-bind / /``), so toolchains work as outside;
- writable: the workspace, and a private, empty ``/tmp`` (gone when the command ends);
- masked with an empty folder: ``/run``, ``/var/run`` and the user's runtime folder
  (``$XDG_RUNTIME_DIR``): the sockets of Docker, D-Bus, systemd and agents live there;
- masked with an empty file: every other listening unix socket of the host (found in
  ``/proc/net/unix``), wherever it lives, except inside the workspace;
- hidden: the usual secret files and folders of the home folder (``HIDDEN_HOME``), empty folders
  or empty files in their place; only those that exist, never one inside the workspace;
- new ``/dev`` and ``/proc`` (only the sandbox's own processes), private pid/ipc/uts/user/cgroup
  namespaces, no network (its own empty network namespace, which also cuts off the host's
  abstract unix sockets) unless ``network=True``;
- environment: only the variables named in ``ENV_ALLOW`` (plus what the user adds), never the
  whole environment of the agent's process.

The user adds to these rules with ``RunShell(hide=..., show=..., pass_env=...)`` or in
``~/.config/gemma-agent/sandbox.toml`` (``hide``, ``show``, ``pass_env``: lists of strings). Only
the user's own config folder is read: a file in the workspace could be written by the agent.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ConfigError

# Relative to the home folder. Folders get an empty tmpfs, files an empty file (/dev/null).
HIDDEN_HOME: tuple[str, ...] = (
    # keys and cloud credentials
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",  # config.json holds registry tokens; Docker Desktop keeps its socket here
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".config/gh",
    ".config/hub",
    ".config/glab-cli",
    ".pypirc",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".gem/credentials",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".m2/settings.xml",
    ".gradle/gradle.properties",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".config/rclone",
    ".s3cfg",
    ".boto",
    ".huggingface/token",
    ".cache/huggingface/token",
    ".config/op",
    ".password-store",
    ".local/share/keyrings",
    ".pki",
    # browsers (cookies, saved passwords)
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
    ".config/BraveSoftware",
    # shell and REPL histories (commands typed with tokens in them)
    ".bash_history",
    ".zsh_history",
    ".histfile",
    ".sh_history",
    ".python_history",
    ".node_repl_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
    ".rediscli_history",
    ".lesshst",
    ".local/share/fish/fish_history",
)

# Host folders masked with an empty tmpfs (the user's runtime folder is added at run time).
MASKED_DIRS: tuple[str, ...] = ("/run", "/var/run")

# Environment variables passed to commands; ``*`` matches like a shell glob.
ENV_ALLOW: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TERM",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    # toolchains: where they live, not credentials
    "VIRTUAL_ENV",
    "CONDA_*",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "PYTHONPATH",
    "NVM_DIR",
    "NVM_BIN",
    "NODE_PATH",
    "GOPATH",
    "GOROOT",
    "GOBIN",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "JAVA_HOME",
    "LD_LIBRARY_PATH",
    "PKG_CONFIG_PATH",
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "CUDA_HOME",
    "CUDA_VISIBLE_DEVICES",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)
# Passed only when the network is allowed (proxies are useless without it).
ENV_ALLOW_NETWORK: tuple[str, ...] = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
)
# Set for every command (quiet, non-interactive tools).
ENV_FIXED: Mapping[str, str] = {
    "TERM": "dumb",
    "NO_COLOR": "1",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "PYTHONUNBUFFERED": "1",
    "DEBIAN_FRONTEND": "noninteractive",
}


def user_sandbox_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-agent" / "sandbox.toml"


@dataclass(frozen=True, slots=True)
class SandboxRules:
    """What the user changed: more paths to hide, default ones to show, more variables to pass."""

    hide: tuple[str, ...] = ()  # absolute or ~ paths, or relative to the home folder
    show: tuple[str, ...] = ()  # entries of HIDDEN_HOME (or paths) to leave visible
    pass_env: tuple[str, ...] = ()  # names or globs of variables to pass
    hide_defaults: bool = True  # False: hide only ``hide``

    def merged(self, other: SandboxRules) -> SandboxRules:
        return SandboxRules(
            (*self.hide, *other.hide),
            (*self.show, *other.show),
            (*self.pass_env, *other.pass_env),
            self.hide_defaults and other.hide_defaults,
        )

    @classmethod
    def from_file(cls, path: Path | None = None) -> SandboxRules:
        """The user's ``sandbox.toml``; a missing file is no change."""
        path = path or user_sandbox_config_path()
        if not path.is_file():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the sandbox rules ({e}); fix it") from e
        known = {"hide", "show", "pass_env", "hide_defaults"}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"{path}: unknown key `{key}` (known: {', '.join(sorted(known))})"
                )
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("hide", "show", "pass_env"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{path}: `{key}` must be a list of strings, got {value!r}")
            lists[key] = tuple(value)
        defaults = data.get("hide_defaults", True)
        if not isinstance(defaults, bool):
            raise ConfigError(f"{path}: `hide_defaults` must be true or false, got {defaults!r}")
        return cls(lists["hide"], lists["show"], lists["pass_env"], defaults)


def home_folders() -> list[Path]:
    """$HOME and the account's home folder from the password database, when they differ."""
    homes = [os.environ.get("HOME", "")]
    try:
        homes.append(pwd.getpwuid(os.getuid()).pw_dir)
    except (KeyError, OSError):
        pass
    return [Path(h) for h in dict.fromkeys(homes) if h and os.path.isabs(h)]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _expand(entry: str, home: Path) -> Path:
    if entry.startswith("~"):
        entry = str(home) + entry[1:]
    return Path(entry) if os.path.isabs(entry) else home / entry


@dataclass(frozen=True, slots=True)
class Mounts:
    """The masks for one command, as bubblewrap arguments and as plain lists (for the check)."""

    masked_dirs: list[str] = field(default_factory=list)
    hidden_dirs: list[str] = field(default_factory=list)
    hidden_files: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # files inside a mask brought back

    def args(self) -> list[str]:
        out: list[str] = []
        for d in self.masked_dirs:
            out += ["--tmpfs", d]
        for d in self.hidden_dirs:
            out += ["--tmpfs", d, "--remount-ro", d]
        for f in [*self.hidden_files, *self.sockets]:
            out += ["--ro-bind", "/dev/null", f]
        for f in self.kept:
            out += ["--ro-bind", f, f]
        return out


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def host_unix_sockets() -> list[str]:
    """Paths of the unix sockets bound in this network namespace (from /proc/net/unix)."""
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return []
    paths = []
    for line in lines:
        parts = line.split(None, 7)
        if len(parts) == 8 and parts[7].startswith("/"):  # "@name" is abstract: no file
            paths.append(parts[7])
    return list(dict.fromkeys(paths))


def sandbox_mounts(
    workspace: Path, rules: SandboxRules | None = None, *, network: bool = False
) -> Mounts:
    """What to mask for a command in ``workspace`` (paths that exist, none inside it)."""
    rules = rules or SandboxRules()
    ws = _real(workspace)
    mounts = Mounts()
    covered: list[Path] = [Path("/tmp")]  # already a private tmpfs

    def add_dir(path: Path, target: list[str]) -> None:
        real = _real(path)
        if (
            real.is_dir()
            and not any(_inside(real, c) for c in covered)
            and not _inside(ws, real)  # never mask a folder that holds the workspace
        ):
            target.append(str(real))
            covered.append(real)

    runtime = os.environ.get("XDG_RUNTIME_DIR")
    for d in [*MASKED_DIRS, *([runtime] if runtime else []), f"/run/user/{os.getuid()}"]:
        add_dir(Path(d), mounts.masked_dirs)

    shown = set()
    entries: list[tuple[str, Path]] = []
    for home in home_folders():
        shown |= {_expand(s, home) for s in rules.show}
        names = [*(HIDDEN_HOME if rules.hide_defaults else ()), *rules.hide]
        entries += [(n, _expand(n, home)) for n in names]
    for _, path in entries:
        if path in shown or _inside(path, ws) or not os.path.lexists(path):
            continue
        real = _real(path)
        if _inside(real, ws) or any(_inside(real, c) for c in covered):
            continue
        if real.is_dir():
            add_dir(real, mounts.hidden_dirs)
        elif real.exists() and str(real) not in mounts.hidden_files:
            mounts.hidden_files.append(str(real))

    if network:  # /etc/resolv.conf often points into /run (systemd-resolved)
        for name in ("/etc/resolv.conf", "/etc/hosts"):
            real = _real(name)
            masked = [Path(d) for d in mounts.masked_dirs]
            if real.is_file() and any(_inside(real, d) for d in masked):
                mounts.kept.append(str(real))

    for sock in host_unix_sockets():
        real = _real(sock)
        if _inside(real, ws) or any(_inside(real, c) for c in covered):
            continue
        try:
            if stat.S_ISSOCK(os.stat(real).st_mode) and str(real) not in mounts.sockets:
                mounts.sockets.append(str(real))
        except OSError:
            continue
    return mounts


def interpreter_binds() -> list[str]:
    """Read-only binds that bring back our Python installation when a private /tmp hides it
    (a virtual environment or checkout under /tmp, as in some CI clones)."""
    args: list[str] = []
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = Path(prefix).resolve()
        if path.is_relative_to("/tmp") and path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_args(
    workspace: Path, *, network: bool = False, rules: SandboxRules | None = None
) -> list[str]:
    """The bubblewrap command line (before the command) for a sandbox around ``workspace``."""
    ws = str(workspace)
    args = [
        "bwrap",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        *sandbox_mounts(workspace, rules, network=network).args(),
        *interpreter_binds(),
        "--bind", ws, ws,  # after /tmp and the masks: the workspace may live under /tmp
        "--chdir", ws,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
    ]  # fmt: skip
    if network:
        args.append("--share-net")
    return args


def _allowed(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def sandbox_environment(
    workspace: Path,
    *,
    network: bool = False,
    rules: SandboxRules | None = None,
    extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a command: the allowed variables of ``source`` (our environment),
    then ``ENV_FIXED``, then ``extra`` (set explicitly by the program)."""
    rules = rules or SandboxRules()
    source = os.environ if source is None else source
    patterns = [*ENV_ALLOW, *(ENV_ALLOW_NETWORK if network else ()), *rules.pass_env]
    env = {k: v for k, v in source.items() if _allowed(k, patterns)}
    venv = env.get("VIRTUAL_ENV")
    if venv and not _inside(_real(venv), _real(workspace)) and "VIRTUAL_ENV" not in rules.pass_env:
        del env["VIRTUAL_ENV"]  # another project's (or our own) venv: not the workspace's
    env["TMPDIR"] = "/tmp"
    env.update(ENV_FIXED)
    env.update(extra or {})
    return env


# --- can bwrap run here? --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SandboxStatus:
    available: bool
    detail: str  # why not, when not

    def __bool__(self) -> bool:
        return self.available


_probe_lock = threading.Lock()
_probe_result: SandboxStatus | None = None


def sandbox_status(*, refresh: bool = False) -> SandboxStatus:
    """Whether bwrap can run here (user namespaces may be off in containers). Probed once per
    process; the TUI's status bar and ``gemma-agent sandbox-check`` read it."""
    global _probe_result
    with _probe_lock:
        if _probe_result is not None and not refresh:
            return _probe_result
        if not sys.platform.startswith("linux"):
            _probe_result = SandboxStatus(False, f"bubblewrap needs Linux (this is {sys.platform})")
            return _probe_result
        if shutil.which("bwrap") is None:
            _probe_result = SandboxStatus(False, "bwrap is not installed (Debian: bubblewrap)")
            return _probe_result
        with tempfile.TemporaryDirectory(prefix="gemma-agent-probe-") as tmp:
            try:
                done = subprocess.run(
                    [*bwrap_args(Path(tmp)), "--", "/bin/sh", "-c", "touch probe && test -f probe"],
                    capture_output=True,
                    timeout=15,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
                ok = done.returncode == 0
                detail = "" if ok else done.stderr.decode(errors="replace").strip()[:300]
            except (OSError, subprocess.TimeoutExpired) as exc:
                ok, detail = False, str(exc)
        _probe_result = SandboxStatus(ok, "" if ok else f"bwrap cannot run here: {detail}")
        return _probe_result


__all__ = [
    "ENV_ALLOW",
    "HIDDEN_HOME",
    "MASKED_DIRS",
    "Mounts",
    "SandboxRules",
    "SandboxStatus",
    "bwrap_args",
    "host_unix_sockets",
    "interpreter_binds",
    "sandbox_environment",
    "sandbox_mounts",
    "sandbox_status",
]
