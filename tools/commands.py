"""Shell command analysis: a lexer that splits a shell line into simple commands, and the
dangerous-command detector.

``parse_commands`` splits ``a && b | c`` into its simple commands (assignments and wrappers such as
``sudo``/``env`` stripped, redirect targets kept, also inside ``$(...)`` and backticks); the
approval policy matches its rules against their words.

``dangerous_reason`` says why a command needs a person's approval; the approval policy
(``tools/approval.py``) then asks even in ``auto`` mode and over allow rules: recursive
rm outside the workspace or of the workspace itself, ``git reset --hard``, ``git clean``, forced
pushes, ``find -delete``, ``dd``, ``mkfs``, ``chmod/chown -R``, piping into a shell or
interpreter (``curl ... | sh``), ``python -c`` / ``perl -e`` code that deletes files, spawns
commands or opens connections, sudo, writes to absolute paths outside the workspace, fork bombs,
shutdown; ``eval``; code produced by a command substitution (``bash -c "$(curl ...)"``, ``$(...)``
as the command, ``bash <(curl ...)``); destructive commands fed by ``xargs``; commands that reach
other hosts (ssh, scp, nc, rsync to ``host:``, curl/wget uploads, ``/dev/tcp``) or publish;
crontab and other ways to start processes outside; docker/kubectl commands that delete or escape.
It looks inside ``bash -c '...'``, ``$(...)`` and backticks. A list can never be complete: the
sandbox (``tools/builtin/sandbox.py``) is the real wall, and where it cannot run, auto mode asks
before every shell command.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_OPERATORS = {";", "&", "&&", "|", "||", "|&", "(", ")", "\n", ";;"}
_WRAPPERS = {"sudo", "doas", "env", "nohup", "time", "nice", "ionice", "command", "builtin",
             "exec", "timeout", "stdbuf", "xargs", "watch", "strace"}  # fmt: skip
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh", "busybox"}
_INTERPRETERS = {"python", "python2", "python3", "perl", "ruby", "node", "php", "lua", "deno"}
_REMOTE = {"ssh", "scp", "sftp", "mosh", "telnet", "nc", "ncat", "netcat", "socat", "ftp",
           "lftp", "tftp", "rsh", "rlogin", "rcp", "sshpass", "autossh"}  # fmt: skip
_XARGS_DANGER = {"rm", "shred", "unlink", "rmdir", "mv", "chmod", "chown", "chgrp", "truncate",
                 "dd", "kill", *_SHELLS}  # fmt: skip
_PUBLISH = {("npm", "publish"), ("pnpm", "publish"), ("yarn", "publish"), ("cargo", "publish"),
            ("twine", "upload"), ("poetry", "publish"), ("uv", "publish"), ("gem", "push"),
            ("docker", "push"), ("podman", "push"), ("flit", "publish"), ("hatch", "publish")}  # fmt: skip
_CLUSTER = {"kubectl": {"delete", "apply", "replace", "patch", "drain", "cordon", "scale", "exec",
                        "edit", "rollout", "create", "run", "cp"},
            "helm": {"install", "upgrade", "uninstall", "delete", "rollback"},
            "terraform": {"apply", "destroy", "import"}}  # fmt: skip
_NET_CODE = re.compile(
    r"\bsocket\b|urllib|requests\.|http\.client|httpx|urlopen|ftplib|smtplib|paramiko|"
    r"fetch\(|net\.connect|https?\.request|Net::HTTP|LWP::|IO::Socket"
)
_SAFE_WRITE_TARGETS = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/tmp", "/dev/fd")
_PY_DANGER = re.compile(
    r"rmtree|os\.remove|os\.unlink|\.unlink\(|os\.rmdir|\.rmdir\(|os\.system|subprocess|"
    r"os\.popen|os\.exec|shutil\.move|os\.rename|os\.replace|os\.chmod|truncate|"
    r"\bunlink\b|\bsystem\s*\(|\bexec\s*\(|`|\brm\b"
)


def _lex(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


@dataclass
class SimpleCommand:
    words: list[str]  # after assignments and wrappers (sudo, env, ...) are stripped
    raw: list[str]
    redirects: list[str]  # targets of > and >>
    piped_into: bool  # a | precedes this command
    wrapped_by: list[str]
    substituted: bool = False  # an argument comes from $(...), `...` or <(...)
    runs_substitution: bool = False  # the command itself is the output of $(...) or `...`


def parse_commands(command: str) -> list[SimpleCommand] | None:
    """The simple commands of a shell line (also inside $(...) and backticks); None if unparsable."""
    try:
        tokens = _lex(command)
    except ValueError:
        return None
    out: list[SimpleCommand] = []
    current: list[str] = []
    piped = False
    substituted = False  # a $( or <( opened while reading `current`
    for token in [*tokens, ";"]:
        if token in ("$", "<(", ">("):  # "$(" lexes as "$" then "("; "<(" is one token
            if current:
                substituted = True
            elif token == "$":  # $(...) in the command's place: its output is run
                out.append(SimpleCommand([], ["$("], [], piped, [], True, True))
            if token == "$":
                continue
            token = "("
        if token in _OPERATORS or (token and set(token) <= set(";&|()")):
            if current:
                out.append(_simple(current, piped, substituted))
            current = []
            substituted = False
            piped = token in ("|", "|&")
            continue
        current.append(token)
    # Command substitutions hidden inside words ("$(...)" in quotes, backticks).
    for cmd in list(out):
        for word in cmd.raw:
            for inner in re.findall(r"\$\((.*)\)|`([^`]*)`", word):
                text = inner[0] or inner[1]
                nested = parse_commands(text) if text else []
                if nested is None:
                    return None
                out.extend(nested)
    return out


def _simple(tokens: list[str], piped: bool, substituted: bool = False) -> SimpleCommand:
    redirects: list[str] = []
    words: list[str] = []
    i = 0
    redirect_ops = (">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<<", "<>", "<&")
    while i < len(tokens):
        token = tokens[i]
        if token.isdigit() and i + 1 < len(tokens) and tokens[i + 1] in redirect_ops:
            i += 1  # the fd number of "2>&1" / "2> file"
            continue
        if token in (">", ">>", ">|", "&>", "&>>", ">&") and i + 1 < len(tokens):
            target = tokens[i + 1]
            if not (token == ">&" and target.isdigit()):
                redirects.append(target)
            i += 2
            continue
        if token in ("<", "<<", "<<<", "<>"):
            i += 2
            continue
        words.append(token)
        i += 1
    wrapped: list[str] = []
    while words:
        head = words[0]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", head):
            words = words[1:]
            continue
        name = os.path.basename(head)
        if name in _WRAPPERS:
            wrapped.append(name)
            words = words[1:]
            # Skip the wrapper's own options and arguments (timeout 10, nice -n 5, env -i).
            while words and (
                words[0].startswith("-") or (name in ("timeout", "nice") and words[0][:1].isdigit())
            ):
                words = words[1:]
            continue
        break
    substituted = substituted or any("$(" in w or "`" in w for w in tokens)
    runs = bool(words) and words[0].startswith(("$(", "`"))
    if words:
        words = [os.path.basename(words[0]), *words[1:]]
    return SimpleCommand(words, tokens, redirects, piped, wrapped, substituted, runs)


def _flags(words: list[str]) -> set[str]:
    flags: set[str] = set()
    for word in words[1:]:
        if word == "--":
            break
        if word.startswith("--"):
            flags.add(word)
        elif word.startswith("-") and len(word) > 1:
            flags.update(f"-{c}" for c in word[1:])
    return flags


def _operands(words: list[str]) -> list[str]:
    out: list[str] = []
    after_dashdash = False
    for word in words[1:]:
        if word == "--" and not after_dashdash:
            after_dashdash = True
            continue
        if after_dashdash or not word.startswith("-"):
            out.append(word)
    return out


class _Paths:
    def __init__(self, workspace: Path | None) -> None:
        self.root = workspace.resolve() if workspace is not None else None

    def outside(self, target: str, *, allow_tmp: bool = False) -> bool:
        """Whether a path operand points outside the workspace (or cannot be known)."""
        if target.startswith(("~", "$")) or "$(" in target or "`" in target:
            return True
        if allow_tmp and target.startswith("/"):
            normal = os.path.normpath(target)
            if any(normal == p or normal.startswith(p + "/") for p in _SAFE_WRITE_TARGETS):
                return False
        if self.root is None:
            return target.startswith("/") or ".." in Path(target).parts
        path = Path(target) if target.startswith("/") else self.root / target
        resolved = Path(os.path.normpath(path))
        return not (resolved == self.root or self.root in resolved.parents)

    def is_root(self, target: str) -> bool:
        if target in (".", "./", "*", "./*", ".*"):
            return True
        if self.root is None:
            return False
        path = Path(target) if target.startswith("/") else self.root / target
        return Path(os.path.normpath(path)) == self.root


def dangerous_reason(command: str, workspace: Path | None = None, _depth: int = 0) -> str | None:
    """Why a shell command needs a person's approval even in auto mode, or None."""
    if re.search(r":\s*\(\s*\)\s*\{.*\|.*&.*\}", command):
        return "fork bomb"
    if re.search(r"/dev/(tcp|udp)/", command):
        return "opens a network connection (/dev/tcp)"
    commands = parse_commands(command)
    if commands is None:
        return "the command could not be parsed (unbalanced quotes?)"
    paths = _Paths(workspace)
    for cmd in commands:
        reason = _dangerous_simple(cmd, paths, workspace, _depth)
        if reason:
            return reason
    if _depth < 4:  # backticks split into several words when unquoted: read the raw text
        for inner in re.findall(r"`([^`]+)`", command):
            reason = dangerous_reason(inner, workspace, _depth + 1)
            if reason:
                return reason
    return None


