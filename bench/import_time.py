"""How long `import gemma_agent` takes in a fresh interpreter (goal < 0.5 s), best of 5."""

from __future__ import annotations

import subprocess
import sys
import time


def main() -> None:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import gemma_agent"], check=True)
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    best = min(runs)
    print(
        f"import gemma_agent: best {best * 1000:.0f} ms (interpreter alone {bare * 1000:.0f} ms, "
        f"import cost {max(best - bare, 0) * 1000:.0f} ms) goal < 500 ms"
    )


if __name__ == "__main__":
    main()
