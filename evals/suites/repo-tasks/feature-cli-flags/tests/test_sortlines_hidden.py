from sortlines import main


def run(tmp_path, capsys, text, *flags):
    p = tmp_path / "in.txt"
    p.write_text(text)
    code = main([*flags, str(p)])
    return code, capsys.readouterr().out.splitlines()


def test_plain(tmp_path, capsys):
    assert run(tmp_path, capsys, "b\na\nc\n") == (0, ["a", "b", "c"])


def test_reverse(tmp_path, capsys):
    assert run(tmp_path, capsys, "b\na\nc\n", "--reverse") == (0, ["c", "b", "a"])


def test_unique(tmp_path, capsys):
    assert run(tmp_path, capsys, "b\na\nb\na\n", "--unique") == (0, ["a", "b"])


def test_numeric(tmp_path, capsys):
    text = "10 apples\n9 pears\nzebra\n100 figs\napple\n-1 debt\n"
    code, out = run(tmp_path, capsys, text, "--numeric")
    assert code == 0
    assert out == ["-1 debt", "9 pears", "10 apples", "100 figs", "zebra", "apple"]


def test_combined(tmp_path, capsys):
    code, out = run(tmp_path, capsys, "2 b\n10 a\n2 b\n", "--numeric", "--reverse", "--unique")
    assert (code, out) == (0, ["10 a", "2 b"])


def test_missing_file(tmp_path, capsys):
    code = main([str(tmp_path / "nope.txt")])
    assert code == 2
    assert capsys.readouterr().err.strip()
