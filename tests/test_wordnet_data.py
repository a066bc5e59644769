"""The shipped WordNet data of lora-hpo/smollm2-135m-wordnet: disjoint, well-formed, reproducible."""

import json
from pathlib import Path

import pytest

from bench_lora import wordnet_data

DATA = Path(wordnet_data.__file__).parent / "data" / "wordnet"


def load(name):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


def test_train_and_evaluation_share_no_word_and_distractors_are_not_trained_on():
    evaluation, training = load("eval.jsonl"), load("train.jsonl")
    assert len(evaluation) == 800 and len(training) == 4000
    trained = {item["output"] for item in training}
    answers = {item["choices"][item["label"]] for item in evaluation}
    assert len(answers) == 800 and not answers & trained
    assert not {w for item in evaluation for w in item["choices"]} & trained
    assert not {item["input"] for item in training} & {item["definition"] for item in evaluation}
    for item in evaluation:
        assert len(set(item["choices"])) == 4 and 0 <= item["label"] < 4
        assert item["choices"][item["label"]] not in item["definition"].lower().split()
    assert "Princeton" in (DATA / "LICENSE-wordnet").read_text()


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").exists(), reason="needs Debian's wordnet-base")
def test_the_generator_reproduces_the_shipped_files(tmp_path):
    wordnet_data.build(Path("/usr/share/wordnet"), tmp_path)
    for name in ("eval.jsonl", "train.jsonl", "wordnet_mc.yaml", "LICENSE-wordnet"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()
