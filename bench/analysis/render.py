"""Render a board: aggregated data, SVG figures, README.md (tabulate) and one self-contained
index.html. Everything but one generation-date line in each page is a function of the board's
data, so a rebuild from the same data writes the same bytes."""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench import __version__, remove_dead_staging

GENERATED = "Generated on {date} by bench {version}."
SVG_SALT = "bench-leaderboard"
BUDGET_AXIS = "budget used (full-fidelity evaluations)"
REGRET_NOTE = ("Normalized regret: 0 = the best value known for the problem (its declared optimum, a table's best "
               "real measurement, or else the best value any run on this board reached; below 0 = better than any "
               "real measurement, which only a surrogate's prediction can be), 1 = the median of random search's final value at the same "
               "budget; lower is better, below 1 beats random search's median. With several objectives the value is "
               "the hypervolume (pymoo) of the results so far against the reference point shown. Intervals are "
               "95% percentile-bootstrap intervals of the mean over seeds. A run's value at a point is what it would "
               "return then: its best result at the highest fidelity it has evaluated (a lower fidelity is an "
               "estimate), and budget counts full-fidelity evaluations (a trial at a quarter of the fidelity "
               "counts a quarter). "
               "Rank: per seed, 1 = lowest final regret; AUC: mean normalized regret over budget 1..L (area under "
               "the anytime curve). Failed: share of "
               "trials that failed or diverged. Measured: share of trial values that are real measurements (table "
               "rows); the rest are the table's surrogate predictions for configurations it did not measure.")


def build(board, out: str | Path, date: str | None = None) -> list[Path]:
    """Write the board's data, figures and pages into ``out``; return the files written."""
    from bench.analysis.metrics import across_tasks, build_tasks, family_agreement, summarize

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    board.write(out)
    tasks = build_tasks(board)
    summaries = [(task, summarize(task)) for task in tasks]
    overall = across_tasks(tasks)
    agreement = family_agreement([summary for _, summary in summaries])
    style = _style(sorted({run["optimizer"] for run in board.runs}))  # one look per optimizer on every figure
    figures = {task.slug: _figures(task, summary, out / "figures", style) for task, summary in summaries}
    if overall:
        figures["across"] = [("Critical-difference diagram across problems",
                              _cd_figure(overall, "all single-objective problems", out / "figures" / "across-cd.svg"))]
    _write_aggregates([s for _, s in summaries], agreement, out / "data")
    date = date or datetime.now(timezone.utc).date().isoformat()
    generated = GENERATED.format(date=date, version=__version__)
    (out / "README.md").write_text(_readme(board, summaries, overall, agreement, figures, generated))
    (out / "index.html").write_text(_html(board, summaries, overall, agreement, figures, out, generated))
    return sorted(p for p in out.rglob("*") if p.is_file())


def write_board(board, out: str | Path, date: str | None = None) -> list[Path]:
    """Build ``board`` into a staging folder beside ``out`` and swap it in only when complete: a failure or
    a kill leaves the previous board byte-identical, and nothing of an older board (a stale figure) stays.
    ``out`` must be new, empty or a board: any other folder is refused, never written into."""
    from bench.analysis.data import BoardError, is_board

    out = Path(out)
    _recover(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir()) and not is_board(out)):
        raise BoardError(f"{out} is not empty and holds no board (data/runs.json); give --out a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        build(board, staging, date)
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for p in out.rglob("*") if p.is_file())


def _recover(out: Path) -> None:
    """Finish what a killed ``write_board`` left beside ``out``: the previous board put back if the swap was cut
    between its two renames, the staging folders of dead processes removed."""
    old = out.with_name(f".{out.name}.old")
    if old.exists():
        if out.exists():
            shutil.rmtree(old)
        else:
            old.rename(out)
    remove_dead_staging(out.parent, f".{out.name}.staging-")


