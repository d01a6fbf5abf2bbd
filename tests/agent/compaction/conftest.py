from __future__ import annotations

import pytest


@pytest.fixture
def spill(tmp_path):
    """The real spill store of the tools package (the one `recall_output` reads)."""
    from gemma_agent.tools.spill import SpillStore

    return SpillStore(tmp_path / "spill")
