from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# The Gemma 4 test vectors live next to the repository: ../shared/gemma4/examples.
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "gemma4" / "examples"
FAMILY_FILES = {"L": "31B_26B", "S": "E2B_E4B"}
FAMILY_VARIANT = {"L": "31B", "S": "E4B"}


def example_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(EXAMPLES.glob("*.input.json")):
        cases.append((path.name.removesuffix(".input.json"), json.loads(path.read_text())))
    return cases


def expected(name: str, family: str) -> str:
    return (EXAMPLES / f"{name}.{FAMILY_FILES[family]}.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def examples() -> list[tuple[str, dict[str, Any]]]:
    cases = example_cases()
    assert len(cases) == 5, f"expected 5 Gemma 4 example cases in {EXAMPLES}"
    return cases
