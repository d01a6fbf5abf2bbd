import re
from collections import Counter

WORD = re.compile(r"[A-Za-z0-9]+")
_WORD_WITH_APOSTROPHES = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")


def word_count(text: str) -> int:
    return len(WORD.findall(text))


def top_words(text: str, n: int):
    if n <= 0:
        return []
    counts = Counter(w.lower() for w in _WORD_WITH_APOSTROPHES.findall(text))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
