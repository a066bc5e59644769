"""Board data: runs (cards + provenance) and trials in the ``bench export`` format, read from
stores, exports and a board folder, merged, and written back byte-for-byte reproducibly."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.store import EXPORT_RUNS_KEY

TRIALS_FILE = Path("data") / "trials.parquet"
RUNS_FILE = Path("data") / "runs.json"
RUN_COLUMNS = ("problem", "optimizer", "seed", "mode", "run_id")


class BoardError(ValueError):
    """Board data that cannot be used as it is; the message names the fix."""


def run_key(run: dict[str, Any]) -> tuple:
    """What makes two runs the same experiment: the task, the optimizer and the seed."""
    problem, objectives, budget, surrogate = task_key(run)
    return problem, objectives, run["optimizer"], run["seed"], budget, surrogate


def task_key(run: dict[str, Any]) -> tuple:
    """Runs compared with each other: same problem, optimized objectives, budget and surrogate family (the one
    that answered a table's unmeasured configurations; "" where none did)."""
    return run["problem"], tuple(run["objectives"]), run["budget"], surrogate_of(run)


def surrogate_of(run: dict[str, Any]) -> str:
    return run["card"].get("problem_info", {}).get("surrogate") or ""


def describe_run(card: dict[str, Any], run_id: int, provenance: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "problem": card["problem"], "optimizer": card["optimizer"], "seed": card["seed"],
            "budget": card["budget"], "objectives": list(card["optimized_objectives"]),
            "provenance": provenance, "card": card}


@dataclass
class Board:
    runs: list[dict[str, Any]]  # describe_run() dicts, in board order
    trials: Any  # pandas DataFrame in the export format; run_id refers to ``runs``

    @classmethod
    def read(cls, folder: str | Path) -> Board:
        import pyarrow.parquet as pq

        folder = Path(folder)
        if not is_board(folder) or not (folder / TRIALS_FILE).exists():
            raise BoardError(f"{folder} holds no board data ({RUNS_FILE}, {TRIALS_FILE}); build it with --store")
        runs = json.loads((folder / RUNS_FILE).read_text())
        return cls(runs, pq.read_table(folder / TRIALS_FILE).to_pandas())

    @classmethod
    def from_stores(cls, paths, provenance: dict[str, Any] | None = None) -> tuple[Board, int]:
        """Every complete run of the stores; returns the board and how many unfinished runs were left out."""
        from bench.store import Store

        boards, unfinished = [], 0
        with tempfile.TemporaryDirectory() as tmp:
            for i, path in enumerate(paths):
                if not Path(path).exists():
                    raise BoardError(f"no results store at {path}; pass an existing --store")
                export = Path(tmp) / f"{i}.parquet"
                Store(path).export_parquet(export)
                cards, trials = read_export(export)
                done = {run_id: c for run_id, c in cards.items() if c["status"] == "complete"}
                unfinished += len(cards) - len(done)
                origin = provenance or {"origin": f"results store {Path(path).name}"}
                boards.append(cls([describe_run(c["card"], run_id, origin) for run_id, c in done.items()],
                                  trials[trials["run_id"].isin(list(done))]))
        return cls.merge(boards), unfinished

    @classmethod
    def merge(cls, boards: list[Board]) -> Board:
        """One board from several, runs renumbered in a fixed order; the same run twice is refused."""
        import pandas as pd

        entries = []
        for board in boards:
            by_run = dict(iter(board.trials.groupby("run_id", sort=False)))
            entries += [(run, by_run.get(run["run_id"], board.trials.iloc[:0])) for run in board.runs]
        entries.sort(key=lambda entry: (run_key(entry[0]), json.dumps(entry[0]["provenance"], sort_keys=True)))
        runs, frames = [], []
        for new_id, (run, trials) in enumerate(entries, start=1):
            if runs and run_key(runs[-1]) == run_key(run):
                first, second = origin_label(runs[-1]["provenance"]), origin_label(run["provenance"])
                raise BoardError(f"run {_name(run)} appears twice ({first} and {second})")
            runs.append({**run, "run_id": new_id})
            frames.append(trials.sort_values("number").assign(run_id=new_id))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RUN_COLUMNS))
        columns = sorted(frame.columns, key=lambda k: (k.count("."), k))
        return cls(runs, frame[columns])

    def write(self, folder: str | Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = Path(folder)
        (folder / TRIALS_FILE).parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(self.trials, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, folder / TRIALS_FILE)
        (folder / RUNS_FILE).write_text(json.dumps(self.runs, indent=1, sort_keys=True) + "\n")

    def tasks(self) -> dict[tuple, list[dict[str, Any]]]:
        out: dict[tuple, list[dict[str, Any]]] = {}
        for run in self.runs:
            out.setdefault(task_key(run), []).append(run)
        return dict(sorted(out.items()))


def is_board(folder: str | Path) -> bool:
    return (Path(folder) / RUNS_FILE).is_file()


def read_export(path: str | Path, max_rows: int | None = None) -> tuple[dict[int, dict[str, Any]], Any]:
    """A ``bench export`` file: {run_id: {status, card}} from its metadata, and its trials. With ``max_rows``,
    a file with more rows is refused from its footer, and again while its row groups are read (streamed, so a
    small file that inflates to gigabytes is never held whole)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    too_many = f"{path} holds more than {max_rows} trials, more than a submission may; export the board's tasks only"
    if max_rows is not None and file.metadata.num_rows > max_rows:
        raise BoardError(too_many)
    raw = (file.schema_arrow.metadata or {}).get(EXPORT_RUNS_KEY.encode())
    if raw is None:
        raise BoardError(f"{path} has no run cards (Parquet metadata {EXPORT_RUNS_KEY!r}); write it with bench export")
    cards = {int(c["run_id"]): c for c in json.loads(raw)}
    batches, rows = [], 0
    for batch in file.iter_batches():
        rows += batch.num_rows
        if max_rows is not None and rows > max_rows:
            raise BoardError(too_many)
        batches.append(batch)
    schema = file.schema_arrow.remove_metadata()
    return cards, pa.Table.from_batches(batches, schema=schema).to_pandas()


def _name(run: dict[str, Any]) -> str:
    family = f" ({surrogate_of(run)} surrogate)" if surrogate_of(run) else ""
    return (f"{run['problem']} {'+'.join(run['objectives'])} {run['optimizer']} seed {run['seed']} budget"
            f" {run['budget']:g}{family}")


def origin_label(provenance: dict[str, Any]) -> str:
    """Where runs came from, for people: 'bench leaderboard publish', 'submission x.parquet (sha256 0123abcd4567),
    replay-verified on 2 seed(s) per optimizer'."""
    digest, replayed = provenance.get("file_sha256"), provenance.get("replayed_seeds")
    label = provenance["origin"] + (f" (sha256 {digest[:12]})" if digest else "")
    if digest:
        label += f", replay-verified on {replayed} seed(s) per optimizer" if replayed else ", not replay-verified"
    return label
