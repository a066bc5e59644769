"""The NAS model builder on tiny random DistilBERT and BERT parents: compatibility, inheritance, size."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from bench_nas.genotype import FFN, Block, Genotype, count_params  # noqa: E402
from bench_nas.model import ParentWeights, build  # noqa: E402
from bench_nas.mutation import INITIAL_RATES, mutate  # noqa: E402


def tiny_distilbert():
    config = transformers.DistilBertConfig(vocab_size=100, dim=48, n_layers=3, n_heads=12, hidden_dim=96,
                                           max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    return transformers.DistilBertForMaskedLM(config).eval()


def tiny_bert():
    config = transformers.BertConfig(vocab_size=100, hidden_size=48, num_hidden_layers=3, num_attention_heads=12,
                                     intermediate_size=96, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    return transformers.BertForMaskedLM(config).eval()


@pytest.fixture(scope="module", params=["distilbert", "bert"])
def hf_parent(request):
    model = tiny_distilbert() if request.param == "distilbert" else tiny_bert()
    return model, ParentWeights.from_hf(model)


def batch():
    torch.manual_seed(1)
    ids = torch.randint(1, 100, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return ids, mask


def test_the_parent_genotype_reproduces_the_transformers_model(hf_parent):
    hf, parent = hf_parent
    model, new = build(Genotype.parent(parent.dims), parent, seed=0, dropout=0.0)
    assert new == {"qa.weight", "qa.bias"}
    ids, mask = batch()
    with torch.no_grad():
        ours = model.mlm_logits(model.encode(ids, mask))
        theirs = hf(input_ids=ids, attention_mask=mask).logits
    keep = mask.bool()
    torch.testing.assert_close(ours[keep], theirs[keep], atol=1e-4, rtol=1e-4)


def test_inherited_modules_are_exact_copies_and_new_ones_fresh(hf_parent):
    _, parent = hf_parent
    dims = parent.dims
    genotype = Genotype((Block(12, (dims.parent_ffn(),), 2),  # layer 2 moved to the front, unchanged
                         Block(6, (dims.parent_ffn(), FFN("relu", (24, 48))), 0),  # heads altered, extra FFN
                         Block(12, (FFN("relu", (96,)),), 1),  # activation altered
                         Block(12, (dims.parent_ffn(),), None)), dims)  # a new block
    model, new = build(genotype, parent, seed=5)
    params = dict(model.named_parameters())
    for name, source in [("blocks.0.attention.query.weight", "layer2.attention.query.weight"),
                         ("blocks.0.ffns.0.layers.1.weight", "layer2.ffn.layers.1.weight"),
                         ("blocks.1.ffns.0.norm.bias", "layer0.ffn.norm.bias"),
                         ("blocks.2.attention.output.bias", "layer1.attention.output.bias"),
                         ("embeddings.word.weight", "embeddings.word.weight")]:
        assert torch.equal(params[name], parent.tensors[source]) and name not in new
    expected_new = {n for n in params if n.startswith(("blocks.1.attention.", "blocks.1.ffns.1.", "blocks.2.ffns.0.",
                                                        "blocks.3.", "qa."))}
    assert new == expected_new
    assert not torch.equal(params["blocks.1.attention.query.weight"], parent.tensors["layer0.attention.query.weight"])
    assert not torch.equal(params["blocks.3.ffns.0.layers.0.weight"], parent.tensors["layer0.ffn.layers.0.weight"])
    assert abs(params["blocks.3.attention.key.weight"].std().item() - 0.02) < 0.005  # BERT's initialisation
    again, _ = build(genotype, parent, seed=5)
    assert torch.equal(again.blocks[3].attention.key.weight, params["blocks.3.attention.key.weight"])


def test_a_parent_without_a_trained_mlm_head_leaves_the_head_new(tmp_path):
    bert = tiny_bert()
    bert.bert.save_pretrained(tmp_path)  # the encoder only, as sentence-transformers ships MiniLM
    loaded, info = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    parent = ParentWeights.from_hf(loaded, info["missing_keys"])
    assert not parent.has_mlm_head and "layer0.attention.query.weight" in parent.tensors
    _, new = build(Genotype.parent(parent.dims), parent, seed=0)
    assert new == {"mlm.transform.weight", "mlm.transform.bias", "mlm.norm.weight", "mlm.norm.bias", "mlm.bias",
                   "qa.weight", "qa.bias"}


def test_parameter_count_equals_the_built_model_for_50_genotypes():
    parent = ParentWeights.from_hf(tiny_distilbert())
    rng = np.random.default_rng(0)
    genotype, counted = Genotype.parent(parent.dims), 0
    for _ in range(50):
        genotype = mutate(genotype, rng, INITIAL_RATES)
        model, _ = build(genotype, parent, seed=0)
        assert count_params(genotype) == model.qa_parameters()
        counted += 1
    bert = ParentWeights.from_hf(tiny_bert())
    assert count_params(Genotype.parent(bert.dims)) == build(Genotype.parent(bert.dims), bert, 0)[0].qa_parameters()
    assert counted == 50