def _write_aggregates(summaries: list[dict[str, Any]], agreement: list[dict[str, Any]], folder: Path) -> None:
    """summary.json (tables, tests, normalization), families.json (the surrogate families' agreement) and
    curves.parquet (anytime curves, ranks over time)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, curves = [], []
    for s in summaries:
        tables.append({k: v for k, v in s.items() if k not in ("series", "cd_result")})
        for series in s["series"]:
            for i, x in enumerate(series["x"]):
                curves.append({"problem": s["problem"], "objectives": "+".join(o["name"] for o in s["objectives"]),
                               "surrogate": s["surrogate"], "optimizer": series["optimizer"], "axis": series["axis"], "x": float(x),
                               **{k: float(series[k][i]) for k in ("regret", "low", "high", "rank")}})
    (folder / "summary.json").write_text(json.dumps(_finite(tables), indent=1, sort_keys=True, allow_nan=False)
                                         + "\n")
    (folder / "families.json").write_text(json.dumps(_finite(agreement), indent=1, sort_keys=True, allow_nan=False)
                                          + "\n")
    pq.write_table(pa.Table.from_pylist(curves), folder / "curves.parquet")


def _finite(value):
    """JSON has no NaN: a statistic that does not exist (no successful trial, say) is written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and value != value else value


