"""CLI conventions: every command takes -q and -v, every command that reports takes --json, and each does
what it says."""

from __future__ import annotations

import json

import click

from bench.cli import main
from conftest import bench_cli

REPORTING = {"list", "run", "show", "table list", "table info", "table verify", "leaderboard build",
             "leaderboard publish", "leaderboard submit"}


def commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    found = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


def test_every_command_takes_quiet_and_verbose_and_every_reporting_one_json():
    found = commands()
    assert REPORTING <= set(found) and len(found) >= 12
    for name, command in found.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"-q", "--quiet", "-v", "--verbose"} <= options, name
        assert ("--json" in options) == (name in REPORTING), name


def test_quiet_prints_only_what_was_asked_json_parses_and_verbose_shows_the_traceback(tmp_path):
    store = str(tmp_path / "runs.sqlite")
    quiet = bench_cli("run", "synthetic/branin", "-o", "random", "--budget", "3", "--store", store, "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    ran = json.loads(bench_cli("run", "synthetic/branin", "-o", "lhs", "--budget", "3", "--store", store,
                               "--json").stdout)
    assert [(r["optimizer"], r["trials"], r["optimized"]) for r in ran] == [("lhs", 3, ["value"])]
    verified = json.loads(bench_cli("table", "verify", "--json").stdout)
    assert verified and all(item["ok"] and len(item["sha256"]) == 64 for item in verified)
    assert bench_cli("export", str(tmp_path / "t.parquet"), "--store", store, "-q").stdout == ""
    wrong = bench_cli("run", "synthetic/branni", "-o", "random", "--store", store, "-v")
    assert "Traceback" in wrong.stderr and wrong.stderr.strip().splitlines()[-1].startswith("Error: unknown problem")
