"""Outside submissions: a ``bench export`` file from someone else's runs, checked against the board
(schema, run cards, suite and plugin versions, table sha256, budget, seeds, and every value
re-read from the table) before it is merged with its provenance. A refused file changes nothing."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from bench.analysis.data import Board, BoardError, describe_run, read_export, run_key, task_key

TRIAL_COLUMNS = ("problem", "optimizer", "seed", "mode", "run_id", "number", "status", "error", "source", "fidelity",
                 "cost", "worker", "start", "end", "table_sha256")
VALUE_TOLERANCE = 1e-9


class SubmissionError(BoardError):
    """A submission the board refuses; the message gives the first reason, down to the row."""


def validate(path: str | Path, board: Board, registry) -> Board:
    """The submission as a board of its own (provenance attached), or SubmissionError."""
    path = Path(path)
    try:
        cards, trials = read_export(path)
    except BoardError as exc:
        raise SubmissionError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - anything unreadable is refused with its reason
        raise SubmissionError(f"{path} is not a readable bench export: {str(exc).splitlines()[0]}") from exc
    refuse = _refuser(path)
    missing = [c for c in TRIAL_COLUMNS if c not in trials.columns]
    if missing:
        refuse(f"missing column {missing[0]!r} (a bench export has {', '.join(TRIAL_COLUMNS)})")
    if trials.empty:
        refuse("holds no trials")
    tasks = {key: runs for key, runs in board.tasks().items()}
    reference = {key: runs[0]["card"] for key, runs in tasks.items()}
    on_board = {run_key(run): run for run in board.runs}
    problems: dict[str, Any] = {}
    runs = []
    rows_of = {run_id: group for run_id, group in trials.groupby("run_id", sort=True)}
    for run_id in sorted(set(cards) | set(rows_of)):
        if run_id not in cards:
            refuse(f"row {_row(rows_of[run_id].index[0])}: run {run_id} has no run card in the file's metadata")
        entry, card = cards[run_id], cards[run_id]["card"]
        if run_id not in rows_of:
            refuse(f"run {run_id} has a run card but no trials")
        if entry["status"] != "complete":
            refuse(f"run {run_id} is unfinished; finish it with `bench run ... --resume` and export again")
        run = describe_run(card, run_id, {})
        key = task_key(run)
        if key not in tasks:
            refuse(f"run {run_id}: the board has no {run['problem']} optimizing {'+'.join(run['objectives'])} at budget"
                   f" {run['budget']:g}; its tasks are: " + "; ".join(f"{p} {'+'.join(o)} budget {b:g}"
                                                                      for p, o, b in tasks))
        _check_card(refuse, run_id, card, reference[key])
        if run_key(run) in on_board:
            refuse(f"run {run_id} ({run['optimizer']} seed {run['seed']}) is already on the board")
        if run["problem"] not in problems:
            problems[run["problem"]] = registry.problem(run["problem"]).create("table")
        _check_trials(refuse, rows_of[run_id], run, card, problems[run["problem"]])
        runs.append(run)
    _check_seeds(refuse, runs, tasks)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    provenance = {"origin": f"submission {path.name}", "file_sha256": digest}
    return Board([{**run, "provenance": provenance} for run in runs], trials)


def _refuser(path: Path):
    def refuse(reason: str):
        raise SubmissionError(f"refused {path.name}: {reason}")
    return refuse


def _row(index) -> int:
    """1-based row number in the file."""
    return int(index) + 1


def _check_card(refuse, run_id: int, card: dict[str, Any], board_card: dict[str, Any]) -> None:
    if card.get("mode") != "table":
        refuse(f"run {run_id} ran in {card.get('mode')!r} mode; the board compares table runs")
    if card.get("workers", 1) != board_card.get("workers", 1):
        refuse(f"run {run_id} used {card.get('workers')} workers; the board's runs use {board_card.get('workers')}")
    if card.get("suite_version") != board_card["suite_version"]:
        refuse(f"run {run_id} was made with bench {card.get('suite_version')}; the board's runs use bench "
               f"{board_card['suite_version']}")
    for plugin, version in sorted(card.get("plugins", {}).items()):
        expected = board_card["plugins"].get(plugin)
        if expected is not None and version != expected:
            refuse(f"run {run_id} used plugin {plugin} {version}; the board's runs use {expected}")
    theirs = card.get("problem_info", {}).get("table_sha256")
    ours = board_card["problem_info"].get("table_sha256")
    if theirs != ours:
        refuse(f"run {run_id}'s run card names table sha256 {theirs}; the board's table is {ours}")


def _check_trials(refuse, rows, run: dict[str, Any], card: dict[str, Any], problem) -> None:
    """Row by row: run fields, trial numbering, budget, table sha256, and each value re-read from the table."""
    from bench.space import InvalidConfiguration, validate

    sha = problem.describe().get("table_sha256")
    if card["problem_info"].get("table_sha256") != sha:
        refuse(f"run {run['run_id']}'s run card names table sha256 {card['problem_info'].get('table_sha256')}; the"
               f" shipped table of {run['problem']} is {sha}")
    rows = rows.sort_values("number")
    if list(rows["number"]) != list(range(len(rows))):
        refuse(f"run {run['run_id']}: trial numbers are not 0..{len(rows) - 1} (a trial was removed or repeated)")
    if len(rows) > run["budget"]:
        refuse(f"run {run['run_id']} has {len(rows)} trials, more than its budget {run['budget']:g}")
    absent = [f"config.{name}" for name in problem.space if f"config.{name}" not in rows.columns]
    absent += [f"objective.{name}" for name in run["objectives"] if f"objective.{name}" not in rows.columns]
    if absent:
        refuse(f"missing column {absent[0]!r} (run {run['run_id']} of {run['problem']} needs it)")
    integer = {hp.name for hp in problem.space.values() if "Integer" in type(hp).__name__}
    for index, row in rows.iterrows():
        where = f"row {_row(index)} (run {run['run_id']}, trial {row['number']})"
        for field in ("problem", "optimizer", "seed", "mode"):
            if row[field] != card[field]:
                refuse(f"{where}: {field} {row[field]!r} differs from its run card's {card[field]!r}")
        if _present(row["table_sha256"]) and row["table_sha256"] != sha:
            refuse(f"{where}: table_sha256 {row['table_sha256']} is not the shipped table's {sha}")
        config = {name: (int(row[f"config.{name}"]) if name in integer else row[f"config.{name}"])
                  for name in problem.space if _present(row[f"config.{name}"])}
        try:
            expected = problem.evaluate(validate(problem.space, config), None, run["seed"])
        except InvalidConfiguration as exc:
            refuse(f"{where}: {exc}")
        if row["status"] != expected.status.value:
            refuse(f"{where}: status {row['status']}, but the table answers this configuration {expected.status.value}")
        for name in run["objectives"] if expected.ok else ():
            value = row[f"objective.{name}"]
            if not _present(value) or not math.isclose(value, expected.objectives[name], rel_tol=VALUE_TOLERANCE):
                refuse(f"{where}: {name} {value} is not what the table gives for this configuration "
                       f"({expected.objectives[name]}); the file was altered")
        if row["source"] != expected.source or not math.isclose(row["cost"], expected.cost, rel_tol=VALUE_TOLERANCE):
            refuse(f"{where}: source {row['source']} / cost {row['cost']} differ from the table's "
                   f"({expected.source} / {expected.cost})")


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _check_seeds(refuse, runs: list[dict[str, Any]], tasks: dict[tuple, list[dict[str, Any]]]) -> None:
    """Each submitted optimizer covers every seed of the board's task (its runs are paired with them)."""
    groups: dict[tuple, set[int]] = {}
    for run in runs:
        groups.setdefault((task_key(run), run["optimizer"]), set()).add(run["seed"])
    for (key, optimizer), seeds in sorted(groups.items()):
        needed = sorted({run["seed"] for run in tasks[key]})
        absent = sorted(set(needed) - seeds)
        if absent:
            refuse(f"{optimizer} on {key[0]} {'+'.join(key[1])} has {len(seeds)} seeds; the board needs at least the"
                   f" {len(needed)} seeds {needed[0]}-{needed[-1]} (missing: {', '.join(map(str, absent))})")


def submit(path: str | Path, board_dir: str | Path, registry) -> Board:
    """Validate ``path`` and rebuild the board with it; the board folder is replaced only on success."""
    from bench.analysis.render import write_board

    board = Board.read(board_dir)
    merged = Board.merge([board, validate(path, board, registry)])
    write_board(merged, board_dir)
    return merged
