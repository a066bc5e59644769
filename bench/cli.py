"""The ``bench`` command line: list, run, show, export, runs, table, leaderboard.

Importing this module loads no torch, transformers, smac or nevergrad, and no numpy:
plugins are listed from their specs, and heavy modules load inside the commands that
need them.
"""

from __future__ import annotations

import re
import sys

import click

from bench import __version__
from bench.hookspecs import EXECUTORS, MODES

DEFAULT_STORE = "bench-results.sqlite"
_store_option = click.option(
    "--store", envvar="BENCH_STORE", default=DEFAULT_STORE, show_default=True,
    help="SQLite results file (or $BENCH_STORE).",
)


def _executor_options(command):
    """Where trials run: the same options for `bench run` and `bench table build`."""
    for option in reversed([
        click.option("--workers", default=1, show_default=True,
                     help="Parallel workers: simulated with --executor local, real processes otherwise."),
        click.option("--executor", type=click.Choice(EXECUTORS), default="local",
                     show_default=True, help="local: in-process on a simulated clock; process: a local process"
                     " pool; dask: a Dask cluster."),
        click.option("--scheduler", default=None, help="Dask: address of a running scheduler, e.g. tcp://host:8786."),
        click.option("--cluster", "cluster_file", type=click.Path(dir_okay=False), default=None,
                     help="Dask: a dask-jobqueue cluster (Slurm, PBS, ...) from this YAML file."),
        click.option("--gpus", default=None, help="process/dask: pin one worker per listed GPU, e.g. 0,1,2,3."),
        click.option("--retries", default=1, show_default=True,
                     help="process/dask: run a trial again this often when its worker dies."),
    ]):
        command = option(command)
    return command


def _make_executor(executor, workers, scheduler, cluster_file, gpus, retries):
    from bench.executors import make_executor

    gpu_list = tuple(g.strip() for g in gpus.split(",") if g.strip()) if gpus else ()
    if gpu_list and workers != len(gpu_list):
        raise ValueError(f"--gpus lists {len(gpu_list)} GPUs; give --workers {len(gpu_list)}, one per GPU")
    return make_executor(executor, workers, retries=retries, gpus=gpu_list, scheduler=scheduler, cluster=cluster_file)


MAX_SEEDS = 10_000  # more runs than anyone means; a typo like 0-100000000 is refused, not run out of memory


def parse_seeds(text: str) -> list[int]:
    """'0-9', '0,3,5' or a mix like '0-2,7' -> sorted distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or (match[2] is not None and int(match[2]) < int(match[1])):
            raise click.BadParameter(f"{text!r} is not a seed list; write it like 0-9 or 0,3,5", param_hint="--seeds")
        first, last = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if last - first + 1 + len(seeds) > MAX_SEEDS:
            raise click.BadParameter(f"{text!r} is more than {MAX_SEEDS} seeds; give fewer, like 0-9",
                                     param_hint="--seeds")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def _fail(exc: BaseException) -> click.ClickException:
    text = str(exc).strip().splitlines()
    return click.ClickException(text[0] if text else type(exc).__name__)


_VERBOSITY = {"quiet": False, "verbose": False}


def _set_verbosity(ctx, param, value):
    if value:
        _VERBOSITY[param.name] = True
        if param.name == "verbose":
            import logging

            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


class _Command(click.Command):
    """Every command takes -q (errors and requested output only: no progress, no notes) and -v (log what
    happens, and show an error's traceback above its one line)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params += [
            click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, is_eager=True, callback=_set_verbosity,
                         help="Print only errors and what was asked for (no progress, no notes)."),
            click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, is_eager=True, callback=_set_verbosity,
                         help="Log what happens, and show an error's traceback above its one line."),
        ]


def _echo_json(data) -> None:
    import json  # only for --json

    click.echo(json.dumps(data, indent=2))


def _note(message: str, err: bool = False) -> None:
    """A line for people (what was written, what was left out); -q silences it."""
    if not _VERBOSITY["quiet"]:
        click.echo(message, err=err)


class _OneLineErrors(click.Group):
    """Every command's error becomes one `Error:` line naming the fix, never a traceback (Ctrl-C still stops)."""

    command_class = _Command
    group_class = type  # subgroups are of this class too, so their commands take -q and -v

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if _VERBOSITY["verbose"]:
                import traceback

                traceback.print_exc()
            raise _fail(exc) from exc


