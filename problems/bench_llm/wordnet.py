"""WordNet 3.0's ``data.*`` files read directly (no nltk), for the generator scripts of problems
that derive small data sets from it (Debian: ``apt-get install wordnet-base``). Pure Python."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

POS_FILES = ("noun", "verb", "adj", "adv")
LICENSE = Path("/usr/share/doc/wordnet-base/copyright")


@dataclass(frozen=True)
class Synset:
    synset: str  # "pos:offset", unique
    pos: str
    lexfile: int  # the lexicographer file (noun.animal, verb.motion, ...)
    lemmas: tuple[str, ...]  # as WordNet spells them: underscores between words
    definition: str  # the gloss up to its examples
    examples: tuple[str, ...]  # the quoted usage examples of the gloss


def synsets(wordnet: Path) -> Iterator[Synset]:
    """Every synset, in file order (nouns, verbs, adjectives, adverbs)."""
    for pos in POS_FILES:
        for line in (wordnet / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):  # the license header
                continue
            fields, _, gloss = line.partition(" | ")
            parts = fields.split()
            count = int(parts[3], 16)
            lemmas = tuple(re.sub(r"\(.*\)$", "", parts[4 + 2 * i]) for i in range(count))
            definition = gloss.split('; "')[0].strip().rstrip(";").strip()
            examples = tuple(e.strip() for e in re.findall(r'"([^"]+)"', gloss[len(definition):]) if e.strip())
            yield Synset(f"{pos}:{parts[0]}", pos, int(parts[1]), lemmas, definition, examples)


def copy_license(out: Path) -> None:
    """WordNet's license must travel with data derived from it."""
    if LICENSE.exists():
        shutil.copyfile(LICENSE, out / "LICENSE-wordnet")
