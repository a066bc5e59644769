"""The shipped WordNet data of distilbert-nas/minilm-wordnet-qa: SQuAD format, disjoint, reproducible."""

import json
from pathlib import Path

import pytest

from bench_nas import wordnet_data

DATA = Path(wordnet_data.__file__).parent / "data" / "wordnet-qa"


def questions(name):
    return [(p["context"], qa) for p in json.loads((DATA / name).read_text())["data"][0]["paragraphs"]
            for qa in p["qas"]]


def test_answers_are_spans_and_test_words_are_unseen():
    train, test = questions("train.json"), questions("test.json")
    assert len(train) == 3000 and len(test) == 510
    for context, qa in train + test:
        [answer] = qa["answers"]
        assert context[answer["answer_start"]:answer["answer_start"] + len(answer["text"])] == answer["text"]
    entries = lambda items: {c.split(":")[0] for c, _ in items}  # noqa: E731 (the first word of each paragraph)
    assert not entries(train) & entries(test)
    corpus = (DATA / "corpus.txt").read_text()
    for context, _ in test[::30]:
        assert context.split(". ")[0] not in corpus
    assert "Princeton" in (DATA / "LICENSE-wordnet").read_text()


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").exists(), reason="needs Debian's wordnet-base")
def test_the_generator_reproduces_the_shipped_files(tmp_path):
    wordnet_data.build(Path("/usr/share/wordnet"), tmp_path)
    for name in ("train.json", "test.json", "corpus.txt", "LICENSE-wordnet"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()