def _is_interpreter(name: str) -> bool:
    return name in _INTERPRETERS or re.fullmatch(r"python[\d.]*", name) is not None


def _is_remote(operand: str) -> bool:
    """``host:path``, ``user@host:path`` or ``rsync://`` (not a local path with a colon)."""
    if operand.startswith("rsync://"):
        return True
    return not operand.startswith(("/", ".", "~")) and bool(
        re.match(r"(?:[\w.-]+@)?[\w.-]+:(?!//)", operand)
    )


def _uploads(name: str, words: list[str], flags: set[str]) -> bool:
    """curl/wget sending data to a server (a form, a file, a POST/PUT)."""
    if name == "curl":
        if flags & {"-d", "-F", "-T"} or any(
            w.startswith(("--data", "--form", "--upload-file", "--json")) for w in words
        ):
            return True
        for i, w in enumerate(words):
            method = None
            if w in ("-X", "--request") and i + 1 < len(words):
                method = words[i + 1]
            elif w.startswith("-X") and len(w) > 2:
                method = w[2:]
            elif w.startswith("--request="):
                method = w.split("=", 1)[1]
            if method is not None and method.upper() not in ("GET", "HEAD", "OPTIONS"):
                return True
        return False
    return any(
        w.startswith(("--post-data", "--post-file", "--body-data", "--body-file"))
        or (w.startswith("--method") and not w.upper().endswith(("=GET", "=HEAD")))
        for w in words
    )


