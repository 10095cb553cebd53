import re
from collections import Counter

WORD = re.compile(r"[A-Za-z']+")


def words(text):
    """Yield the lower-cased words of text."""
    for match in WORD.finditer(text):
        yield match.group(0).lower()


def frequencies(text, top=10):
    counts = Counter(words(text))
    return counts.most_common(top)


def sentence_lengths(text):
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    return [len(list(words(s))) for s in sentences]


def mean(values):
    values = list(values)
    if not values:
        return 0.0
    return sum(values) / len(values)


def summary(text):
    lengths = sentence_lengths(text)
    return {
        "sentences": len(lengths),
        "mean_length": round(mean(lengths), 2),
        "longest": max(lengths, default=0),
        "top_words": frequencies(text, 5),
    }


if __name__ == "__main__":
    import sys
    print(summary(sys.stdin.read()))
