from __future__ import annotations

import itertools

import pytest
from gemma_agent.evals.metrics import pass_at_k, pass_at_k_table, summarize
from gemma_agent.evals.results import SampleResult
from hypothesis import given
from hypothesis import strategies as st


@given(
    st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n)))
)
def test_pass_at_k_matches_enumeration(nck):
    n, c, k = nck
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    expected = sum(any(s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_bad_input():
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def r(task: str, sample: int, status: str) -> SampleResult:
    return SampleResult(task_id=task, sample=sample, passed=status == "passed", status=status)


def test_table_excludes_errors():
    results = [
        r("a", 0, "passed"),
        r("a", 1, "failed"),
        r("b", 0, "failed"),
        r("b", 1, "timeout"),
        r("c", 0, "error"),  # c has one graded sample: counts for k=1 only
        r("c", 1, "passed"),
    ]
    table = pass_at_k_table(results, 2)
    assert table["1"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert table["2"] == pytest.approx((1.0 + 0.0) / 2)


def test_summary_counts():
    results = [r("a", 0, "passed"), r("b", 0, "failed"), r("c", 0, "error"), r("d", 0, "timeout")]
    s = summarize(results, samples=1, config={"suite": "x"})
    assert (s["total"], s["passed"], s["failed"], s["errors"], s["timeouts"]) == (4, 1, 1, 1, 1)
    assert s["pass_at_k"] == {"1": pytest.approx(1 / 3)}
    assert s["config"] == {"suite": "x"}
