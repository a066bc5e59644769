"""SQLite results store: one row per trial, a run card per run, Parquet export.

Trials are buffered and committed (WAL) by the runner at least every half second of work,
and at once after any trial that took longer, so a run killed at any point loses at most
that much cheap work; ``--resume`` finds the unfinished run by its inputs.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.trial import Result, Status, StoredTrial, Trial

SCHEMA_VERSION = 1
EXPORT_RUNS_KEY = "bench.runs"  # Parquet metadata key of an export's run cards

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,            -- the run's inputs as JSON: what --resume matches on
    problem TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    seed INTEGER NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,         -- running | complete
    created TEXT NOT NULL,
    finished TEXT,
    card TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_key ON runs (key, status);
CREATE TABLE IF NOT EXISTS trials (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    number INTEGER NOT NULL,      -- order in which the optimizer proposed it
    config TEXT NOT NULL,
    fidelity REAL,                -- as proposed (NULL: the problem's full fidelity)
    info TEXT NOT NULL,
    status TEXT NOT NULL,
    objectives TEXT NOT NULL,
    cost REAL NOT NULL,
    error TEXT,
    source TEXT NOT NULL,
    result_fidelity REAL,         -- as evaluated
    table_sha256 TEXT,
    worker INTEGER NOT NULL,
    start REAL NOT NULL,          -- simulated (or real) seconds since the run started
    end REAL NOT NULL,
    extra TEXT NOT NULL,
    recorded TEXT NOT NULL,
    PRIMARY KEY (run_id, number)
);
"""


# A trial line of a JSON Lines export: every column of the trials table, in this order.
TRIAL_FIELDS = ("number", "config", "fidelity", "info", "status", "objectives", "cost", "error", "source",
                "result_fidelity", "table_sha256", "extra", "worker", "start", "end", "recorded")
_JSON_FIELDS = ("config", "info", "objectives", "extra")


