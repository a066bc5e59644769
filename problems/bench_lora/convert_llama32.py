"""Convert the raw Llama-3.2 LoRA HPO measurements into the two shipped tables.

    python -m bench_lora.convert_llama32 [RAW_DIR] [OUT_DIR]

RAW_DIR defaults to surrogate_tables/sources/lora-hpo-llama32 (a copy of the published
JSON Lines, MIT), OUT_DIR to the shipped tables folder. Rows are keyed on the values the
fine-tuning actually used (``converted_values``: rank and alpha truncated to int); the 16
BaMSOO rows scored only by a GP (``score_state == "approximated"``) are not measurements
and are dropped. Nothing is smoothed or imputed; the one estimated quantity, the evaluation
time of the last 3B job of each file (no later job bounds it), is flagged per row.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

from bench import __version__
from bench.space import validate
from bench.tables import tables_dir, write_table
from bench_lora.spaces import lora_space

SOURCE = {
    "repository": "Kiwy3/BO_PBO_HPO_LLM",
    "commit": "121f8a2",
    "folder": "computation_experiments/results/",
    "paper": "Bayesian Optimization vs Partition-based optimization for LLM fine-tuning HPO (OLA 2025)",
    "license": "MIT",
    "license_file": "sources/lora-hpo-llama32/LICENSE",
    "copyright": "Copyright (c) 2025 Nathan Davouse",
}
PROCEDURE = {
    "fine_tuning": "litgpt 0.5.3 finetune (LoRA on query, key, value and the head), 1 epoch of Alpaca "
                   "(alpaca_data_cleaned, 2,000 validation samples held out), bf16-true, AdamW (0.9, 0.999), "
                   "100 warm-up steps, cosine schedule, global batch 16, micro batch 1, seed 1337",
    "evaluation": "litgpt evaluate (lm-eval 0.4.7), zero-shot, full hellaswag and mmlu",
    "hardware": "Grid'5000 nodes, 4 x A100 40 GB per job",
}
INSTANCES = {
    "lora-hpo-llama-3.2-1b-alpaca": {
        "model": "meta-llama/Llama-3.2-1B", "max_rank": 64,
        "files": ["lhs_bis", "bo_bis", "soo_bis", "bamsoo_bis"],
    },
    "lora-hpo-llama-3.2-3b-alpaca": {
        "model": "meta-llama/Llama-3.2-3B", "max_rank": 512, "files": ["lhs", "bo", "soo"],
    },
}
PRODUCERS = {"lhs": "latin hypercube", "bo": "BO (GP, LogEI)", "soo": "SOO (K=3)", "bamsoo": "BaMSOO"}
OBJECTIVES = [
    {"name": "hellaswag_acc", "direction": "max", "bounds": [0.0, 1.0]},
    {"name": "hellaswag_acc_norm", "direction": "max", "bounds": [0.0, 1.0]},
    {"name": "mmlu_acc", "direction": "max", "bounds": [0.0, 1.0]},
]
PARAMS = ["lora_rank", "lora_alpha", "lora_dropout", "learning_rate", "weight_decay"]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def rows_of(raw: Path, files: list[str]) -> list[dict]:
    rows = []
    for stem in files:
        lines = [json.loads(line) for line in (raw / f"{stem}.jsonl").read_text().splitlines() if line.strip()]
        for number, item in enumerate(lines, start=1):
            if item["info"].get("score_state") == "approximated":
                continue  # scored by BaMSOO's GP, never trained or evaluated
            timing = item["timing"]
            if timing.get("end_training_time"):  # 1B files: both ends measured
                train = (_time(timing["end_training_time"]) - _time(timing["opening_time"])).total_seconds()
                evaluation = (_time(timing["ending_time"]) - _time(timing["end_training_time"])).total_seconds()
            else:  # 3B files: evaluation ends when the next job of the same file opens
                train = (_time(timing["starting_time"]) - _time(timing["opening_time"])).total_seconds()
                later = next((n for n in lines[number:] if n["timing"].get("opening_time")), None)
                evaluation = (_time(later["timing"]["opening_time"]) - _time(timing["starting_time"])).total_seconds() \
                    if later else None
            rank, alpha, dropout, lr, wd = item["solution"]["converted_values"]
            score = item["score"]
            rows.append({
                "lora_rank": int(rank), "lora_alpha": int(alpha), "lora_dropout": float(dropout),
                "learning_rate": float(lr), "weight_decay": float(wd),
                "hellaswag_acc": score["hellaswag"]["acc,none"],
                "hellaswag_acc_norm": score["hellaswag"]["acc_norm,none"],
                "mmlu_acc": score["mmlu"]["acc,none"],
                "hellaswag_acc_stderr": score["hellaswag"]["acc_stderr,none"],
                "hellaswag_acc_norm_stderr": score["hellaswag"]["acc_norm_stderr,none"],
                "mmlu_acc_stderr": score["mmlu"]["acc_stderr,none"],
                "train_seconds": train, "eval_seconds": evaluation,
                "epochs": 1, "seed": 1337,
                "producer": PRODUCERS[stem.removesuffix("_bis")], "source_file": f"{stem}.jsonl",
                "source_line": number, "started": timing["opening_time"],
            })
    return rows


def build(name: str, raw: Path, out: Path) -> dict:
    spec = INSTANCES[name]
    space = lora_space(spec["max_rank"])
    rows = rows_of(raw, spec["files"])
    seen: dict[tuple, int] = {}
    for row in rows:
        validate(space, {p: row[p] for p in PARAMS})
        key = tuple(row[p] for p in PARAMS)
        row["replicate"] = seen.get(key, 0)
        seen[key] = row["replicate"] + 1
    median_eval = statistics.median(r["eval_seconds"] for r in rows if r["eval_seconds"] is not None)
    for row in rows:
        row["cost_estimated"] = row["eval_seconds"] is None
        row["cost_seconds"] = row["train_seconds"] + (median_eval if row["cost_estimated"] else row["eval_seconds"])
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    dates = sorted(r["started"] for r in rows)
    manifest = {
        "problem": "lora-hpo/" + name.removeprefix("lora-hpo-"),
        "description": f"LoRA fine-tuning HPO of {spec['model']} on Alpaca, scored zero-shot by lm-eval",
        "space": space.to_serialized_dict(),
        "objectives": OBJECTIVES,
        "fidelity": {"name": "epochs", "levels": [1], "note": "only the final fidelity was measured"},
        "cost": "cost_seconds = train_seconds + eval_seconds, measured from the job timestamps; where "
                "cost_estimated is true the evaluation time is the table's median (no later job bounds it)",
        "extra_columns": ["hellaswag_acc_stderr", "hellaswag_acc_norm_stderr", "mmlu_acc_stderr", "replicate",
                          "producer", "cost_estimated"],
        "noise": noise_model(rows),
        "provenance": {
            "model": spec["model"], "data": "Alpaca (alpaca_data_cleaned)", **PROCEDURE,
            "measured_from": dates[0], "measured_to": dates[-1], "source": SOURCE,
            "source_files": [f"{stem}.jsonl" for stem in spec["files"]],
            "converted_by": f"bench_lora.convert_llama32 (bench {__version__})",
            "excluded": "BaMSOO rows with score_state 'approximated' (GP-scored, not measured)",
        },
    }
    return write_table(name, columns, manifest, out)


def noise_model(rows: list[dict]) -> dict:
    """The table's noise model in the schema every table uses (bench.tables.Table.noise_sd reads it): the
    spread between repeated measurements of a configuration, and the evaluation set's size, which lm-eval's
    standard errors give back (se = sqrt(p (1 - p) / (n - 1)))."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[p] for p in PARAMS), []).append(row)
    repeated = [g for g in groups.values() if len(g) > 1]
    repeats, items, stderr = {}, {}, {}
    for objective in (o["name"] for o in OBJECTIVES):
        gaps = sorted(max(r[objective] for r in g) - min(r[objective] for r in g) for g in repeated)
        spreads = [statistics.stdev(r[objective] for r in g) for g in repeated]
        repeats[objective] = {"all": {
            "configurations": len(repeated),
            "mean_seed_std": round(statistics.fmean(spreads), 6) if spreads else None,
            "median_abs_difference": round(statistics.median(gaps), 6) if gaps else None,
            "max_abs_difference": round(gaps[-1], 6) if gaps else None,
            "pairs_within_0.002": sum(gap <= 0.002 for gap in gaps)}}
        measured = [r for r in rows if r[f"{objective}_stderr"]]
        items[objective] = round(statistics.median(r[objective] * (1 - r[objective]) / r[f"{objective}_stderr"] ** 2 + 1
                                                   for r in measured))
        stderr[objective] = {"mean_binomial_stderr": round(statistics.fmean(r[f"{objective}_stderr"] for r in measured), 6)}
    return {"deterministic": not repeated, "repeats": repeats, "evaluation": {"all": {"items": items, **stderr}}}


def main(argv: list[str]) -> None:
    raw = Path(argv[0]) if argv else tables_dir() / "sources" / "lora-hpo-llama32"
    out = Path(argv[1]) if len(argv) > 1 else tables_dir()
    for name in INSTANCES:
        manifest = build(name, raw, out)
        quality = {family: {o: q["spearman"] for o, q in entry["quality"].items()}
                   for family, entry in manifest["surrogates"].items()}
        print(f"{name}: {manifest['rows']} rows, sha256 {manifest['sha256'][:12]}, held-out Spearman {quality}")


if __name__ == "__main__":
    main(sys.argv[1:])