# ---------------------------------------------------------------- figures

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "figure.dpi": 100, "font.size": 9,
                         "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _style(names: list[str]) -> dict[str, dict[str, Any]]:
    """A colour and line style per optimizer of the board (by name order), the same on every figure; 20 colours
    times 4 line styles."""
    plt = _pyplot()
    colors = plt.get_cmap("tab20").colors
    return {n: {"color": colors[i % 20], "linestyle": ("-", "--", ":", "-.")[(i // 10) % 4]}
            for i, n in enumerate(sorted(names))}


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _legend(ax) -> None:
    """The legend beside the axes, never over the data."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _figures(task, summary: dict[str, Any], folder: Path, style: dict[str, dict[str, Any]]) -> list[tuple[str, Path]]:
    """The task's figures as (caption, path)."""
    plt = _pyplot()
    order = [row["optimizer"] for row in summary["rows"]]
    series = {(s["optimizer"], s["axis"]): s for s in summary["series"]}
    out = []
    for axis, xlabel, key in (("trials", BUDGET_AXIS, "regret-trials"),
                              ("seconds", "simulated wall time (hours)", "regret-time")):
        fig, ax = plt.subplots(figsize=(7, 4))
        for name in order:
            s = series[(name, axis)]
            x = s["x"] / 3600 if axis == "seconds" else s["x"]
            ax.plot(x, s["regret"], label=name, **style[name])
            ax.fill_between(x, s["low"], s["high"], color=style[name]["color"], alpha=0.12, linewidth=0)
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("normalized regret (mean, 95% CI)")
        ax.axhline(1.0, color="black", linewidth=0.8)
        _legend(ax)
        ax.set_title(f"{task.label}: regret over {'the budget' if axis == 'trials' else 'simulated time'}")
        out.append((f"Normalized regret over {xlabel}", _save(fig, folder / f"{task.slug}-{key}.svg")))
    if "rank" in summary["rows"][0]:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name in order:
            s = series[(name, "trials")]
            ax.plot(s["x"], s["rank"], label=name, **style[name])
        ax.set_xlabel(BUDGET_AXIS)
        ax.set_ylabel("mean rank over seeds (1 = best)")
        ax.invert_yaxis()
        _legend(ax)
        ax.set_title(f"{task.label}: ranks over the budget")
        out.append(("Mean rank after each trial", _save(fig, folder / f"{task.slug}-ranks.svg")))
    if "cd_result" in summary:
        test = {**summary["test"], "cd_result": summary["cd_result"], "rows": summary["rows"]}
        out.append(("Critical-difference diagram of final regret",
                    _cd_figure(test, task.label, folder / f"{task.slug}-cd.svg", "seeds")))
    if task.multi:
        out += _multi_objective_figures(task, summary, folder, style, order)
    return out


def _cd_figure(test: dict[str, Any], label: str, path: Path, blocks: str = "task x seed blocks") -> Path:
    """autorank's critical-difference diagram of a Friedman + Nemenyi result."""
    from autorank import plot_stats

    fig, ax = _pyplot().subplots(figsize=(7, 0.35 * len(test["rows"]) + 1.2))
    plot_stats(test["cd_result"], allow_insignificant=True, ax=ax)
    ax.set_title(f"{label}: critical difference {test['critical_difference']:.2f} "
                 f"(Friedman p = {test['pvalue']:.2g}, Nemenyi, {test['blocks']} {blocks})", fontsize=8)
    return _save(fig, path)


def _multi_objective_figures(task, summary, folder, style, order) -> list[tuple[str, Path]]:
    from bench.analysis.metrics import budget_points, by_budget, pareto_front

    plt = _pyplot()
    signs = task.signs
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in order:
        runs = [r for r in task.runs if r["optimizer"] == name]
        volumes = np.array([by_budget(task, r, -np.nan_to_num(task.losses[r["run_id"]]), 0.0) for r in runs])
        ax.plot(np.arange(1, budget_points(task) + 1), volumes.mean(axis=0), label=name, **style[name])
    ax.set_xlabel(BUDGET_AXIS)
    ax.set_ylabel("hypervolume (mean over seeds)")
    _legend(ax)
    ax.set_title(f"{task.label}: hypervolume over the budget")
    out = [(f"Hypervolume over {BUDGET_AXIS}", _save(fig, folder / f"{task.slug}-hypervolume.svg"))]

    fig, ax = plt.subplots(figsize=(6, 5))
    everything = np.vstack([p for p in task.points.values() if len(p)])
    reference = pareto_front(everything) * signs
    ax.plot(reference[:, 0], reference[:, 1], color="black", linewidth=0.8, drawstyle="steps-post", marker="x",
            markersize=8, label="best known front (all runs)")
    for name in order:
        runs = sorted((r for r in task.runs if r["optimizer"] == name), key=lambda r: (-task.losses[r["run_id"]][-1],
                                                                                       r["seed"]))
        median = runs[len(runs) // 2]  # the run with the median final hypervolume
        front = pareto_front(task.points[median["run_id"]]) * signs
        ax.plot(front[:, 0], front[:, 1], marker="o", markersize=3, drawstyle="steps-post",
                label=f"{name} (seed {median['seed']})", **style[name])
    ax.set_xlabel(task.objectives[0].name)
    ax.set_ylabel(task.objectives[1].name)
    _legend(ax)
    ax.set_title(f"{task.label}: attained fronts (run with the median hypervolume)", fontsize=8)
    out.append(("Attained Pareto fronts", _save(fig, folder / f"{task.slug}-fronts.svg")))
    return out


# ---------------------------------------------------------------- pages

def _ci(row: dict[str, Any], key: str, digits: int = 3) -> str:
    if key not in row or row[key] != row[key]:
        return "-"
    return f"{row[key]:.{digits}f} [{row[key + '_low']:.{digits}f}, {row[key + '_high']:.{digits}f}]"


def _table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    value = summary["value_name"]
    headers = ["optimizer", "mean rank", "final regret", "AUC", f"final {value}", "against the best (noise)", "seeds",
               "trials", "failed", "measured", "origin"]
    decisions = summary.get("equivalence", {}).get("decisions", {})
    rows = [[row["optimizer"], _ci(row, "rank", 2), _ci(row, "regret"), _ci(row, "auc"), _ci(row, "value", 4),
             _against(decisions.get(row["optimizer"])) if decisions else "-", row["seeds"], row["trials"],
             f"{row['failed_share']:.0%}", f"{row['measured_share']:.0%}", "; ".join(row["origin"])]
            for row in summary["rows"]]
    return headers, rows


def _against(decision: dict[str, Any] | None) -> str:
    """An optimizer against the best: the decision and its posterior probability."""
    if decision is None:
        return "(the best)"
    p = {"worse": "p_worse", "equivalent": "p_equivalent", "better": "p_better"}.get(decision["decision"])
    return f"{decision['decision']} ({decision[p]:.2f})" if p else (
        f"inconclusive (worse {decision['p_worse']:.2f}, equivalent {decision['p_equivalent']:.2f})")


def _overview(summaries) -> tuple[list[str], list[list[str]]]:
    """One row per task: the best optimizer by mean rank, and which others the Nemenyi test cannot separate from it."""
    headers = ["problem", "objectives", "surrogate", "best (mean rank)", "its final regret", "Friedman p",
               "not significantly worse than the best (Nemenyi)", "verdict within measurement noise"]
    rows = []
    for task, summary in summaries:
        best = summary["rows"][0]
        test = summary.get("test")
        tied = [row["optimizer"] for row in summary["rows"][1:]
                if test and "rank" in row and row["rank"] - best["rank"] <= test["critical_difference"]]
        rows.append([task.problem, " + ".join(o["name"] for o in summary["objectives"]), task.surrogate or "-",
                     f"{best['optimizer']} ({best.get('rank', float('nan')):.2f})", _ci(best, "regret"),
                     f"{test['pvalue']:.3g}" if test else "-", ", ".join(tied) if test else "-",
                     summary["equivalence"]["verdict"] if "equivalence" in summary else "-"])
    return headers, rows


def _task_intro(summary: dict[str, Any]) -> str:
    from bench.problem import Objective

    described = [Objective.from_dict(o) for o in summary["objectives"]]
    objectives = ", ".join(f"{o.name} ({'maximize' if o.direction == 'max' else 'minimize'})" for o in described)
    norm = summary["normalization"]
    text = (f"Objectives: {objectives}; budget {summary['budget']:g} evaluations; seeds "
            f"{_seeds(summary['seeds'])} paired for ranks. Regret scale: {norm['note']}.")
    if "reference_point" in summary:
        point = ", ".join(f"{o.name} {v * o.sign:g}" for o, v in zip(described, summary["reference_point"]))
        text += f" Hypervolume reference point: {point}."
    if "test" in summary:
        test = summary["test"]
        verdict = "differ" if test["pvalue"] < test["alpha"] else "do not differ significantly"
        text += (f" Friedman test over {test['blocks']} seeds: p = {test['pvalue']:.3g}, the optimizers {verdict}"
                 f" at alpha {test['alpha']}; Nemenyi critical difference of mean ranks {test['critical_difference']:.2f}.")
    text += _table_text(summary, described)
    if "equivalence" in summary:
        eq = summary["equivalence"]
        text += (f" Practical equivalence ({eq['method']}): one evaluation's noise is {eq['noise_sd']:.4g} in"
                 f" {described[0].name}, {eq['rope']:.3g} in regret; {eq['verdict']}.")
    return text


def _table_text(summary: dict[str, Any], described) -> str:
    """The table facts behind a task's numbers, where its run cards record them."""
    facts, names = summary.get("table", {}), [o.name for o in described]
    text = f" {facts['measured_share']:.0%} of the trial values are real measurements." if facts else ""
    if "regret_unit" in summary:
        text += f" One unit of regret is {summary['regret_unit']:.4g} in {names[0]}."
    for key, label in (("best_measured", "best real measurement"), ("default_value", "the default configuration")):
        if key in facts:
            text += f" {label.capitalize()}: " + ", ".join(f"{n} {facts[key][n]:.4g}" for n in names) + "."
    if "surrogate_quality" in facts:
        text += (f" Unmeasured configurations answered by the {facts['surrogate']} surrogate; held-out Spearman of"
                 " the families: " + "; ".join(f"{family} " + ", ".join(f"{n} {q[n]['spearman']}" for n in names)
                                                for family, q in facts["surrogate_quality"].items()) + ".")
    return text


AGREEMENT_NOTE = ("Every table task runs once under each surrogate family its table ships (a random forest and a "
                  "Gaussian process: different inductive biases for the configurations the table did not measure). "
                  "Kendall's tau compares the families' orderings of the optimizers by mean rank (1 = the same order); "
                  "a winner is declared only where the same optimizer wins, beyond the measurement noise, under "
                  "every family.")
SANITY_NOTE = ("Analytic problems with known optima, run as themselves (no table, no noise): regret 0 is the known "
               "optimum, so these rows check that the optimizers do what they should, not which is best on LLMs.")


def _agreement(agreement: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """A row per table task: Kendall's tau between its families, their leaders, and the verdict under all."""
    headers = ["problem", "objectives", "optimizers", "Kendall tau", "best by mean rank", "practically equivalent to "
               "the best", "verdict under every family"]
    rows = []
    for entry in agreement:
        equivalent = entry["equivalent_to_best"]
        rows.append([entry["problem"], " + ".join(entry["objectives"]), entry["optimizers"],
                     "; ".join(f"{' vs '.join(p['families'])} {p['kendall_tau']:.2f}" for p in entry["pairs"]),
                     "; ".join(f"{family}: {name}" for family, name in entry["leaders"].items()),
                     "; ".join(f"{family}: {len(names)} of {entry['optimizers']}" for family, names in equivalent.items())
                     or "-", entry["verdict"]])
    return headers, rows


def _seeds(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _provenance(board) -> list[str]:
    from bench.analysis.data import origin_label

    origins: dict[str, int] = {}
    for run in board.runs:
        label = origin_label(run["provenance"])
        origins[label] = origins.get(label, 0) + 1
    versions = sorted({run["card"]["suite_version"] for run in board.runs})
    lines = [f"{n} runs from {label}" for label, n in sorted(origins.items())]
    lines.append(f"bench versions of the runs: {', '.join(versions)}; run cards in data/runs.json, every trial in "
                 "data/trials.parquet, aggregates in data/summary.json and data/curves.parquet.")
    return lines


def _across(overall: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """The across-problems section: a sentence, and a row per optimizer."""
    text = (f"Optimizers run on every single-objective problem ({'; '.join(overall['tasks'])}), ranked on final "
            f"regret with each problem and seed a block ({overall['blocks']} blocks): Friedman p = "
            f"{overall['pvalue']:.3g}, Nemenyi critical difference of mean ranks {overall['critical_difference']:.2f}.")
    rows = [[row["optimizer"], f"{row['rank']:.2f}", f"{row['regret']:.3f}"] for row in overall["rows"]]
    return text, ["optimizer", "mean rank", "mean final regret"], rows


def _readme(board, summaries, overall, agreement, figures, generated: str) -> str:
    from tabulate import tabulate

    tables, sanity = _sections(summaries)
    lines = ["# bench leaderboard", "", generated, "", REGRET_NOTE, ""]
    lines += [f"- {line}" for line in _provenance(board)] + [""]
    lines += ["## Overview", "", tabulate(*reversed(_overview(tables)), tablefmt="github"), ""]
    if agreement:
        lines += ["## Do the surrogate families agree?", "", AGREEMENT_NOTE, "",
                  tabulate(*reversed(_agreement(agreement)), tablefmt="github"), ""]
    if overall:
        text, headers, rows = _across(overall)
        lines += ["## Across problems", "", text, "", tabulate(rows, headers, tablefmt="github"), ""]
        lines += [f"![{caption}](figures/{path.name})" for caption, path in figures["across"]] + [""]
    if sanity:
        lines += ["## Sanity check: analytic problems", "", SANITY_NOTE, "",
                  tabulate(*reversed(_overview(sanity)), tablefmt="github"), ""]
    for task, summary in tables + sanity:
        headers, rows = _table(summary)
        lines += [f"## {task.label}", "", _task_intro(summary), "", tabulate(rows, headers, tablefmt="github"), ""]
        lines += [f"![{caption}](figures/{path.name})" for caption, path in figures[task.slug]] + [""]
    return "\n".join(lines)


def _sections(summaries) -> tuple[list, list]:
    """The table tasks, then the sanity section's analytic ones."""
    return [e for e in summaries if not e[0].sanity], [e for e in summaries if e[0].sanity]


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f2f2f2}figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:0.85em;color:#555}
.generated{color:#777;font-size:0.85em}"""


def _html(board, summaries, overall, agreement, figures, out: Path, generated: str) -> str:
    from tabulate import tabulate

    tables, sanity = _sections(summaries)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>bench leaderboard</title>",
             f"<style>{_CSS}</style></head><body>", "<h1>bench leaderboard</h1>",
             f'<p class="generated">{html.escape(generated)}</p>', f"<p>{html.escape(REGRET_NOTE)}</p>", "<ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in _provenance(board)] + ["</ul>"]
    parts += ["<h2>Overview</h2>", tabulate(*reversed(_overview(tables)), tablefmt="html")]
    sections = [(task.slug, task.label, _task_intro(summary), *_table(summary)) for task, summary in tables + sanity]
    if sanity:
        sections.insert(0, ("sanity", "Sanity check: analytic problems", SANITY_NOTE, *_overview(sanity)))
    if overall:
        sections.insert(0, ("across", "Across problems", *_across(overall)))
    if agreement:
        sections.insert(0, ("families", "Do the surrogate families agree?", AGREEMENT_NOTE, *_agreement(agreement)))
    for slug, label, intro, headers, rows in sections:
        parts += [f'<section id="{html.escape(slug)}"><h2>{html.escape(label)}</h2>',
                  f"<p>{html.escape(intro)}</p>", tabulate(rows, headers, tablefmt="html")]
        for caption, path in figures.get(slug, []):
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/svg+xml;base64,{data}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
