"""Checkpoints: the cost of a snapshot after a one-file edit, and of a restore.

Builds two repositories in a temporary folder: 1,000 files (~20 MB) and 10,000 files (~200 MB,
20 KB each, in 100 folders), takes the first snapshot (every file hashed once), then repeats:
edit one file, snapshot. Prints the median and p90 of that snapshot in ms (goal: <= 100 ms at
10,000 files, and 10,000 within 1.5x of 1,000: the stat cache makes the cost follow what
changed, not the repository's size). Then changes 100 files and times restoring them from the
snapshot before (goal: <= 1 s).

    .venv/bin/python bench/checkpoint.py [--sizes 1000 10000] [--file-kb 20] [--repeat 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from gemma_agent.agent.checkpoints import CheckpointStore


def build(root: Path, files: int, size: int) -> list[Path]:
    paths = []
    block = (b"x = 1  # filler line for the checkpoint benchmark\n" * (size // 50 + 1))[:size]
    for i in range(files):
        folder = root / f"pkg{i % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"mod{i:05d}.py"
        p.write_bytes(f"# file {i}\n".encode() + block)
        paths.append(p)
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    return paths


def measure(files: int, size: int, repeat: int) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ws, store_root = Path(tmp) / "ws", Path(tmp) / "store"
        paths = build(ws, files, size)
        # Files written in the same second as git's index are "racily clean": git re-reads
        # them until the index is rewritten later. A repository is older than its first
        # snapshot in real use; here the build just happened.
        time.sleep(1.1)
        store = CheckpointStore(ws, root=store_root)
        t0 = time.perf_counter()
        store.snapshot()
        first = time.perf_counter() - t0
        times = []
        for n in range(repeat):
            p = paths[(n * 7919) % len(paths)]
            with open(p, "a") as f:
                f.write(f"edit {n}\n")
            t0 = time.perf_counter()
            store.snapshot()
            times.append((time.perf_counter() - t0) * 1000)
        before = store.snapshot().commit
        changed = [paths[(n * 104729) % len(paths)] for n in range(100)]
        for p in changed:
            p.write_text("rewritten by the agent\n")
        os.sync()
        after = store.snapshot().commit
        restore = store.changed(before, after)
        assert len(restore) == 100, len(restore)
        t0 = time.perf_counter()
        store.restore(before, restore)
        restored = time.perf_counter() - t0
        tree = store.git("rev-parse", before + "^{tree}")
        assert store.git("rev-parse", store.snapshot().commit + "^{tree}") == tree
        times.sort()
        return first, statistics.median(times), times[int(len(times) * 0.9) - 1], restored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--file-kb", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=21)
    args = ap.parse_args()
    medians = {}
    print(
        f"{'files':>7} {'MB':>6} {'first':>9} {'median ms':>10} {'p90 ms':>8} {'restore 100':>12}"
    )
    for files in args.sizes:
        first, median, p90, restored = measure(files, args.file_kb * 1024, args.repeat)
        medians[files] = median
        mb = files * args.file_kb / 1024
        print(
            f"{files:>7} {mb:>6.0f} {first * 1000:>7.0f}ms {median:>10.1f} {p90:>8.1f} "
            f"{restored * 1000:>10.0f}ms"
        )
    if len(medians) >= 2:
        small, large = min(medians), max(medians)
        print(f"ratio {large}/{small} files: {medians[large] / medians[small]:.2f}x (goal <= 1.5)")


if __name__ == "__main__":
    main()
