from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gemma_agent.prompts import render_ids
from gemma_agent.prompts import tokens as T

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


# Every example in both families, for parametrized tests.
CASES = [(name, case, fam) for name, case in example_cases() for fam in ("L", "S")]
CASE_IDS = [f"{name}-{fam}" for name, _, fam in CASES]


def assert_ids_match_whole_text(tok: Any, name: str, case: dict[str, Any], family: str) -> None:
    """K2: the ids rendered piece by piece equal tokenizing the whole expected text."""
    ids = render_ids(
        case["messages"],
        case.get("tools"),
        tok,
        variant=FAMILY_VARIANT[family],
        **case.get("kwargs", {}),
    )
    text = expected(name, family)
    assert ids == tok.encode(text)
    bos = tok.control_id(T.BOS)
    assert ids[0] == bos and ids.count(bos) == 1
    assert tok.decode(ids) == text


@pytest.fixture(scope="session")
def examples() -> list[tuple[str, dict[str, Any]]]:
    cases = example_cases()
    assert len(cases) == 5, f"expected 5 Gemma 4 example cases in {EXAMPLES}"
    return cases
