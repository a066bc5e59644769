"""Every bad input in docs/bad-input.md, run as written in a folder that already holds a store with a run, a
board, a table folder and a few files that are not what they claim: each is refused with exactly one `Error:`
line, the one the document shows, and every file in the folder is byte-identical afterwards (nothing stored
changed, nothing created). The document is the list of cases, so it cannot drift from what bench says."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tables import tables_dir
from conftest import REPO, bench_cli

DOC = REPO / "docs" / "bad-input.md"
CASE = re.compile(r"^(\d+)\. `(.+)`\n   > (.*)$", re.MULTILINE)
ONE_B = "lora-hpo-llama-3.2-1b-alpaca"


def cases() -> list[tuple[str, str, str]]:
    return CASE.findall(DOC.read_text())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """runs.sqlite (one branin run), board/ built from it and good.parquet exported from it; tables/ with the
    1B table (data file damaged), a junk and a hostile manifest; files that are not what their names say."""
    folder = tmp_path_factory.mktemp("bad-input")
    for args in (["run", "synthetic/branin", "-o", "random", "--budget", "3", "--store", "runs.sqlite"],
                 ["leaderboard", "build", "--store", "runs.sqlite", "--out", "board"],
                 ["export", "good.parquet", "--store", "runs.sqlite"]):
        out = bench_cli(*args, cwd=folder)
        assert out.returncode == 0, out.stderr
    tables = folder / "tables"
    tables.mkdir()
    for path in tables_dir().glob(f"{ONE_B}.*"):
        shutil.copy(path, tables)
    data = bytearray((tables / f"{ONE_B}.parquet").read_bytes())
    data[len(data) // 2] ^= 1
    (tables / f"{ONE_B}.parquet").write_bytes(bytes(data))
    (tables / "junk.json").write_text("[1, 2]\n")
    os.symlink("/dev/zero", tables / "zero")
    (tables / "device.json").write_text((tables / f"{ONE_B}.json").read_text().replace(f'"{ONE_B}.parquet"', '"zero"'))
    (folder / "notes").mkdir()
    (folder / "notes" / "README.md").write_text("my notes\n")
    (folder / "text.sqlite").write_text("not a database\n")
    with sqlite3.connect(folder / "foreign.sqlite") as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    (folder / "junk.parquet").write_bytes(os.urandom(256))
    (folder / "nowhere.yaml").write_text("jobs: 3\n")
    return folder


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder or a link)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
            for p in sorted(folder.rglob("*"))}


def test_the_document_lists_the_cases_numbered_in_order():
    numbers = [int(n) for n, _, _ in cases()]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 40


@pytest.mark.parametrize("number, command, error", cases(), ids=[f"case{n}" for n, _, _ in cases()])
def test_bad_input_gets_the_documented_one_line_error_and_changes_nothing(folder, number, command, error):
    words = shlex.split(command)
    env = dict(os.environ)
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        env[key] = str(folder / value)
    assert words[0] == "bench"
    before = snapshot(folder)
    out = subprocess.run([sys.executable, "-m", "bench", *words[1:]], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=120)
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error")]
    assert out.returncode != 0 and errors == [out.stderr.strip().splitlines()[-1]], out.stderr
    assert errors[0].replace(str(folder), "DIR") == error
    assert snapshot(folder) == before