@click.group(cls=_OneLineErrors)
@click.version_option(__version__, prog_name="bench")
def main() -> None:
    """Benchmark HPO and NAS optimizers on LLM problems, live or from tables of real measurements."""


@main.command("list")
@click.argument("what", required=False, type=click.Choice(["problems", "optimizers"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(what: str | None, as_json: bool) -> None:
    """List problems and optimizers from every installed plugin (and broken plugins)."""
    from bench.registry import Registry

    registry = Registry()
    data = {
        "problems": [spec.describe() for spec in registry.problems.values()],
        "optimizers": [spec.describe() for spec in registry.optimizers.values()],
        "broken": [b._asdict() for b in registry.broken],
    }
    if what:
        data = {what: data[what], "broken": data["broken"]}
    if as_json:
        _echo_json(data)
        return
    for section in ("problems", "optimizers"):
        if section in data:
            click.echo(f"{section}:")
            for item in data[section]:
                click.echo(f"  {item['name']:<34} {item['summary']}{_unavailable(item)}")
    for broken in data["broken"]:
        click.echo(f"broken plugin {broken['name']} ({broken['distribution']}): {broken['error']}", err=True)


def _unavailable(item: dict) -> str:
    """What `bench list` adds to a plugin whose libraries are not installed."""
    if item.get("available") is False:
        return f"  [unavailable: {item['install']}]"
    return "".join(f"  [{mode} mode unavailable: {install}]" for mode, install in item.get("unavailable_modes", {}).items())


@main.command()
@click.argument("problems", nargs=-1, required=True)
@click.option("--optimizer", "-o", "optimizers", multiple=True, required=True,
              help="Optimizer name; repeat to compare several.")
@click.option("--budget", default=50.0, show_default=True,
              help="Evaluations per run (full-fidelity equivalents).")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. 0-9 or 0,3,5.")
@click.option("--mode", type=click.Choice(MODES), default=None, help="Default: the problem's first mode.")
@_executor_options
@click.option("--max-cost", type=float, default=None, help="Also stop once trials' summed cost reaches this (s).")
@click.option("--trial-timeout", type=float, default=None,
              help="Store a trial that runs (or, from a table, costs) longer than this many seconds as timeout.")
@click.option("--noise", type=click.Choice(["on", "off"]), default=None,
              help="Table mode: observe unmeasured configurations with the table's measurement noise (default on;"
                   " off reproduces the noise-free predictions, for debugging).")
@click.option("--surrogate", default=None,
              help="Table mode: the surrogate family that answers unmeasured configurations (default: the table's"
                   " first; `bench table info` lists them).")
@click.option("--objective", "objectives", multiple=True,
              help="Objective to optimize; repeat for several. Default: the problem's default objectives.")
@_store_option
@click.option("--resume", is_flag=True, help="Continue unfinished runs with the same inputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs' summaries as JSON (as `bench show --json`).")
def run(problems, optimizers, budget, seeds, mode, workers, executor, scheduler, cluster_file, gpus, retries,
        max_cost, trial_timeout, noise, surrogate, objectives, store, resume, as_json) -> None:
    """Run every PROBLEM x --optimizer x seed and store the trials."""
    from bench import runner
    from bench.api import open_store, plan
    from bench.registry import Registry

    seed_list = parse_seeds(seeds)
    registry = Registry()
    instances, specs = plan(registry, problems, optimizers, seed_list, budget, mode=mode, workers=workers,
                            max_cost=max_cost, objectives=objectives, trial_timeout=trial_timeout,
                            noise=None if noise is None else noise == "on", surrogate=surrogate)
    running = _make_executor(executor, workers, scheduler, cluster_file, gpus, retries)  # options checked first
    try:
        results = open_store(store, specs, resume)
    except Exception:
        running.close()
        raise
    run_ids = []
    with _progress() as progress, running:
        for spec in specs:
            task = progress.add_task(f"{spec.problem} {spec.optimizer} seed {spec.seed}", total=spec.budget)
            run_ids.append(runner.run(
                spec, results, registry, problem=instances[spec.problem], resume=resume, executor=running,
                progress=lambda told, used, task=task: progress.update(task, completed=used),
            ))
    summaries = [s for s in _summaries(results) if s["run"] in run_ids]
    if as_json:
        _echo_json(summaries)
    elif not _VERBOSITY["quiet"]:
        _print_summaries(summaries)


@main.command()
@_store_option
@click.option("--problem", default=None, help="Only runs of this problem.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(store, problem, as_json) -> None:
    """Per run: inputs, trial and failure counts, value sources and best objective values."""

    summaries = _summaries(_existing_store(store), problem)
    if as_json:
        _echo_json(summaries)
    else:
        _print_summaries(summaries)


@main.command()
@click.argument("out", type=click.Path(dir_okay=False))
@_store_option
@click.option("--problem", default=None, help="Only runs of this problem.")
def export(out, store, problem) -> None:
    """Write every trial of the store to a Parquet file OUT."""

    rows = _existing_store(store).export_parquet(out, problem)
    _note(f"wrote {rows} trials to {out}")


def _existing_store(path):
    from bench.api import existing_store

    return existing_store(path)


@main.group()
def runs() -> None:
    """Manage stored runs."""


@runs.command("delete")
@click.argument("run_ids", metavar="RUN...", nargs=-1, required=True, type=int)
@_store_option
def runs_delete(run_ids, store) -> None:
    """Remove runs (ids from `bench show`) and their trials from the store, so they can be run again."""
    _existing_store(store).delete_runs(list(dict.fromkeys(run_ids)))
    _note(f"deleted run(s) {', '.join(map(str, dict.fromkeys(run_ids)))} from {store}")


@main.group()
def table() -> None:
    """Tables of real measurements: list, inspect, verify, build."""


@table.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def table_list(as_json) -> None:
    """Every table with its problem, rows and surrogate quality; a broken manifest is named on stderr."""
    from bench.tables import TableError, read_manifest, table_names

    items = []
    for name in table_names():
        try:
            manifest = read_manifest(name)
        except TableError as exc:  # one broken manifest in $BENCH_TABLES does not hide the others
            click.echo(f"broken table {name}: {exc}", err=True)
            continue
        surrogates = manifest.get("surrogates", {})
        items.append({"name": name, "problem": manifest.get("problem"), "rows": manifest["rows"],
                      "sha256": manifest["sha256"], "license": manifest.get("provenance", {}).get("source", {}).get(
                          "license"), "surrogate_spearman": {family: {o: q["spearman"] for o, q in entry["quality"].items()}
                                                             for family, entry in surrogates.items()}})
    if as_json:
        _echo_json(items)
        return
    for item in items:
        spearman = "; ".join(f"{family} " + ", ".join(f"{o} {v:.2f}" for o, v in values.items() if v is not None)
                             for family, values in item["surrogate_spearman"].items())
        click.echo(f"{item['name']:<32} {item['problem']:<30} {item['rows']:>5} rows  held-out Spearman: {spearman}")


@table.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The whole manifest as JSON.")
def table_info(name, as_json) -> None:
    """Table NAME: its problem, rows, space, noise, surrogates and provenance (--json: the whole manifest)."""
    from bench.tables import read_manifest

    manifest = read_manifest(name)
    manifest["space"] = {hp["name"]: {k: v for k, v in hp.items() if k in ("type", "lower", "upper", "log", "choices")}
                         for hp in manifest["space"]["hyperparameters"]}
    if as_json:
        _echo_json(manifest)
        return
    import json

    source = manifest.get("provenance", {}).get("source", {})
    click.echo(f"{name}: {manifest['rows']} rows of {manifest.get('problem')}, data sha256 {manifest['sha256']}")
    for hp, bounds in manifest["space"].items():
        click.echo(f"  {hp}: " + ", ".join(f"{k} {v}" for k, v in bounds.items()))
    if manifest.get("fidelity"):
        click.echo(f"fidelity: {json.dumps(manifest['fidelity'])}")
    if manifest.get("noise"):
        click.echo(f"noise: {json.dumps(manifest['noise'])}")
    for family, entry in manifest.get("surrogates", {}).items():
        quality = ", ".join(f"{o} Spearman {q['spearman']}, MAE {q['mae']}" for o, q in entry["quality"].items())
        click.echo(f"surrogate {family} ({entry['file']}): held-out {quality}")
    if source:
        click.echo(f"source: {json.dumps(source)}")


@table.command("verify")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per table: name, ok, rows, sha256, error.")
def table_verify(names, as_json) -> None:
    """Check sha256, row count and schema of the named tables (default: all)."""
    from bench.tables import table_names, verify

    failures, report = [], []
    for name in names or table_names():
        try:
            manifest = verify(name)
        except Exception as exc:
            failures.append(str(exc))
            report.append({"name": name, "ok": False, "error": str(exc)})
            if not as_json:
                click.echo(f"FAIL {name}: {exc}")
        else:
            report.append({"name": name, "ok": True, "rows": manifest["rows"], "sha256": manifest["sha256"]})
            if not as_json:
                click.echo(f"ok   {name}: {manifest['rows']} rows, sha256 {manifest['sha256']}")
    if as_json:
        _echo_json(report)
    if len(failures) == 1:
        raise click.ClickException(failures[0])
    if failures:
        raise click.ClickException(f"{len(failures)} tables failed verification (FAIL lines above)")


@table.command("build")
@click.argument("problem")
@click.option("--design", required=True, help="The configurations to measure: sobol:N (a scrambled Sobol design), or a"
              " kind the problem brings (distilbert-nas: mutation:N).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder of the table: NAME.trials.jsonl (the measured rows, to commit) and the table files.")
@click.option("--seeds", default="0", show_default=True,
              help="Training seeds, e.g. 0-2: the first measures every design point, the others --repeats of them.")
@click.option("--repeats", default=0, show_default=True,
              help="Design points measured again on each further seed (the table's noise model).")
@_executor_options
@click.option("--store", default=None, type=click.Path(dir_okay=False),
              help="SQLite store of the build's runs. Default: OUT/NAME.build.sqlite.")
@click.option("--resume", is_flag=True, help="Continue an unfinished build (from its store, or from the rows file).")
@click.option("--append", default=None,
              help="Add this build's rows to an existing built table (its name, or the path of its .json manifest).")
def table_build(problem, design, out, seeds, repeats, workers, executor, scheduler, cluster_file, gpus, retries,
                store, resume, append) -> None:
    """Measure the table of PROBLEM live: a design of configurations through the runner, resumable, rows as text."""
    from bench.build import build, table_name
    from bench.hookspecs import require
    from bench.registry import Registry

    try:
        seed_list = parse_seeds(seeds)
    except click.BadParameter as exc:
        raise click.ClickException(exc.format_message()) from exc
    require(("sklearn",), "bench-llm[tables]", "bench table build (fitting the table's surrogates)")
    running = _make_executor(executor, workers, scheduler, cluster_file, gpus, retries)
    with _progress() as progress, running:
        tasks = {}

        def told(spec, done, used):
            if spec.key not in tasks:
                tasks[spec.key] = progress.add_task(f"{spec.problem} {spec.optimizer} seed {spec.seed}",
                                                    total=spec.budget)
            progress.update(tasks[spec.key], completed=used)

        manifest = build(Registry(), problem, design, seed_list, out, repeats=repeats, workers=workers,
                         executor=running, store=store, resume=resume, append=append, progress=told)
    name = table_name(problem)
    _note(f"table {name}: {manifest['rows']} rows in {out}/{name}.json (measured rows: {out}/{name}.trials.jsonl;"
               f" use it with BENCH_TABLES={out})")


@main.group()
def leaderboard() -> None:
    """Build the leaderboard, publish the official board, accept outside submissions."""
    from bench.hookspecs import require

    require(("pandas", "matplotlib", "autorank", "baycomp", "pymoo"), "bench-llm[leaderboard]", "bench leaderboard")


@leaderboard.command("build")
@click.option("--store", "stores", multiple=True, type=click.Path(dir_okay=False),
              help="SQLite results store to take runs from; repeat for several. Default: re-render OUT from its own data.")
@click.option("--out", default="leaderboard", show_default=True, type=click.Path(file_okay=False),
              help="Board folder: README.md, index.html, figures/, data/.")
@click.option("--json", "as_json", is_flag=True, help="Print what was built as JSON.")
def leaderboard_build(stores, out, as_json) -> None:
    """Aggregate runs into a board: tables, figures, README.md, index.html, data and run cards."""
    from bench.analysis.data import Board
    from bench.analysis.render import write_board

    if stores:
        board, unfinished = Board.from_stores(stores)
        if unfinished:
            _note(f"left out {unfinished} unfinished run(s); finish them with bench run --resume", err=True)
    else:
        board = Board.read(out)
    write_board(board, out)
    _report(as_json, f"built {out}: {len(board.runs)} runs, {len(board.trials)} trials",
            {"board": str(out), "runs": len(board.runs), "trials": len(board.trials)})


@leaderboard.command("publish")
@click.option("--out", default="leaderboard", show_default=True, type=click.Path(file_okay=False))
@click.option("--jobs", default=2, show_default=True, help="Runs in parallel processes.")
@click.option("--stores", default=None, type=click.Path(file_okay=False),
              help="Keep the runs' SQLite stores in this folder (default: a temporary one).")
@click.option("--json", "as_json", is_flag=True, help="Print what was published as JSON.")
def leaderboard_publish(out, jobs, stores, as_json) -> None:
    """Run the published board from scratch (every built-in optimizer that supports each table problem,
    seeds 0-9, the source study's budget) and build it into OUT."""
    import tempfile
    import time
    from pathlib import Path

    from bench.analysis.data import Board
    from bench.analysis.publish import PUBLISHED, run_all, run_matrix
    from bench.analysis.render import write_board
    from bench.registry import Registry

    started = time.perf_counter()
    specs = run_matrix(Registry())
    with tempfile.TemporaryDirectory() as tmp, _progress() as progress:
        task = progress.add_task("published board runs", total=len(specs))
        files = run_all(specs, Path(stores or tmp), jobs, lambda done, spec: progress.update(task, completed=done))
        board, _ = Board.from_stores(files, PUBLISHED)
        write_board(board, out)
    seconds = time.perf_counter() - started
    _report(as_json, f"published {out}: {len(specs)} runs in {seconds:.0f} s",
            {"board": str(out), "runs": len(specs), "wall_seconds": round(seconds, 1)})


@leaderboard.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--board", default="leaderboard", show_default=True, type=click.Path(file_okay=False),
              help="Board folder to merge into.")
@click.option("--verify", default=0, show_default=True, type=click.IntRange(0, 10),
              help="Rerun this many seeds of each submitted optimizer here (its distribution and version installed)"
                   " and require identical trials; the board marks the submission replay-verified.")
@click.option("--json", "as_json", is_flag=True, help="Print what was merged as JSON.")
def leaderboard_submit(file, board, verify, as_json) -> None:
    """Check a `bench export` FILE from someone else's runs and merge it, with its provenance, into the board."""
    from bench.analysis.submit import submit
    from bench.registry import Registry

    merged = submit(file, board, Registry(), verify)
    _report(as_json, f"merged {file} into {board}: {len(merged.runs)} runs",
            {"board": str(board), "merged": str(file), "runs": len(merged.runs), "replayed_seeds": verify})


def _report(as_json: bool, text: str, data: dict) -> None:
    """A command's outcome: ``data`` as JSON with --json, else ``text`` (silenced by -q)."""
    if as_json:
        _echo_json(data)
    else:
        _note(text)


def _summaries(store, problem=None):
    from bench.analysis.runs import summarize_runs

    return summarize_runs(store, problem)


def _print_summaries(summaries) -> None:
    from tabulate import tabulate

    if not summaries:
        click.echo("no runs stored")
        return
    rows = []
    for s in summaries:
        best = ", ".join(f"{k}={v:.6g}" if v is not None else f"{k}=-" for k, v in s["best"].items())
        sources = ", ".join(f"{k} {v}" for k, v in sorted(s["sources"].items()))
        rows.append([s["run"], s["problem"], s["optimizer"], s["seed"], s["mode"], s["status"], s["trials"],
                     s["failed"], sources, "+".join(s["optimized"]), best])
    headers = ["run", "problem", "optimizer", "seed", "mode", "status", "trials", "failed", "sources", "optimized",
               "best per objective"]
    click.echo(tabulate(rows, headers=headers))
    for s in summaries:
        if s.get("pareto_front"):
            click.echo(f"\nPareto front of run {s['run']} ({s['problem']}, {s['optimizer']}):")
            click.echo(tabulate(s["pareto_front"], headers="keys", floatfmt=".6g"))


class _QuietProgress:
    """Stands in for a progress bar when stderr is not a terminal."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass


def _progress():
    if _VERBOSITY["quiet"] or not sys.stderr.isatty():
        return _QuietProgress()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True))

