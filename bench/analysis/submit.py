"""Outside submissions: a ``bench export`` file from someone else's runs, checked against the board
(size, schema, names, run cards, suite and plugin versions, table sha256, the whole budget, the simulated
clock's times, seeds, and every value re-read from the table) before it is merged with its provenance;
with ``verify``, some of its runs are rerun here and must come out trial for trial the same. A refused
file changes nothing."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from bench.analysis.data import Board, BoardError, describe_run, read_export, run_key, task_key

TRIAL_COLUMNS = ("problem", "optimizer", "seed", "mode", "run_id", "number", "status", "error", "source", "fidelity",
                 "cost", "worker", "start", "end", "table_sha256")
VALUE_TOLERANCE = 1e-9
# Far more than any board task needs (tasks x 10 seeds x a budget of 50, or a few thousand multi-fidelity trials),
# far less than what exhausts memory: a 2 MB file once inflated to 20 million rows and 5.8 GB.
MAX_ROWS = 200_000
MAX_FILE_BYTES = 256 * 2**20
MAX_FOOTER_BYTES = 16 * 2**20
# Names go into README.md tables and index.html: letters, digits and . _ + : - only (no markup, no '|', no
# control or bidirectional characters), as every built-in name is.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:/-]{0,79}")


class SubmissionError(BoardError):
    """A submission the board refuses; the message gives the first reason, down to the row."""


def validate(path: str | Path, board: Board, registry, verify: int = 0) -> Board:
    """The submission as a board of its own (provenance attached), or SubmissionError. ``verify`` > 0 reruns
    that many seeds of each submitted optimizer on each task here (issue 14: values are checked against the
    table, but only a replay shows the named optimizer produced them)."""
    path = Path(path)
    refuse = _refuser(path)
    if not SAFE_NAME.fullmatch(path.name):
        refuse("the file name goes onto the board; rename it to letters, digits and . _ + - only")
    if path.stat().st_size > MAX_FILE_BYTES:
        refuse(f"it is {path.stat().st_size} bytes, more than the {MAX_FILE_BYTES} a submission may be")
    try:
        import pyarrow.parquet as pq

        footer = pq.ParquetFile(path).metadata
        if footer.serialized_size > MAX_FOOTER_BYTES:
            refuse(f"its metadata is {footer.serialized_size} bytes, more than the {MAX_FOOTER_BYTES} a submission's may be")
        cards, trials = read_export(path, MAX_ROWS)
    except BoardError as exc:
        raise SubmissionError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - anything unreadable is refused with its reason
        raise SubmissionError(f"{path} is not a readable bench export ({str(exc).splitlines()[0]}); submit the file"
                              " `bench export` writes") from exc
    missing = [c for c in TRIAL_COLUMNS if c not in trials.columns]
    if missing:
        refuse(f"missing column {missing[0]!r} (a bench export has {', '.join(TRIAL_COLUMNS)})")
    if trials.empty:
        refuse("holds no trials")
    tasks = {key: runs for key, runs in board.tasks().items()}
    reference = {key: runs[0]["card"] for key, runs in tasks.items()}
    on_board = {run_key(run): run for run in board.runs}
    problems: dict[tuple, Any] = {}
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
        if not SAFE_NAME.fullmatch(str(run["optimizer"])):
            refuse(f"run {run_id}: optimizer name {run['optimizer']!r} is not letters, digits and . _ + : - only")
        key = task_key(run)
        if key not in tasks:
            refuse(f"run {run_id}: the board has no {run['problem']} optimizing {'+'.join(run['objectives'])} at budget"
                   f" {run['budget']:g}{_family(key[3])}; its tasks are: " + "; ".join(
                       f"{p} {'+'.join(o)} budget {b:g}{_family(f)}" for p, o, b, f in tasks))
        _check_card(refuse, run_id, card, reference[key])
        if run_key(run) in on_board:
            refuse(f"run {run_id} ({run['optimizer']} seed {run['seed']}) is already on the board")
        options = {k: card[k] for k in ("noise", "surrogate") if card.get(k) is not None}
        key = (run["problem"], json.dumps(options, sort_keys=True))
        if key not in problems:  # the table as the run saw it: its noise and surrogate family
            problems[key] = registry.problem(run["problem"]).create(card["mode"], **options)
        _check_trials(refuse, rows_of[run_id], run, card, problems[key])
        _check_times(refuse, rows_of[run_id].sort_values("number"), run, card)
        runs.append(run)
    _check_seeds(refuse, runs, tasks)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    provenance = {"origin": f"submission {path.name}", "file_sha256": digest}
    if verify:
        _replay(refuse, runs, rows_of, registry, verify)
        provenance["replayed_seeds"] = verify
    return Board([{**run, "provenance": provenance} for run in runs], trials)


def _family(surrogate: str) -> str:
    return f" ({surrogate} surrogate)" if surrogate else ""


def _refuser(path: Path):
    def refuse(reason: str):
        raise SubmissionError(f"refused {path.name}: {reason}")
    return refuse


def _row(index) -> int:
    """1-based row number in the file."""
    return int(index) + 1


def _check_card(refuse, run_id: int, card: dict[str, Any], board_card: dict[str, Any]) -> None:
    if card.get("mode") != board_card["mode"]:
        refuse(f"run {run_id} ran in {card.get('mode')!r} mode; the board's runs of its task ran in"
               f" {board_card['mode']!r} mode")
    if card.get("workers", 1) != board_card.get("workers", 1):
        refuse(f"run {run_id} used {card.get('workers')} workers; the board's runs use {board_card.get('workers')}")
    if card.get("suite_version") != board_card["suite_version"]:
        refuse(f"run {run_id} was made with bench {card.get('suite_version')}; the board's runs use bench "
               f"{board_card['suite_version']}")
    for plugin, version in sorted(card.get("plugins", {}).items()):
        expected = board_card["plugins"].get(plugin)
        if expected is not None and version != expected:
            refuse(f"run {run_id} used plugin {plugin} {version}; the board's runs use {expected}")
    for option in ("max_cost", "trial_timeout", "noise"):  # the surrogate family is part of the task
        if card.get(option) != board_card.get(option):
            refuse(f"run {run_id} ran with {option} {card.get(option)}; the board's runs with {board_card.get(option)}")
    if card.get("executor", {}).get("name") != "local":
        refuse(f"run {run_id} ran on the {card.get('executor', {}).get('name')!r} executor; the board compares runs"
               " on the simulated clock (--executor local)")
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
    files = problem.describe().get("table_files")
    if card["problem_info"].get("table_files") != files:
        refuse(f"run {run['run_id']}'s run card names table files {card['problem_info'].get('table_files')}; the shipped"
               f" table's are {files} (a surrogate or manifest differs)")
    rows = rows.sort_values("number")
    if list(rows["number"]) != list(range(len(rows))):
        refuse(f"run {run['run_id']}: trial numbers are not 0..{len(rows) - 1} (a trial was removed or repeated)")
    fraction = problem.fidelity.fraction if problem.fidelity else (lambda _: 1.0)
    full = problem.fidelity.max if problem.fidelity else None
    used = [fraction(f if _present(f) else full) for f in rows["fidelity"]]
    if sum(used) < run["budget"] - 1e-9:
        refuse(f"run {run['run_id']} uses {sum(used):g} of its budget {run['budget']:g}; a complete run uses all of"
               " it (this one was cut short)")
    if sum(used[:-1]) >= run["budget"] - 1e-9:
        refuse(f"run {run['run_id']} has {len(rows)} trials, more than its budget {run['budget']:g} allows")
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
            validate(problem.space, config)  # in the space; evaluated as stored, as the run evaluated it (unrounded)
            expected = problem.evaluate(config, row["fidelity"] if _present(row["fidelity"]) else None, run["seed"])
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


def _check_times(refuse, rows, run: dict[str, Any], card: dict[str, Any]) -> None:
    """The simulated clock's times: each trial lasts its cost from a start >= 0, never more trials at once than
    workers, and one worker runs them back to back from 0 (forged times once led the board's time chart)."""
    workers = card.get("workers", 1)
    previous_end, running = 0.0, []
    for index, row in rows.iterrows():
        where = f"row {_row(index)} (run {run['run_id']}, trial {row['number']})"
        start, end, cost = row["start"], row["end"], row["cost"]
        if not all(_present(v) and math.isfinite(v) for v in (start, end, cost)) or start < 0 or cost < 0:
            refuse(f"{where}: start {start}, end {end}, cost {cost} are not times of a run")
        if not math.isclose(end - start, cost, rel_tol=VALUE_TOLERANCE, abs_tol=VALUE_TOLERANCE):
            refuse(f"{where}: it ran from {start:g} to {end:g} s, which is not its cost {cost:g} s")
        if workers == 1 and not math.isclose(start, previous_end, rel_tol=VALUE_TOLERANCE, abs_tol=VALUE_TOLERANCE):
            refuse(f"{where}: it starts at {start:g} s; one worker starts it when the trial before ends, {previous_end:g} s")
        previous_end = end
        running = [e for e in running if e > start + VALUE_TOLERANCE] + [end]
        if len(running) > workers:
            refuse(f"{where}: {len(running)} trials run at {start:g} s on {workers} worker(s)")


def _replay(refuse, runs: list[dict[str, Any]], rows_of, registry, seeds: int) -> None:
    """Rerun the first ``seeds`` seeds of each (task, optimizer) here, with the distribution and version the run
    card names, and require the same trials: configurations, fidelities, statuses, values, costs and times."""
    import tempfile

    from bench.runner import RunSpec, run as run_spec
    from bench.store import Store

    chosen: dict[tuple, list[dict[str, Any]]] = {}
    for run in sorted(runs, key=lambda r: r["seed"]):
        group = chosen.setdefault((task_key(run), run["optimizer"]), [])
        if len(group) < seeds:
            group.append(run)
    compared = ["number", "status", "fidelity", "cost", "start", "end", "source"]
    with tempfile.TemporaryDirectory() as tmp:
        for group in chosen.values():
            for run in group:
                card, named = run["card"], (run["card"].get("providers") or {}).get("optimizer")
                if not named:
                    refuse(f"run {run['run_id']}'s card names no optimizer distribution (made before run cards named"
                           " providers); it cannot be replayed")
                here = registry.provider("optimizer", card["optimizer"])
                if here is None or (here["distribution"], here["version"]) != (named["distribution"], named["version"]):
                    refuse(f"cannot replay {card['optimizer']}: its runs name {named['distribution']} {named['version']};"
                           f" install it here (pip install '{named['distribution']}=={named['version']}') to --verify")
                spec = RunSpec(card["problem"], card["optimizer"], card["seed"], card["budget"], card["mode"],
                               card.get("workers", 1), card.get("max_cost"), _tuple(card.get("objectives")),
                               card.get("trial_timeout"), card.get("noise"), card.get("surrogate"))
                store = Store(Path(tmp) / f"{run['run_id']}.sqlite")
                run_spec(spec, store, registry)
                replayed, _ = store.trial_table()
                store.close()
                replayed = replayed.to_pandas().sort_values("number").reset_index(drop=True)
                theirs = rows_of[run["run_id"]].sort_values("number").reset_index(drop=True)
                columns = compared + sorted(c for c in replayed.columns if c.startswith(("config.", "objective.")))
                if len(replayed) != len(theirs) or any(c not in theirs.columns for c in columns):
                    refuse(f"run {run['run_id']} ({card['optimizer']} seed {card['seed']}): rerun here it gives"
                           f" {len(replayed)} trials, the file {len(theirs)}; these are not its trials")
                for i in range(len(replayed)):
                    differ = [c for c in columns if not _same(replayed.at[i, c], theirs.at[i, c])]
                    if differ:
                        refuse(f"run {run['run_id']} ({card['optimizer']} seed {card['seed']}), trial {i}: {differ[0]}"
                               f" {theirs.at[i, differ[0]]!r} in the file, {replayed.at[i, differ[0]]!r} when"
                               f" {named['distribution']} {named['version']} reruns it here{_elsewhere(card)}")


def _elsewhere(card: dict[str, Any]) -> str:
    """Why an honest run may not replay here: numerical libraries round differently on another CPU kind."""
    from bench.runner import cpu_model

    theirs, ours = (card.get("hardware") or {}).get("processor"), cpu_model()
    if not theirs or theirs == ours:
        return ""
    return (f" (its runs were made on {theirs}, this machine is {ours}: numerical libraries round differently on"
            " another kind of CPU, so replay on the runs' kind)")


def _tuple(value):
    return tuple(value) if value else None


def _same(a, b) -> bool:
    if not _present(a) or not _present(b):
        return not _present(a) and not _present(b)
    return a == b


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
            refuse(f"{optimizer} on {key[0]} {'+'.join(key[1])}{_family(key[3])} has {len(seeds)} seeds; the board"
                   f" needs at least the {len(needed)} seeds {needed[0]}-{needed[-1]} (missing: {', '.join(map(str, absent))})")


def submit(path: str | Path, board_dir: str | Path, registry, verify: int = 0) -> Board:
    """Validate ``path`` (replaying ``verify`` seeds of each optimizer) and rebuild the board with it; the
    board folder is replaced only on success."""
    from bench.analysis.render import write_board

    board = Board.read(board_dir)
    merged = Board.merge([board, validate(path, board, registry, verify)])
    write_board(merged, board_dir)
    return merged
