"""SQuAD v1.1 scoring as the official script does it: answers normalised (lower case, no
punctuation, no articles a/an/the, single spaces); exact match and token F1, each the best over
the gold answers, averaged over questions and reported in percent."""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def score(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """``exact_match`` and ``f1`` in percent over the questions of ``answers`` (a missing prediction scores 0)."""
    em = sum(max(exact_match(predictions.get(q, ""), t) for t in truths) for q, truths in answers.items())
    f = sum(max(f1(predictions.get(q, ""), t) for t in truths) for q, truths in answers.items())
    return {"exact_match": 100 * em / len(answers), "f1": 100 * f / len(answers)}