class StoreError(Exception):
    """The store file is unusable; the message names the fix."""


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            found = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if found and "meta" not in found:  # checked before WAL, which would change someone else's file
                self.db.close()
                raise StoreError(f"{self.path} is an SQLite file but not a bench results store; pass another --store")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            with self.db:
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open results store {self.path}: {exc}; pass another --store") from exc
        self._pending: list[tuple] = []
        if int(version) != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has store schema {version}, this bench reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.flush()
        self.db.close()

    def unfinished_run(self, key: str) -> int | None:
        row = self.db.execute(
            "SELECT id FROM runs WHERE key=? AND status='running' ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()
        return row[0] if row else None

    def complete_run(self, key: str) -> int | None:
        row = self.db.execute(
            "SELECT id FROM runs WHERE key=? AND status='complete' ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()
        return row[0] if row else None

    def create_run(self, key: str, card: dict[str, Any]) -> int:
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO runs (key, problem, optimizer, seed, mode, status, created, card)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                (key, card["problem"], card["optimizer"], card["seed"], card["mode"], now_utc(), json.dumps(card)),
            )
        return int(cursor.lastrowid)

    def delete_runs(self, run_ids: list[int]) -> None:
        """Remove runs and their trials, all or none: an id not in the store deletes nothing."""
        self.flush()
        known = {row[0] for row in self.db.execute("SELECT id FROM runs")}
        if unknown := [i for i in run_ids if i not in known]:
            raise StoreError(f"{self.path} has no run {unknown[0]}; `bench show --store {self.path}` lists the runs")
        with self.db:
            self.db.executemany("DELETE FROM trials WHERE run_id=?", [(i,) for i in run_ids])
            self.db.executemany("DELETE FROM runs WHERE id=?", [(i,) for i in run_ids])

    def finish_run(self, run_id: int) -> None:
        self.flush()
        with self.db:
            self.db.execute("UPDATE runs SET status='complete', finished=? WHERE id=?", (now_utc(), run_id))

    def add_trial(self, run_id: int, stored: StoredTrial) -> None:
        """Buffer one trial; it is durable after the next ``flush``."""
        t, r = stored.trial, stored.result
        self._pending.append((
            run_id, stored.number, json.dumps(t.config), t.fidelity, json.dumps(t.info),
            r.status.value, json.dumps(r.objectives), r.cost, r.error, r.source, r.fidelity, r.table_sha256,
            stored.worker, stored.start, stored.end, json.dumps(r.extra), now_utc(),
        ))

    def flush(self) -> None:
        if self._pending:
            with self.db:
                self.db.executemany("INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                    self._pending)
            self._pending.clear()

    def trials(self, run_id: int) -> list[StoredTrial]:
        self.flush()
        rows = self.db.execute(
            "SELECT number, config, fidelity, info, status, objectives, cost, error, source, result_fidelity, table_sha256,"
            " worker, start, end, extra FROM trials WHERE run_id=? ORDER BY number",
            (run_id,),
        )
        out = []
        for number, config, fidelity, info, status, objectives, cost, error, source, evaluated, sha, worker, start, end, \
                extra in rows:
            result = Result(
                objectives=json.loads(objectives), cost=cost, status=Status(status), error=error,
                source=source, fidelity=evaluated, table_sha256=sha, extra=json.loads(extra),
            )
            trial = Trial(json.loads(config), fidelity, json.loads(info))
            out.append(StoredTrial(number, trial, result, worker, start, end))
        return out

    def write_jsonl(self, path: str | Path, keys: list[str]) -> None:
        """Rewrite ``path`` atomically with the runs of ``keys`` (the one ``--resume`` would continue, else
        the last complete one), in that order: per run a line ``{"run", "status", "created", "finished",
        "card"}``, then one line per trial with every column (``TRIAL_FIELDS``), by number.

        Plain text that people commit and diff: the canonical copy of measurements that took hours."""
        self.flush()
        lines = []
        for key in keys:
            run_id = self.unfinished_run(key) or self.complete_run(key)
            if run_id is None:
                continue
            status, created, finished, card = self.db.execute(
                "SELECT status, created, finished, card FROM runs WHERE id=?", (run_id,)).fetchone()
            lines.append(json.dumps({"run": key, "status": status, "created": created, "finished": finished,
                                     "card": json.loads(card)}))
            rows = self.db.execute(f"SELECT {', '.join(TRIAL_FIELDS)} FROM trials WHERE run_id=? ORDER BY number",
                                   (run_id,))
            for row in rows:
                trial = dict(zip(TRIAL_FIELDS, row))
                for name in _JSON_FIELDS:
                    trial[name] = json.loads(trial[name])
                lines.append(json.dumps({"run": key, **trial}))
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        partial.write_text("".join(line + "\n" for line in lines))
        os.replace(partial, path)

    def load_jsonl(self, runs: list[dict[str, Any]]) -> int:
        """Insert the runs of ``read_jsonl`` this store lacks (by key), with their status, times and
        trials exactly as recorded; return how many. How a store is rebuilt from committed rows."""
        self.flush()
        added = 0
        with self.db:
            for run in runs:
                if self.db.execute("SELECT 1 FROM runs WHERE key=?", (run["run"],)).fetchone():
                    continue
                card = run["card"]
                run_id = self.db.execute(
                    "INSERT INTO runs (key, problem, optimizer, seed, mode, status, created, finished, card)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run["run"], card["problem"], card["optimizer"], card["seed"], card["mode"], run["status"],
                     run["created"], run["finished"], json.dumps(card)),
                ).lastrowid
                self.db.executemany(
                    f"INSERT INTO trials (run_id, {', '.join(TRIAL_FIELDS)}) VALUES ({', '.join('?' * (1 + len(TRIAL_FIELDS)))})",
                    [(run_id, *(json.dumps(t[f]) if f in _JSON_FIELDS else t[f] for f in TRIAL_FIELDS))
                     for t in run["trials"]],
                )
                added += 1
        return added

    def runs(self, problem: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT id, problem, optimizer, seed, mode, status, card FROM runs"
        args: tuple = ()
        if problem:
            query, args = query + " WHERE problem=?", (problem,)
        cols = ("id", "problem", "optimizer", "seed", "mode", "status", "card")
        runs = [dict(zip(cols, row)) for row in self.db.execute(query + " ORDER BY id", args)]
        for run in runs:
            run["card"] = json.loads(run["card"])
        return runs

    def export_parquet(self, out: str | Path, problem: str | None = None) -> int:
        """Write ``trial_table`` to ``out``; returns rows written.

        The file's metadata ``bench.runs`` holds each run's status and run card, so an export is a
        complete submission to a leaderboard (``bench leaderboard submit``)."""
        import pyarrow.parquet as pq

        table, cards = self.trial_table(problem)
        pq.write_table(table.replace_schema_metadata({EXPORT_RUNS_KEY: json.dumps(cards)}), out)
        return table.num_rows

    def trial_table(self, problem: str | None = None):
        """One row per trial with its run's inputs, config.*, objective.* (as observed) and, for noisy
        observations, noise_free.* columns (an Arrow table), and each run's status and card."""
        import pyarrow as pa

        rows = []
        runs = self.runs(problem)
        for run in runs:
            for st in self.trials(run["id"]):
                row = {k: run[k] for k in ("problem", "optimizer", "seed", "mode")}
                row.update(run_id=run["id"], number=st.number, status=st.result.status.value,
                           error=st.result.error, source=st.result.source, fidelity=st.result.fidelity,
                           cost=st.result.cost, worker=st.worker, start=st.start, end=st.end,
                           table_sha256=st.result.table_sha256)
                row.update({f"config.{k}": v for k, v in st.trial.config.items()})
                row.update({f"objective.{k}": v for k, v in st.result.objectives.items()})
                # a noisy observation's noise-free value, what the board scores a run's choice by
                row.update({f"noise_free.{k}": v for k, v in st.result.extra.get("noise_free", {}).items()})
                rows.append(row)
        columns = sorted({k for row in rows for k in row}, key=lambda k: (k.count("."), k))
        table = pa.Table.from_pylist([{k: row.get(k) for k in columns} for row in rows])
        return table, [{"run_id": run["id"], "status": run["status"], "card": run["card"]} for run in runs]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The runs of a ``Store.write_jsonl`` file, each with its ``trials`` (dicts of ``TRIAL_FIELDS``)."""
    runs: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        try:
            item = json.loads(line)
            if "card" in item:
                runs[item["run"]] = {**item, "trials": []}
            else:
                runs[item["run"]]["trials"].append({f: item[f] for f in TRIAL_FIELDS})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StoreError(f"{path} line {number} is not a run or trial line ({type(exc).__name__}: {exc});"
                             " restore the file from version control") from exc
    return list(runs.values())
