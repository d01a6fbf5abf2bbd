from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gemma_agent.prompts import render_ids
from gemma_agent.prompts import tokens as T

# The golden renderings by the official Gemma 4 templates (data, kept byte-exact; see the
# folder's README.md). Each case has an input and one expected rendering per template family.
GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_CASES = (
    "01_plain_with_tools",
    "02_thinking_enabled",
    "03a_tool_roundtrip_openai_style_thinking_off",
    "03b_tool_roundtrip_thinking_on_native_tool_responses",
    "04_multiple_tool_calls",
)
FAMILY_FILES = {"L": "31B_26B", "S": "E2B_E4B"}
FAMILY_VARIANT = {"L": "31B", "S": "E4B"}


class GoldenDataError(RuntimeError):
    """The golden folder does not hold exactly the expected files."""


def _check_golden_folder() -> None:
    """Fail collection (never skip) unless the golden folder holds exactly the expected files."""
    wanted: set[str] = set()
    for name in GOLDEN_CASES:
        wanted |= {f"{name}.input.json", *(f"{name}.{f}.txt" for f in FAMILY_FILES.values())}
    if not GOLDEN.is_dir():
        raise GoldenDataError(
            f"the golden Gemma 4 renderings are missing: no folder {GOLDEN}. They are test data "
            "tracked in git: restore them (git checkout -- tests/prompts/golden)."
        )
    found = {p.name for p in GOLDEN.iterdir()} - {"README.md"}
    missing, extra = sorted(wanted - found), sorted(found - wanted)
    if missing or extra:
        raise GoldenDataError(
            f"the golden Gemma 4 renderings in {GOLDEN} are not the expected files: "
            + (f"missing {', '.join(missing)}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected {', '.join(extra)}" if extra else "")
            + ". They are test data tracked in git: restore them (git checkout -- "
            "tests/prompts/golden), and update GOLDEN_CASES when adding a case."
        )


_check_golden_folder()


def example_cases() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, json.loads((GOLDEN / f"{name}.input.json").read_text(encoding="utf-8")))
        for name in GOLDEN_CASES
    ]


def expected(name: str, family: str) -> str:
    return (GOLDEN / f"{name}.{FAMILY_FILES[family]}.txt").read_text(encoding="utf-8")


# Every example in both families, for parametrized tests.
CASES = [(name, case, fam) for name, case in example_cases() for fam in ("L", "S")]
CASE_IDS = [f"{name}-{fam}" for name, _, fam in CASES]


def assert_ids_match_whole_text(tok: Any, name: str, case: dict[str, Any], family: str) -> None:
    """The ids rendered piece by piece (control tokens as ids, payload text on its own) equal
    tokenizing the whole expected text."""
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
    assert len(cases) == 5, f"expected 5 Gemma 4 golden cases in {GOLDEN}"
    return cases
