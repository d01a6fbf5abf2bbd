"""The headless face: `gemma-agent run "task"` prints one run's events (rich, or JSON lines)."""

from __future__ import annotations

from .app import run_headless

__all__ = ["run_headless"]
