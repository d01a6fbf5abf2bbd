"""Keep the garbage collector's full passes out of streaming.

A full (generation 2) collection walks every object the interpreter tracks. With a long
transcript that took 100-150 ms of CPU here (0.4-0.5 s once vLLM, torch and transformers are
imported), and the UI cannot paint meanwhile: these pauses were the benchmark's p99
(bench/tui_stream.py). So while a run streams, the app freezes what exists when a turn ends
(``gc.freeze``: later collections skip those objects; it costs nothing). Between runs it
collects the young objects, and makes a full collection only when the frozen heap has grown by a
quarter since the last one: CPython's own rule for full collections, moved out of streaming.
Young garbage is collected as usual throughout.
"""

from __future__ import annotations

import gc


class HeapPolicy:
    MIN_GROWTH = 50_000  # frozen objects added before a full collection is worth its pause

    def __init__(self) -> None:
        self.frozen = False
        self.base = 0  # frozen objects after the last full collection
        self.full_collections = 0

    def freeze(self) -> None:
        """Exclude every object alive now from later collections (until a full ``settle``)."""
        gc.freeze()
        self.frozen = True

    def settle(self, *, full: bool = False) -> None:
        """Between runs (a pause, so call it when nothing streams): collect, then freeze."""
        grown = gc.get_freeze_count() - self.base
        if full or grown > max(self.MIN_GROWTH, self.base // 4):
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.base = gc.get_freeze_count()
            self.full_collections += 1
        else:
            gc.collect()  # skips the frozen objects: quick
            gc.freeze()
        self.frozen = True

    def release(self) -> None:
        """Back to the interpreter's normal collection (the app is leaving)."""
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
