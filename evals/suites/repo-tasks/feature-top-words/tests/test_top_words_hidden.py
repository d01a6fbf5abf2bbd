from wordstats import top_words, word_count


def test_basic():
    text = "the cat and the hat and the bat"
    assert top_words(text, 2) == [("the", 3), ("and", 2)]


def test_case_and_punctuation():
    text = "Apple! apple? APPLE. banana, Banana; cherry"
    assert top_words(text, 3) == [("apple", 3), ("banana", 2), ("cherry", 1)]


def test_ties_alphabetical():
    assert top_words("b a c b a c d", 3) == [("a", 2), ("b", 2), ("c", 2)]


def test_apostrophes():
    text = "Don't stop. don't 'quote' it's"
    assert top_words(text, 10) == [("don't", 2), ("it's", 1), ("quote", 1), ("stop", 1)]


def test_limits():
    assert top_words("a b", 10) == [("a", 1), ("b", 1)]
    assert top_words("a b", 0) == []
    assert top_words("", 3) == []


def test_word_count_unchanged():
    assert word_count("Hello, world! 42 times") == 4
