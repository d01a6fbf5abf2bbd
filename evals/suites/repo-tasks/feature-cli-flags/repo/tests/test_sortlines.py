from sortlines import main


def test_sorts(tmp_path, capsys):
    p = tmp_path / "in.txt"
    p.write_text("b\na\nc\n")
    assert main([str(p)]) == 0
    assert capsys.readouterr().out == "a\nb\nc\n"
