"""Generate the MLM corpus and the extractive QA set (SQuAD v1.1 format) of
``distilbert-nas/minilm-wordnet-qa`` from WordNet glosses and examples.

    apt-get install --no-install-recommends wordnet-base
    python -m bench_nas.wordnet_data [/usr/share/wordnet] [problems/bench_nas/data/wordnet-qa]

One entry per word (its first sense): "word: definition." and, where WordNet has one, a usage
example. A QA paragraph is three entries of the same part of speech and lexicographer file
(all animals, all verbs of motion, ...), so the answer must be read, not guessed from the
topic. Each entry gets one question, of one of two kinds drawn at random: "What does W mean?"
(the answer is its definition, a long span) or "Which word means: D?" (the answer is the word).
Words are split once, with a fixed seed, into test and training words; test paragraphs use
only test words, and the MLM corpus leaves every test synset out. The output is deterministic.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

from bench_llm.wordnet import Synset, copy_license, synsets

SEED = 0
PER_PARAGRAPH = 3
TRAIN_PARAGRAPHS = 1000
TEST_PARAGRAPHS = 170
CORPUS_LINES = 16000
WORD = re.compile(r"[a-z]{3,14}(?: [a-z]{2,14})?")


def entry_text(word: str, synset: Synset) -> str:
    example = next((e for e in synset.examples if len(e.split()) <= 16), None)
    return f"{word}: {synset.definition}." + (f' For example, "{example}".' if example else "")


def usable(wordnet: Path) -> dict[str, Synset]:
    """Word -> its first synset, for plain lowercase words (one or two) whose definition has
    4 to 25 words and does not use the word itself."""
    by_word: dict[str, Synset] = {}
    for synset in synsets(wordnet):
        words = [w.replace("_", " ") for w in synset.lemmas if WORD.fullmatch(w.replace("_", " "))]
        if not words or not 4 <= len(synset.definition.split()) <= 25:
            continue
        if re.search(rf"\b{re.escape(words[0])}", synset.definition.lower()):
            continue
        by_word.setdefault(words[0], synset)
    return by_word


def paragraphs(words: list[str], by_word: dict[str, Synset], count: int, rng: random.Random, prefix: str):
    """``count`` SQuAD-format paragraphs of same-topic entries, with their questions."""
    topics: dict[tuple[str, int], list[str]] = defaultdict(list)
    for word in words:
        topics[(by_word[word].pos, by_word[word].lexfile)].append(word)
    groups = [ws[i:i + PER_PARAGRAPH] for ws in topics.values() for i in range(0, len(ws) - PER_PARAGRAPH + 1,
                                                                                PER_PARAGRAPH)]
    rng.shuffle(groups)
    out = []
    for n, group in enumerate(groups[:count]):
        context, qas = "", []
        for word in group:
            synset = by_word[word]
            start = len(context) + (1 if context else 0)
            context = (context + " " if context else "") + entry_text(word, synset)
            if rng.random() < 0.5:
                question, answer, at = f"What does {word} mean?", synset.definition, start + len(word) + 2
            else:
                question, answer, at = f"Which word means: {synset.definition}?", word, start
            assert context[at:at + len(answer)] == answer
            qas.append({"id": f"{prefix}-{n}-{len(qas)}", "question": question,
                        "answers": [{"text": answer, "answer_start": at}]})
        out.append({"context": context, "qas": qas})
    return {"version": "1.1", "data": [{"title": f"wordnet-{prefix}", "paragraphs": out}]}


def build(wordnet: Path, out: Path) -> dict[str, int]:
    rng = random.Random(SEED)
    by_word = usable(wordnet)
    words = sorted(by_word)
    rng.shuffle(words)
    test_words = words[:len(words) // 10]
    test = paragraphs(test_words, by_word, TEST_PARAGRAPHS, rng, "test")
    train = paragraphs(words[len(words) // 10:], by_word, TRAIN_PARAGRAPHS, rng, "train")
    held_out = {by_word[w].synset for w in test_words}
    corpus_words = [w for w in words[len(words) // 10:] if by_word[w].synset not in held_out]
    corpus = [entry_text(w, by_word[w]) for w in corpus_words[:CORPUS_LINES]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps(train) + "\n")
    (out / "test.json").write_text(json.dumps(test) + "\n")
    (out / "corpus.txt").write_text("".join(line + "\n" for line in corpus))
    copy_license(out)
    count = lambda d: sum(len(p["qas"]) for p in d["data"][0]["paragraphs"])  # noqa: E731
    return {"train_questions": count(train), "test_questions": count(test), "corpus_lines": len(corpus)}


def main(argv: list[str]) -> None:
    wordnet = Path(argv[0]) if argv else Path("/usr/share/wordnet")
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent / "data" / "wordnet-qa"
    print(build(wordnet, out))


if __name__ == "__main__":
    main(sys.argv[1:])
