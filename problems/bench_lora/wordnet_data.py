"""Generate the WordNet instruction set and 4-choice task of ``lora-hpo/smollm2-135m-wordnet``.

    apt-get install --no-install-recommends wordnet-base
    python -m bench_lora.wordnet_data [/usr/share/wordnet] [problems/bench_lora/data/wordnet]

Reads WordNet 3.0's ``data.*`` files directly. One item per word: a definition (the gloss up
to its examples) and the word it defines. Words are split once, with a fixed seed, into
evaluation and training words, so no word, and no synset, is in both. The evaluation asks
which of four words a definition names; the three distractors share the answer's part of
speech and WordNet lexicographer file (all animals, all verbs of motion, ...), which keeps
the task hard enough not to saturate (random distractors make it too easy), and are never
training words. The output is deterministic: the same WordNet gives the same files.
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench_llm.wordnet import copy_license, synsets
from bench_lora.live import multiple_choice_task

SEED = 0
EVAL_ITEMS = 800
TRAIN_ITEMS = 4000
WORD = re.compile(r"[a-z]{3,14}")
INSTRUCTION = "Which word matches this definition? Answer with the word only."


@dataclass(frozen=True)
class Entry:
    word: str
    definition: str
    pos: str
    lexfile: int
    synset: str


def parse(wordnet: Path) -> list[Entry]:
    """One entry per synset whose first single-word lemma is a plain lowercase word (no proper
    names or genera); definitions that use the word itself, or are very short or long, are left out."""
    entries = []
    for synset in synsets(wordnet):
        words = [w for w in synset.lemmas if WORD.fullmatch(w)]
        if not words or not 4 <= len(synset.definition.split()) <= 30:
            continue
        word = words[0]
        if re.search(rf"\b{word}", synset.definition.lower()):
            continue
        entries.append(Entry(word, synset.definition, synset.pos, synset.lexfile, synset.synset))
    return entries


def build(wordnet: Path, out: Path) -> dict[str, int]:
    rng = random.Random(SEED)
    by_word: dict[str, Entry] = {}
    for entry in parse(wordnet):
        by_word.setdefault(entry.word, entry)  # the word's first sense only: one item per word
    words = sorted(by_word)
    rng.shuffle(words)
    evaluation_words, training_words = words[:EVAL_ITEMS], words[EVAL_ITEMS:EVAL_ITEMS + TRAIN_ITEMS]
    banned = set(training_words)
    pools: dict[tuple[str, int], list[str]] = {}
    for word in words:
        if word not in banned:
            entry = by_word[word]
            pools.setdefault((entry.pos, entry.lexfile), []).append(word)
    evaluation = []
    for word in evaluation_words:
        entry = by_word[word]
        pool = [w for w in pools[(entry.pos, entry.lexfile)] if w != word]
        if len(pool) < 3:
            continue
        choices = rng.sample(pool, 3) + [word]
        rng.shuffle(choices)
        evaluation.append({"definition": entry.definition, "choices": choices, "label": choices.index(word),
                           "pos": entry.pos, "synset": entry.synset})
    training = [{"instruction": INSTRUCTION, "input": by_word[w].definition, "output": w} for w in training_words]
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.jsonl").write_text("".join(json.dumps(item) + "\n" for item in evaluation))
    (out / "train.jsonl").write_text("".join(json.dumps(item) + "\n" for item in training))
    (out / "wordnet_mc.yaml").write_text(multiple_choice_task("wordnet_mc", ("acc", "acc_norm")))
    copy_license(out)
    return {"eval": len(evaluation), "train": len(training)}


def main(argv: list[str]) -> None:
    wordnet = Path(argv[0]) if argv else Path("/usr/share/wordnet")
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent / "data" / "wordnet"
    print(build(wordnet, out))


if __name__ == "__main__":
    main(sys.argv[1:])
