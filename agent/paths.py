"""Where gemma-agent keeps its files: the cache (the tiny model, vLLM's compile cache)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """The project cache: $GEMMA_AGENT_CACHE, else <repo>/.cache in a source checkout, else
    ~/.cache/gemma-agent."""
    env = os.environ.get("GEMMA_AGENT_CACHE")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file() and os.access(repo, os.W_OK):
        return repo / ".cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gemma-agent"