def _dangerous_simple(
    cmd: SimpleCommand, paths: _Paths, workspace: Path | None, depth: int
) -> str | None:
    for target in cmd.redirects:
        if paths.outside(target, allow_tmp=True):
            return f"writes to {target} outside the workspace"
    if any(w in ("sudo", "doas") for w in cmd.wrapped_by):
        return "runs with elevated privileges (sudo)"
    if cmd.runs_substitution:
        return "runs a command that a command substitution produces"
    if not cmd.words:
        return None
    name, words = cmd.words[0], cmd.words
    flags = _flags(words)
    operands = _operands(words)
    if name in ("su", "sudo", "doas", "pkexec"):
        return "runs with elevated privileges"
    reads_stdin = not operands or operands[0] in ("-", "/dev/stdin")
    if cmd.piped_into and (
        name in _SHELLS or name in ("source", ".") or (_is_interpreter(name) and reads_stdin)
    ):
        return f"pipes data into {name} (e.g. curl | sh runs downloaded code)"
    if name == "eval":
        return "eval runs text as a command"
    if cmd.substituted and (
        name in _SHELLS
        or name in ("source", ".")
        or (_is_interpreter(name) and (flags & {"-c", "-e", "-E"} or not operands))
    ):
        return f"{name} runs code produced by a command substitution"
    if "xargs" in cmd.wrapped_by and name in _XARGS_DANGER:
        return f"xargs {name} acts on names read from another command"
    if name in _REMOTE:
        return f"{name} connects to another host"
    if name == "rsync" and any(_is_remote(t) for t in operands):
        return "rsync to or from another host"
    if name in ("curl", "wget") and _uploads(name, words, flags):
        return f"{name} sends data to a server"
    if len(words) > 1 and (name, words[1]) in _PUBLISH:
        return f"{name} {words[1]} publishes to a registry"
    if name in _CLUSTER and len(words) > 1 and words[1] in _CLUSTER[name]:
        return f"{name} {words[1]} changes remote infrastructure"
    if name == "crontab" and flags != {"-l"}:
        return "crontab changes scheduled jobs"
    if name in ("at", "batch", "systemd-run", "launchctl"):
        return f"{name} starts processes outside the sandbox"
    if name in ("docker", "podman", "nerdctl"):
        head = words[1:4]
        if any(w in ("prune", "rm", "rmi", "kill") for w in head):
            return f"{name} {' '.join(head)} deletes containers, images or volumes"
        if "--privileged" in words or any(
            w.startswith(("/:", "--pid=host")) or "docker.sock" in w for w in words
        ):
            return f"{name} gives a container the host (privileged, / or the docker socket)"
    if name == "tee" and any(paths.outside(t, allow_tmp=True) for t in operands):
        return "tee writes outside the workspace"
    in_place = "-i" in flags or any(w.startswith("--in-place") for w in words)
    if (
        name in ("sed", "perl")
        and in_place
        and any(
            t.startswith(("/", "~", "$")) and paths.outside(t, allow_tmp=True) for t in operands
        )
    ):
        return f"{name} -i edits files outside the workspace"
    if name in ("unlink", "rmdir") and any(paths.outside(t) for t in operands):
        return f"{name} deletes outside the workspace"
    if name in ("awk", "gawk", "mawk", "nawk") and operands and _PY_DANGER.search(operands[0]):
        return f"{name} program that runs commands"
    if name in _SHELLS:
        inner = None
        if "-c" in words:
            index = words.index("-c")
            inner = words[index + 1] if index + 1 < len(words) else None
        if inner and depth < 4:
            return dangerous_reason(inner, workspace, depth + 1)
        return None
    if name == "rm":
        recursive = flags & {"-r", "-R", "--recursive"}
        for target in operands:
            if paths.outside(target):
                return f"deletes {target}, outside the workspace"
            if recursive and paths.is_root(target):
                return "deletes the whole workspace"
        if recursive and "--no-preserve-root" in flags:
            return "rm --no-preserve-root"
        return None
    if name in ("mv", "cp", "rsync", "ln", "install") and any(
        paths.outside(t, allow_tmp=True) for t in operands
    ):
        return f"{name} touches paths outside the workspace"
    if name == "git" and len(words) > 1:
        sub = words[1]
        if sub == "reset" and "--hard" in words:
            return "git reset --hard discards uncommitted changes"
        if sub == "clean" and not flags & {"-n", "--dry-run"}:
            return "git clean deletes untracked files"
        if sub == "push" and (
            flags & {"-f", "--force", "--force-with-lease", "--mirror", "--delete", "-d"}
            or any(w.startswith("+") or w.startswith(":") for w in words[2:])
        ):
            return "force or delete push rewrites the remote"
        if sub == "config" and flags & {"--global", "--system"} and len(operands) > 2:
            return "git config --global changes settings outside the workspace"
        if (
            sub in ("checkout", "restore")
            and any(t in (".", "--", ":/") for t in words[2:])
            and "-b" not in flags
        ):
            return f"git {sub} discards uncommitted changes"
        if sub == "branch" and "-D" in flags:
            return "git branch -D deletes a branch"
        if sub == "stash" and len(words) > 2 and words[2] in ("drop", "clear"):
            return "git stash drop/clear loses stashed work"
        if sub == "filter-branch" or (sub == "reflog" and "expire" in words):
            return f"git {sub} rewrites history"
    if name == "find" and (
        "-delete" in words or any(w in ("-exec", "-execdir", "-ok") for w in words)
    ):
        if "-delete" in words:
            return "find -delete deletes files"
        exec_at = next(i for i, w in enumerate(words) if w in ("-exec", "-execdir", "-ok"))
        if exec_at + 1 < len(words) and os.path.basename(words[exec_at + 1]) in (
            {"rm", "shred", "chmod", "chown", "mv", "unlink", *_SHELLS}
        ):
            return f"find -exec {words[exec_at + 1]} changes many files"
    if name == "dd":
        return "dd writes raw data"
    if name.startswith("mkfs") or name in (
        "fdisk",
        "sfdisk",
        "parted",
        "wipefs",
        "mkswap",
        "shred",
        "losetup",
    ):
        return f"{name} can destroy disks or data"
    if name in ("chmod", "chown", "chgrp") and flags & {"-R", "--recursive"}:
        return f"{name} -R changes permissions recursively"
    if name in ("chmod", "chown", "chgrp") and any(paths.outside(t) for t in operands[1:]):
        return f"{name} outside the workspace"
    if name in ("shutdown", "reboot", "halt", "poweroff", "init", "systemctl", "killall", "pkill"):
        return f"{name} affects the whole machine"
    if name == "kill" and any(
        t in ("-1", "1") for t in operands + [w for w in words[1:] if w == "-1"]
    ):
        return "kill -1 kills every process"
    if name in ("curl", "wget") and any(
        t.startswith("/") and paths.outside(t, allow_tmp=True) for t in words
    ):
        return f"{name} writes outside the workspace"
    if name.startswith("python") or name in ("perl", "ruby", "node"):
        code_flag = {"python": "-c", "perl": "-e", "ruby": "-e", "node": "-e"}
        key = "python" if name.startswith("python") else name
        flag = code_flag[key]
        for i, word in enumerate(words[1:-1], start=1):
            if word == flag or (key == "perl" and word in ("-E",)):
                code = words[i + 1]
                if _PY_DANGER.search(code):
                    return f"{name} {flag} code that deletes files or runs commands"
                if _NET_CODE.search(code):
                    return f"{name} {flag} code that opens network connections"
    if name in ("truncate",) and any(paths.outside(t) for t in operands):
        return "truncate outside the workspace"
    return None


