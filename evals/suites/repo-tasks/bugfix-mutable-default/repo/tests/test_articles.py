from articles import Article, add_tag


def test_add_tag_to_given_list():
    tags = ["a"]
    assert add_tag("b", tags) == ["a", "b"]
    assert add_tag("a", tags) == ["a", "b"]


def test_article_tags():
    art = Article("x").tag("py", "py", "news")
    assert art.tags == ["py", "news"]
