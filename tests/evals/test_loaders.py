from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent.errors import ConfigError
from gemma_agent.evals.loaders import builtin_suites_dir, load_suite

from .helpers import humaneval_jsonl, write_task


def test_humaneval_is_the_bundled_164_problems():
    suite = load_suite("humaneval")
    assert len(suite.tasks) == 164
    first = suite.tasks[0]
    assert first.id == "HumanEval/0"
    assert first.files["solution.py"].decode().startswith("from typing import List")
    assert "has_close_elements" in first.instruction
    # The hidden test is not in the starting files, and the reference builds on the prompt.
    assert "tests/test_humaneval.py" in first.tests and "tests/test_humaneval.py" not in first.files
    assert first.solution_files["solution.py"].startswith(first.files["solution.py"])


def test_repo_tasks_suite_is_large_and_varied():
    suite = load_suite("repo-tasks")
    assert len(suite.tasks) >= 20
    assert set(suite.categories()) >= {"bugfix", "feature", "refactor"}
    for task in suite.tasks:
        assert task.files and task.tests and task.has_reference, task.id
        # Hidden tests never ship in the starting files.
        assert not set(task.tests) & set(task.files), task.id
    assert any(t.solution_patch for t in suite.tasks)  # the patch form is exercised too


def test_builtin_suite_is_package_data():
    assert (builtin_suites_dir() / "repo-tasks").is_dir()


def test_humaneval_jsonl(tmp_path: Path):
    path = humaneval_jsonl(
        tmp_path / "mini.jsonl",
        [
            {
                "task_id": "Mini/0",
                "prompt": "def inc(x):\n",
                "entry_point": "inc",
                "canonical_solution": "    return x + 1\n",
                "test": "def check(candidate):\n    assert candidate(1) == 2\n",
            }
        ],
    )
    suite = load_suite(f"humaneval-jsonl:{path}")
    assert [t.id for t in suite.tasks] == ["Mini/0"]


def test_humaneval_jsonl_missing_field(tmp_path: Path):
    path = humaneval_jsonl(tmp_path / "bad.jsonl", [{"task_id": "x", "prompt": "p"}])
    with pytest.raises(ConfigError, match="entry_point"):
        load_suite(f"humaneval-jsonl:{path}")


def test_task_folder_and_folder_of_tasks(tmp_path: Path):
    one = write_task(tmp_path / "suite", "t1", repo={"a.py": "x = 1\n"}, tests={"test_a.py": ""})
    write_task(tmp_path / "suite", "t2", repo={"a.py": "x = 2\n"}, tests={"test_a.py": ""})
    assert [t.id for t in load_suite(str(one)).tasks] == ["t1"]
    suite = load_suite(str(tmp_path / "suite"))
    assert [t.id for t in suite.tasks] == ["t1", "t2"]
    assert suite.tasks[0].tests == {"tests/test_a.py": b""}


def test_suite_toml(tmp_path: Path):
    for name in ("a1", "a2", "b1"):
        write_task(tmp_path, name, repo={"m.py": ""}, tests={"test_m.py": ""})
    (tmp_path / "suite.toml").write_text('tasks = ["a*"]\n')
    assert [t.id for t in load_suite(str(tmp_path / "suite.toml")).tasks] == ["a1", "a2"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('instruction = "x"\nbogus = 1\n', "unknown keys bogus"),
        ("category = 'x'\n", "instruction"),
        ('instruction = "x"\nsetup = 3\n', "setup"),
        ('instruction = "x"\ntest_timeout = -1\n', "positive"),
        ("instruction = ", "invalid TOML"),
    ],
)
def test_bad_task_toml(tmp_path: Path, toml: str, message: str):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "task.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_suite(str(tmp_path / "t"))


def test_unknown_suite_says_what_to_use():
    with pytest.raises(ConfigError, match="built-in name"):
        load_suite("no-such-suite")
