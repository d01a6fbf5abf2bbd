from articles import Article, add_tag


def test_default_list_is_fresh():
    assert add_tag("a") == ["a"]
    assert add_tag("b") == ["b"]


def test_articles_do_not_share_tags():
    first = Article("first").tag("python")
    second = Article("second")
    assert second.tags == []
    second.tag("rust")
    assert first.tags == ["python"]
    assert second.tags == ["rust"]


def test_tag_order_and_duplicates():
    art = Article("t").tag("b", "a", "b", "c", "a")
    assert art.tags == ["b", "a", "c"]
