"""The pure helpers behind the cards: folding, diffs, previews."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.tui.format import (
    fmt_duration,
    fmt_tokens,
    fold_text,
    format_arguments,
    one_line_arguments,
    result_preview,
    tool_diff,
)


def test_fold_long_strings_and_many_lines() -> None:
    assert fold_text("short") == "short"
    folded = fold_text("x" * 1000, max_chars=100)
    assert folded.startswith("x" * 100) and folded.endswith("(+900 chars)")
    many = "\n".join(str(i) for i in range(20))
    assert fold_text(many, max_lines=3).endswith("(+17 lines)")
    text = format_arguments({"path": "a.py", "content": "line\n" * 50})
    assert text.startswith("path: a.py\ncontent:\n  line") and "+46 lines" in text


def test_one_line_arguments_prefers_telling_keys() -> None:
    assert one_line_arguments({"command": "ls -la\npwd"}) == "ls -la ⏎ pwd"
    assert one_line_arguments({"path": "x" * 100}, 10) == "x" * 9 + "…"
    assert one_line_arguments({"n": 3, "flag": True}) == "n=3, flag=true"


def test_result_preview_and_numbers() -> None:
    text, more = result_preview({"exit_code": 0, "output": "a\n" * 20})
    assert text.startswith("exit_code: 0\na") and more
    assert result_preview("ok") == ("ok", False)
    assert fmt_tokens(950) == "950" and fmt_tokens(12_345) == "12.3k"
    assert fmt_duration(3.21) == "3.2s" and fmt_duration(75) == "1m 15s"


def test_write_file_diff_against_the_file_on_disk(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    diff = tool_diff("write_file", {"path": "a.txt", "content": "one\nthree\n"}, tmp_path)
    assert diff is not None
    assert "-two" in diff and "+three" in diff and diff.startswith("--- a/a.txt\n+++ b/a.txt")
    new = tool_diff("write_file", {"path": "new.txt", "content": "hi\n"}, tmp_path)
    assert new is not None and "+hi" in new
    assert tool_diff("write_file", {"path": "a.txt", "content": "one\ntwo\n"}, tmp_path) is None


def test_edit_file_diff_applies_the_edits(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f():\n    return 1\n")
    args = {"path": "m.py", "edits": [{"old_text": "return 1", "new_text": "return 2"}]}
    diff = tool_diff("edit_file", args, tmp_path)
    assert diff is not None and "-    return 1" in diff and "+    return 2" in diff
    assert " def f():" in diff  # context from the file
    # No such file: the pieces alone.
    args["path"] = "missing.py"
    diff = tool_diff("edit_file", args, tmp_path)
    assert diff is not None and "-return 1" in diff and "+return 2" in diff
    assert tool_diff("read_file", {"path": "m.py"}, tmp_path) is None


def test_context_gauge_reads_against_the_whole_window_and_marks_the_reserve() -> None:
    from gemma_agent.tui.chrome import StatusInfo, status_text

    # The tiny model's 4K window with a 512-token output reserve: a history past the usable
    # limit (it used to read "5.6k/4.1k 136%") stays under 100% of the window.
    text = status_text(StatusInfo(context_tokens=3900, context_limit=3584, context_window=4096))
    assert "3.9k/4.1k 95%" in text.plain, text.plain
    half = status_text(StatusInfo(context_tokens=3000, context_limit=3584, context_window=4096))
    assert half.plain.split(" │ ")[2] == "▰▰▰▰▰▰▱░ 3.0k/4.1k 73%"
    empty = status_text(StatusInfo(context_tokens=0, context_limit=3584, context_window=4096))
    assert empty.plain.split(" │ ")[2].startswith("▱▱▱▱▱▱▱░ 0/4.1k 0%")
    # Without a known window the usable limit stands in (no reserve cells).
    assert "░" not in status_text(StatusInfo(context_tokens=10, context_limit=100)).plain
