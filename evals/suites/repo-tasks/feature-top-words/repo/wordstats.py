import re

WORD = re.compile(r"[A-Za-z0-9]+")


def word_count(text: str) -> int:
    return len(WORD.findall(text))
