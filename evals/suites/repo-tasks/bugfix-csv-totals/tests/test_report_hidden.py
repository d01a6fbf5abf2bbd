from report import totals_by_category


def write(tmp_path, text):
    p = tmp_path / "data.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_simple(tmp_path):
    p = write(tmp_path, "name,category,amount\napple,fruit,1.5\npear,fruit,2\nleek,veg,3.25\n")
    assert totals_by_category(p) == {"fruit": 3.5, "veg": 3.25}


def test_quoted_commas(tmp_path):
    p = write(
        tmp_path,
        'name,category,amount\n"Widget, large",tools,10.10\n"Bolt",tools,0.2\n"Saw","hand, tools",5\n',
    )
    assert totals_by_category(p) == {"tools": 10.3, "hand, tools": 5.0}


def test_no_trailing_newline(tmp_path):
    p = write(tmp_path, "name,category,amount\na,x,1")
    assert totals_by_category(p) == {"x": 1.0}


def test_blank_lines_ignored(tmp_path):
    p = write(tmp_path, "name,category,amount\na,x,1\n\nb,x,2\n\n")
    assert totals_by_category(p) == {"x": 3.0}


def test_header_only(tmp_path):
    p = write(tmp_path, "name,category,amount\n")
    assert totals_by_category(p) == {}
