from wordstats import word_count


def test_word_count():
    assert word_count("Hello, world! 42 times") == 4