# Commands that only read (checkpoints skip them). Conservative: anything else may write.
_READ_ONLY = {"ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "rg", "ag", "pwd",
              "echo", "printf", "true", "false", "stat", "file", "du", "df", "tree", "which",
              "type", "whoami", "id", "uname", "date", "env", "printenv", "diff", "cmp", "less",
              "more", "nl", "cut", "tr", "uniq", "basename", "dirname", "realpath", "readlink",
              "md5sum", "sha1sum", "sha256sum", "test", "[", "jq", "column", "hostname",
              "fd", "locate", "cd"}  # fmt: skip
_READ_ONLY_GIT = {"status", "diff", "log", "show", "blame", "grep", "ls-files", "rev-parse",
                  "branch", "describe", "shortlog", "ls-tree", "cat-file", "remote"}  # fmt: skip
_FIND_WRITES = {"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprintf", "-fls",
                "-fprint0"}  # fmt: skip


def read_only_command(command: str) -> bool:
    """Whether a shell line certainly changes no file (``ls``, ``grep -r x``, ``git diff``,
    ``cat a | wc -l``): known read-only commands, no redirect to a file, no substitution.
    False when unsure."""
    commands = parse_commands(command)
    if not commands:
        return False
    for cmd in commands:
        if cmd.substituted or cmd.runs_substitution or not cmd.words:
            return False
        if any(t not in ("/dev/null", "/dev/stdout", "/dev/stderr") for t in cmd.redirects):
            return False
        if set(cmd.wrapped_by) - {"time", "nice", "timeout", "command"}:
            return False
        name, args = cmd.words[0], cmd.words[1:]
        if name == "git":
            sub = next((a for a in args if not a.startswith("-")), "")
            if sub not in _READ_ONLY_GIT or (sub == "branch" and len(args) > 1):
                return False
            if any(a.startswith("--output") for a in args):
                return False
        elif name in ("find", "sort"):
            if name == "find" and _FIND_WRITES & set(args):
                return False
            if name == "sort" and any(a == "-o" or a.startswith("--output") for a in args):
                return False
        elif name not in _READ_ONLY:
            return False
    return True


__all__ = ["SimpleCommand", "dangerous_reason", "parse_commands", "read_only_command"]
