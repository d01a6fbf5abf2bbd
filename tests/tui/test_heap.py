"""The app's garbage-collection policy: frozen while streaming, collected between runs."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from gemma_agent.tui.heap import HeapPolicy

from .harness import THINK_ANSWER, THINK_TWO_CALLS, make_app, send, wait_for, wait_idle


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_frozen_cyclic_garbage_is_freed_by_a_full_settle() -> None:
    heap = HeapPolicy()
    try:
        heap.settle(full=True)
        node = Node()
        ref = weakref.ref(node)
        heap.freeze()
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert ref() is not None  # frozen: collections skip it
        heap.settle()  # little growth since the last full one: young objects only
        assert ref() is not None and heap.full_collections == 1
        heap.settle(full=True)
        assert ref() is None and heap.full_collections == 2
        # Other threads (an engine from earlier tests) may allocate a few objects meanwhile.
        assert abs(heap.base - gc.get_freeze_count()) < 1000
    finally:
        heap.release()
    assert gc.get_freeze_count() == 0


def test_settle_goes_full_when_the_frozen_heap_grew_by_a_quarter() -> None:
    heap = HeapPolicy()
    heap.MIN_GROWTH = 1000
    try:
        heap.settle(full=True)
        keep = [Node() for _ in range(max(2000, heap.base // 4 + 10))]
        heap.freeze()
        heap.settle()
        assert heap.full_collections == 2
        del keep
    finally:
        heap.release()


async def test_app_freezes_during_runs_and_releases_on_exit(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER])
    async with app.run_test(size=(110, 40)) as pilot:
        await send(pilot, "What is in this folder?")
        await wait_idle(pilot)
        assert app.heap.frozen and gc.get_freeze_count() > 0
        # The first settle after startup is a full one.
        await wait_for(pilot, lambda: app.heap.full_collections >= 1, limit=5)
    assert not app.heap.frozen and gc.get_freeze_count() == 0
