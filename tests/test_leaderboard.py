"""The leaderboard: metrics, rebuild reproducibility, submissions, and the page in real Chromium."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from conftest import REPO, bench_cli, install_plugin

PUBLISHED = REPO / "leaderboard"
GENERATED = re.compile(r"Generated on \d{4}-\d{2}-\d{2} by bench ")
LORA = "lora-hpo/llama-3.2-1b-alpaca"
SMOLLM2 = "lora-hpo/smollm2-135m-wordnet"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _ok(out):
    assert out.returncode == 0, out.stderr
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _without_date(text: bytes) -> list[bytes]:
    lines = text.splitlines()
    dated = [i for i, line in enumerate(lines) if GENERATED.search(line.decode(errors="replace"))]
    assert len(dated) <= 1
    return [line for i, line in enumerate(lines) if i not in dated]


# ------------------------------------------------------------------ metrics

def test_hypervolume_and_front_of_known_points():
    from bench.analysis.metrics import hypervolume, pareto_front

    points = np.array([[0.5, 0.5], [0.25, 0.75], [0.6, 0.6], [2.0, 0.0]])
    # union of [0.5,1]x[0.5,1] and [0.25,1]x[0.75,1]; (0.6, 0.6) is dominated, (2, 0) lies outside the reference
    assert hypervolume(points, np.array([1.0, 1.0])) == pytest.approx(0.25 + 0.25 * 0.25)
    assert pareto_front(points[:3]).tolist() == [[0.25, 0.75], [0.5, 0.5]]


@pytest.fixture(scope="module")
def small_board(tmp_path_factory):
    """Branin (one objective) and ZDT1 (two), three optimizers, seeds 0-5, built through the CLI."""
    folder = tmp_path_factory.mktemp("small")
    store = str(folder / "r.sqlite")
    _ok(bench_cli("run", "synthetic/branin", "synthetic/zdt1", "-o", "random", "-o", "lhs", "-o", "grid",
                  "--budget", "12", "--seeds", "0-5", "--store", store))
    from bench.analysis.data import Board

    return Board.from_stores([store])[0]


def test_regret_is_normalized_to_the_best_value_and_random_median(small_board):
    from bench.analysis.metrics import build_tasks, normalizer, padded, summarize

    for task in build_tasks(small_board):
        norm = normalizer(task)
        random_runs = [r for r in task.runs if r["optimizer"] == "random"]
        assert np.median(padded(task, random_runs, norm)[:, -1]) == pytest.approx(1.0)
        finals = padded(task, task.runs, norm)[:, -1]
        assert finals.min() >= 0.0
        if task.multi:  # the best known front mixes every run's results, so no single run need reach it
            assert finals.min() > 0.0
        else:  # branin declares its optimum; regret 0 is that value, which 12 trials do not reach
            assert norm.best == pytest.approx(0.397887) and finals.min() > 0.0
        summary = summarize(task)
        ranks = {row["optimizer"]: row["rank"] for row in summary["rows"]}
        assert sum(ranks.values()) == pytest.approx(len(ranks) * (len(ranks) + 1) / 2)
        # our per-seed mean ranks are the ones autorank's Friedman test used
        assert summary["cd_result"].rankdf["meanrank"].to_dict() == pytest.approx(ranks)
        assert summary["test"]["omnibus"] == "friedman" and summary["test"]["posthoc"] == "nemenyi"


def test_analytic_problems_form_the_sanity_section_measured_from_their_known_optimum(small_board, tmp_path):
    from bench.analysis.metrics import build_tasks
    from bench.analysis.render import build

    assert all(task.sanity and task.default_family and not task.surrogate for task in build_tasks(small_board))
    build(small_board, tmp_path, date="2026-01-01")
    readme = (tmp_path / "README.md").read_text()
    overview, sanity = readme.split("## Overview")[1].split("## Sanity check: analytic problems")
    assert "synthetic/" not in overview.split("\n## ")[0]  # the overview of table problems is empty here
    section = sanity.split("\n## ")[0]
    assert "synthetic/branin" in section and "synthetic/zdt1" in section and "known optimum" in section


def test_a_multi_fidelity_run_is_scored_by_what_it_returns_over_the_budget_it_used(tmp_path):
    """Hartmann6's low fidelities are biased low (better), as an estimate can be: a hyperband run is scored by its
    best at the highest fidelity evaluated so far, over budget counted in full-fidelity evaluations."""
    from bench.analysis.data import Board
    from bench.analysis.metrics import build_tasks, normalizer, padded
    from bench.analysis.runs import summarize_runs
    from bench.store import Store

    store = str(tmp_path / "r.sqlite")
    _ok(bench_cli("run", "synthetic/hartmann6", "-o", "hyperband", "-o", "random", "--budget", "10", "--seeds", "0-2",
                  "--store", store))
    [task] = build_tasks(Board.from_stores([store])[0])
    norm = normalizer(task)
    shown = {row["run"]: row["best"]["value"] for row in summarize_runs(Store(store))}
    lower, used = 0, {}
    for run in task.runs:
        trials = sorted(Store(store).trials(run["run_id"]), key=lambda st: (st.end, st.number))
        steps = [st.result.fidelity or 100 for st in trials]
        values = [st.result.objectives["value"] for st in trials]
        full = [v for v, f in zip(values, steps) if f == 100]
        # the curve's last point and bench show's best: the best full-fidelity value, never a cheaper estimate
        assert task.losses[run["run_id"]][-1] == min(full) == shown[run["run_id"]]
        lower += min(values) < min(full)
        used[run["run_id"]] = sum(steps) / 100
        curve = padded(task, [run], norm)[0]
        if run["optimizer"] == "hyperband":
            assert len(trials) > 10
            # after one evaluation of budget: the trials that fit in it, at the highest fidelity among them
            fit = np.cumsum(np.array(steps) / 100) <= 1 + 1e-9
            first = [v for v, f, ok in zip(values, steps, fit) if ok and f == max(np.array(steps)[fit])]
            assert curve[0] == pytest.approx(norm.regret(np.array([min(first)]))[0])
    assert lower  # some cheap estimate was lower than what its run returns: the board did not take it
    # one point per evaluation of budget, up to the most any run used (a last trial may cross the budget), however
    # many trials the runs took
    assert len(curve) == np.ceil(max(used.values()) - 1e-9) and 10 <= max(used.values()) < 11


# ------------------------------------------------------------------ atomic boards

@pytest.fixture(scope="module")
def two_stores(tmp_path_factory):
    """Two stores of branin runs: an old board's (random) and a new one's (random and lhs)."""
    folder = tmp_path_factory.mktemp("stores")
    old, new = str(folder / "old.sqlite"), str(folder / "new.sqlite")
    _ok(bench_cli("run", "synthetic/branin", "-o", "random", "--budget", "6", "--seeds", "0-2", "--store", old))
    _ok(bench_cli("run", "synthetic/branin", "-o", "random", "-o", "lhs", "--budget", "6", "--seeds", "0-2",
                  "--store", new))
    return old, new


def test_a_failing_build_leaves_the_previous_board_byte_identical_and_a_good_one_drops_stale_files(
        tmp_path, two_stores, monkeypatch):
    from bench.analysis import render
    from bench.analysis.data import Board

    board = tmp_path / "board"
    _ok(bench_cli("leaderboard", "build", "--store", two_stores[0], "--out", str(board)))
    (board / "figures" / "stale.svg").write_text("<svg/>")
    before = _files(board)
    new, _ = Board.from_stores([two_stores[1]])

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render, "_html", fail)  # everything but the last page is written, then the disk is full
    with pytest.raises(OSError, match="No space left"):
        render.write_board(new, board)
    assert _files(board) == before
    assert [p.name for p in tmp_path.iterdir()] == ["board"]  # no staging folder left behind
    monkeypatch.undo()
    render.write_board(new, board)
    assert "figures/stale.svg" not in _files(board)
    assert {r["optimizer"] for r in json.loads((board / "data" / "runs.json").read_text())} == {"random", "lhs"}


def test_a_board_killed_at_any_moment_of_its_build_is_the_old_or_the_new_one_whole(tmp_path, two_stores):
    import os
    import signal
    import sys
    import time

    board, reference = tmp_path / "board", tmp_path / "reference"
    _ok(bench_cli("leaderboard", "build", "--store", two_stores[0], "--out", str(board)))
    _ok(bench_cli("leaderboard", "build", "--store", two_stores[1], "--out", str(reference)))
    old, new = _files(board), _files(reference)
    seen = set()
    for delay in (0.3, 1.0, 1.7, 2.4, 3.1):
        shutil.rmtree(board)
        _ok(bench_cli("leaderboard", "build", "--store", two_stores[0], "--out", str(board)))
        child = subprocess.Popen([sys.executable, "-m", "bench", "leaderboard", "build", "--store", two_stores[1],
                                  "--out", str(board)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        now = _files(board)
        assert now in (old, new), delay
        seen.add("old" if now == old else "new")
        _ok(bench_cli("leaderboard", "build", "--out", str(board)))  # the next write tidies the killed one's staging
        assert _files(board) == now and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert "old" in seen


def test_out_refuses_a_folder_that_is_not_a_board_and_writes_nothing_into_it(tmp_path, two_stores):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "README.md").write_text("my notes\n")
    out = bench_cli("leaderboard", "build", "--store", two_stores[0], "--out", str(folder))
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [f"Error: {folder} is not empty and holds no board (data/runs.json);"
                                               " give --out a new or empty folder"]
    assert _files(folder) == {"README.md": b"my notes\n"}


# ------------------------------------------------------------------ the published board

@pytest.mark.slow
def test_rebuilding_the_published_board_from_its_data_gives_identical_files(tmp_path):
    board = tmp_path / "board"
    shutil.copytree(PUBLISHED, board)
    for page in ("README.md", "index.html"):  # a stale page must be rewritten, not kept
        (board / page).unlink()
    shutil.rmtree(board / "figures")
    _ok(bench_cli("leaderboard", "build", "--out", str(board)))
    published, rebuilt = _files(PUBLISHED), _files(board)
    assert sorted(rebuilt) == sorted(published)
    for name, data in published.items():
        if name in ("README.md", "index.html"):
            assert _without_date(rebuilt[name]) == _without_date(data), name
        else:
            assert rebuilt[name] == data, name


def test_published_board_covers_every_supported_optimizer_on_every_board_problem_and_surrogate_family():
    from bench.analysis.publish import run_matrix
    from bench.registry import Registry

    registry = Registry()
    runs = json.loads((PUBLISHED / "data" / "runs.json").read_text())
    on_board = {(r["problem"], tuple(r["objectives"]), r["optimizer"], r["seed"], r["budget"], r["card"].get("surrogate"))
                for r in runs}
    default = {}
    for spec in run_matrix(registry):
        if spec.problem not in default:
            problem = registry.problem(spec.problem).create(spec.mode)
            default[spec.problem] = tuple(o.name for o in problem.select_objectives(None))
    expected = {(s.problem, tuple(s.objectives or default[s.problem]), s.optimizer, s.seed, s.budget, s.surrogate)
                for s in run_matrix(registry)}
    assert on_board == expected
    assert {p for p, *_ in expected} == {LORA, "lora-hpo/llama-3.2-3b-alpaca", SMOLLM2, "synthetic/branin",
                                         "synthetic/hartmann6", "synthetic/zdt1"}
    assert {f for p, *_, f in expected if p == LORA} == {None, "gp"}  # the table's forest (its default) and its GP
    # the learning-curve table: the multi-fidelity optimizers compared on an LLM problem's steps
    assert {"hyperband", "asha", "smac-hyperband"} <= {o for p, _, o, *_ in expected if p == SMOLLM2}
    assert "smac-gp" not in {o for _, _, o, *_ in expected}  # left out by its spec, for its CPU time
    assert {seed for *_, seed, _, _ in expected} == set(range(10)) and {b for *_, b, _ in expected} == {50.0}


@pytest.mark.slow
def test_index_html_renders_tables_and_every_figure_in_chromium(tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed: apt-get install -y --no-install-recommends chromium")
    page = (PUBLISHED / "index.html").read_text()
    probe = """<script>window.addEventListener('load', () => {
      const imgs = [...document.querySelectorAll('figure img')], tables = [...document.querySelectorAll('table')];
      const report = {figures: imgs.length,
        decoded: imgs.filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().height > 50).length,
        tables: tables.map(t => ({rows: t.rows.length, height: t.getBoundingClientRect().height}))};
      const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(report);
      document.body.appendChild(pre);});</script>"""
    (tmp_path / "index.html").write_text(page.replace("</body>", probe + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                              "--dump-dom", (tmp_path / "index.html").as_uri()],
                             capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout)
    assert found, out.stderr[-2000:]
    report = json.loads(found[1].replace("&quot;", '"'))
    summary = json.loads((PUBLISHED / "data" / "summary.json").read_text())
    figures = list((PUBLISHED / "figures").glob("*.svg"))
    assert report["figures"] == len(figures) > 0
    assert report["decoded"] == report["figures"]
    # headers included: the overview (a row per table task), the surrogate families' agreement (a row per task
    # run under several), the across-problems table (its rows counted in README.md), the sanity section's overview
    # (a row per analytic task), then each task's table (a row per optimizer)
    readme = (PUBLISHED / "README.md").read_text()
    section = readme.split("## Across problems")[1].split("\n## ")[0] if "## Across problems" in readme else ""
    across = [sum(line.startswith("|") for line in section.splitlines()) - 1] if section else []
    families = json.loads((PUBLISHED / "data" / "families.json").read_text())
    sanity = [s for s in summary if not s["surrogate"]]
    assert len(families) == 5 and len(sanity) == 3  # the Llama tables x 2 objective sets, SmolLM2
    assert [t["rows"] for t in report["tables"]] == ([len(summary) - len(sanity) + 1, len(families) + 1] + across
                                                     + [len(sanity) + 1] + [len(s["rows"]) + 1 for s in summary])
    assert all(t["height"] > 0 for t in report["tables"])


# ------------------------------------------------------------------ submissions

@pytest.fixture(scope="module")
def lora_board(tmp_path_factory):
    """A board on the 1B table (random, lhs, cma; seeds 0-4, budget 8) and a good submission (de)."""
    folder = tmp_path_factory.mktemp("lora")
    board, store, theirs = folder / "board", str(folder / "board.sqlite"), str(folder / "theirs.sqlite")
    _ok(bench_cli("run", LORA, "-o", "random", "-o", "lhs", "-o", "cma", "--budget", "8", "--seeds", "0-4",
                  "--store", store))
    _ok(bench_cli("leaderboard", "build", "--store", store, "--out", str(board)))
    _ok(bench_cli("run", LORA, "-o", "de", "--budget", "8", "--seeds", "0-4", "--store", theirs))
    _ok(bench_cli("export", str(folder / "good.parquet"), "--store", theirs))
    _ok(bench_cli("run", LORA, "-o", "pso", "--budget", "8", "--seeds", "0-3", "--store", str(folder / "few.sqlite")))
    _ok(bench_cli("export", str(folder / "few.parquet"), "--store", str(folder / "few.sqlite")))
    walk = install_plugin(folder / "site", "walk", WALK)  # an outside optimizer, installed as pip would
    _ok(bench_cli("run", LORA, "-o", "walk", "--budget", "8", "--seeds", "0-4", "--store", str(folder / "walk.sqlite"),
                  env=walk))
    _ok(bench_cli("export", str(folder / "walk.parquet"), "--store", str(folder / "walk.sqlite")))
    return folder


WALK = """
    import numpy as np

    from bench.hookspecs import OptimizerSpec, hookimpl
    from bench.optimizer import Optimizer
    from bench.space import from_unit, to_unit
    from bench.trial import Trial


    class Walk(Optimizer):
        \"\"\"A seeded random walk from the best point so far.\"\"\"

        def ask(self, n=1):
            best = self.incumbent()
            centre = to_unit(self.space, best[0][0].config) if best else np.full(len(self.space), 0.5)
            return [Trial(from_unit(self.space, np.clip(centre + self.rng.normal(0, 0.2, len(centre)), 0, 1)))
                    for _ in range(n)]


    @hookimpl
    def bench_optimizers():
        return [OptimizerSpec("walk", "a random walk", "bench_test_walk:Walk")]
"""


def _tampered(folder: Path, name: str, change) -> Path:
    table = pq.read_table(folder / "good.parquet")
    out = folder / name
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), out)
    return out


def _relabelled(folder: Path, source: str, name: str, optimizer: str, provider: dict | None = None,
                processor: str | None = None) -> Path:
    """``source`` with its optimizer renamed in every row and run card (and its provider, and the CPU the cards
    say the runs were made on, replaced)."""
    import pyarrow as pa

    table = pq.read_table(folder / source)
    key = b"bench.runs"
    cards = json.loads(table.schema.metadata[key])
    for entry in cards:
        entry["card"]["optimizer"] = optimizer
        if provider:
            entry["card"]["providers"]["optimizer"] = provider
        if processor:
            entry["card"]["hardware"]["processor"] = processor
    index = table.schema.get_field_index("optimizer")
    table = table.set_column(index, "optimizer", pa.array([optimizer] * table.num_rows))
    out = folder / name
    pq.write_table(table.replace_schema_metadata({key: json.dumps(cards)}), out)
    return out


def _set(table, column: str, row: int, value):
    import pyarrow as pa

    values = table.column(column).to_pylist()
    values[row] = value
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values, table.schema.field(column).type))


def _set_all(table, column: str, value):
    return table.set_column(table.schema.get_field_index(column), column,
                            pa.array([value] * table.num_rows, table.schema.field(column).type))


@pytest.mark.slow
def test_submissions_refused_with_a_reason_leave_the_board_unchanged_and_a_good_one_merges(lora_board):
    board = lora_board / "board"
    before = _files(board)
    refusals = {
        "sha.parquet": (lambda t: _set(t, "table_sha256", 5, "0" * 64), r"row 6 \(run \d+, trial 5\): table_sha256 0{64}"
                                                                        r" is not the shipped table's"),
        "column.parquet": (lambda t: t.drop(["cost"]), r"missing column 'cost'"),
        "value.parquet": (lambda t: _set(t, "objective.hellaswag_acc", 3, 0.99),
                          r"row 4 \(run \d+, trial 3\): hellaswag_acc 0.99 is not what the table gives"),
        "status.parquet": (lambda t: _set(t, "status", 2, "failed"),
                           r"row 3 \(run \d+, trial 2\): status failed, but the table answers this configuration ok"),
    }
    refusals.update({
        "times.parquet": (lambda t: _set_all(_set_all(t, "start", 0.0), "end", 0.0),
                          r"row 1 \(run \d+, trial 0\): it ran from 0 to 0 s, which is not its cost"),
        "late.parquet": (lambda t: _set(_set(t, "start", 3, t["start"][3].as_py() + 100), "end", 3,
                                        t["end"][3].as_py() + 100),
                         r"row 4 \(run \d+, trial 3\): it starts at .* one worker starts it when the trial before ends"),
        "cut.parquet": (lambda t: t.filter(pc.or_(pc.not_equal(t["run_id"], t["run_id"][0]), pc.less(t["number"], 3))),
                        r"run \d+ uses 3 of its budget 8; a complete run uses all of it"),
        "huge.parquet": (lambda t: pa.concat_tables([t] * (200_000 // t.num_rows + 1)),
                         r"holds more than 200000 trials, more than a submission may"),
    })
    files = {name: _tampered(lora_board, name, change) for name, (change, _) in refusals.items()}
    files["few.parquet"], expected = lora_board / "few.parquet", {name: reason for name, (_, reason) in refusals.items()}
    expected["few.parquet"] = r"pso on .* has 4 seeds; the board needs at least the 5 seeds 0-4 \(missing: 4\)"
    files["markup.parquet"] = _relabelled(lora_board, "good.parquet", "markup.parquet", "<b>de|x</b>\u202e")
    expected["markup.parquet"] = r"optimizer name '<b>de\|x</b>.*' is not letters, digits and"
    files["a|b.parquet"] = lora_board / "a|b.parquet"
    shutil.copy(lora_board / "good.parquet", files["a|b.parquet"])
    expected["a|b.parquet"] = r"the file name goes onto the board; rename it"
    for name, path in files.items():
        out = bench_cli("leaderboard", "submit", str(path), "--board", str(board))
        assert out.returncode != 0, name
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and re.search(expected[name], lines[0]), (name, out.stderr)
        assert _files(board) == before, name

    _ok(bench_cli("leaderboard", "submit", str(lora_board / "good.parquet"), "--board", str(board)))
    runs = json.loads((board / "data" / "runs.json").read_text())
    submitted = [r for r in runs if r["optimizer"] == "de"]
    digest = hashlib.sha256((lora_board / "good.parquet").read_bytes()).hexdigest()
    assert len(submitted) == 5 and all(r["provenance"] == {"origin": "submission good.parquet",
                                                           "file_sha256": digest} for r in submitted)
    assert len(runs) == 20
    [summary] = json.loads((board / "data" / "summary.json").read_text())
    assert {row["optimizer"] for row in summary["rows"]} == {"random", "lhs", "cma", "de"}
    assert "de" in (board / "README.md").read_text()
    again = bench_cli("leaderboard", "submit", str(lora_board / "good.parquet"), "--board", str(board))
    assert again.returncode != 0 and "already on the board" in again.stderr


@pytest.mark.slow
def test_verify_replays_an_outside_optimizers_runs_and_refuses_a_forgery_or_an_uninstalled_one(lora_board):
    """Values checked against the table do not show who produced them: de's genuine trials relabelled as the
    outside optimizer walk pass every other check, and only the replay refuses them."""
    board = lora_board / "board"
    walk = install_plugin(lora_board / "site2", "walk", WALK)
    forged = _relabelled(lora_board, "good.parquet", "forged.parquet", "walk",
                         {"plugin": "walk", "distribution": "bench-test-walk", "version": "0.0"})
    before = _files(board)
    out = bench_cli("leaderboard", "submit", str(forged), "--board", str(board), "--verify", "1", env=walk)
    assert out.returncode != 0 and re.search(r"run \d+ \(walk seed 0\), trial 0: config\.\w+ .* in the file, .* when"
                                             r" bench-test-walk 0.0 reruns it here\n", out.stderr), out.stderr
    # made (the cards say) on another kind of CPU: the refusal says that an honest run may differ there
    forged = _relabelled(lora_board, "good.parquet", "forged-elsewhere.parquet", "walk",
                         {"plugin": "walk", "distribution": "bench-test-walk", "version": "0.0"}, "AMD EPYC 7B13")
    out = bench_cli("leaderboard", "submit", str(forged), "--board", str(board), "--verify", "1", env=walk)
    assert out.returncode != 0 and "reruns it here (its runs were made on AMD EPYC 7B13, this machine is" in \
        out.stderr and "replay on the runs' kind)" in out.stderr, out.stderr
    out = bench_cli("leaderboard", "submit", str(lora_board / "walk.parquet"), "--board", str(board), "--verify", "1")
    assert out.returncode != 0 and ("cannot replay walk: its runs name bench-test-walk 0.0; install it here"
                                    in out.stderr), out.stderr
    assert _files(board) == before

    _ok(bench_cli("leaderboard", "submit", str(lora_board / "walk.parquet"), "--board", str(board), "--verify", "2",
                  env=walk))
    runs = [r for r in json.loads((board / "data" / "runs.json").read_text()) if r["optimizer"] == "walk"]
    assert len(runs) == 5 and all(r["provenance"]["replayed_seeds"] == 2 for r in runs)
    assert "walk.parquet (sha256" in (board / "README.md").read_text()
    assert "replay-verified on 2 seed(s) per optimizer" in (board / "README.md").read_text()


PUBLISHING = """
import sys
from pathlib import Path
from bench.analysis.publish import run_all
from bench.runner import RunSpec

run_all([RunSpec("synthetic/hartmann6", "random", seed, 10**6, "live") for seed in range(4)], Path(sys.argv[1]), 2)
"""


@pytest.mark.slow
def test_a_sigkilled_publish_leaves_no_pool_worker_running(tmp_path):
    import os
    import sys
    import time

    import psutil

    client = subprocess.Popen([sys.executable, "-c", PUBLISHING, str(tmp_path)], env=os.environ)
    deadline = time.time() + 120
    while len(list(tmp_path.glob("runs-*.sqlite"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    workers = psutil.Process(client.pid).children()
    assert len(workers) >= 2  # both runs are going, each in a pool worker
    client.kill()
    client.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:
        worker.kill()
    assert not alive, "pool workers outlived their SIGKILLed publish by 10 s"


# ------------------------------------------------------------------ practical equivalence

def constructed_board(gap: float, noise: float = 0.01, problem: str = "test/made-up", others: tuple = ("a", "b"),
                      facts: dict | None = None, family: str | None = None, default: bool = True):
    """Three optimizers on a made-up problem whose one evaluation has noise SD ``noise``: random far behind,
    the two ``others`` with the second ahead of the first by ``gap`` on every seed (plus seed-to-seed jitter
    well below the noise); with ``family``, as runs answered by that surrogate family (named on the command
    line unless it is the table's ``default``)."""
    import pandas as pd

    from bench.analysis.data import Board, describe_run

    rng = np.random.default_rng(1)
    objective = {"name": "score", "direction": "max", "bounds": None, "optimum": None}
    runs, rows = [], []
    for optimizer, level in (("random", 0.5), (others[0], 0.8), (others[1], 0.8 + gap)):
        for seed in range(10):
            run_id = len(runs) + 1
            card = {"problem": problem, "optimizer": optimizer, "seed": seed, "budget": 4.0, "mode": "table",
                    "optimized_objectives": ["score"], "suite_version": "0",
                    "problem_info": {"objectives": [objective], "noise_sd": {"score": noise}, **(facts or {})}}
            if family:
                card["problem_info"]["surrogate"] = family
                card["surrogate"] = None if default else family
            runs.append(describe_run(card, run_id, {"origin": "constructed"}))
            final = level + rng.normal(0, noise / 20)
            for number, value in enumerate(np.linspace(0.3, final, 4)):
                rows.append({"problem": problem, "optimizer": optimizer, "seed": seed, "mode": "table",
                             "run_id": run_id, "number": number, "status": "ok", "error": None, "source": "table",
                             "fidelity": None, "cost": 1.0, "worker": 0, "start": float(number),
                             "end": float(number + 1), "table_sha256": None, "objective.score": value})
    return Board(runs, pd.DataFrame(rows))


def test_a_gap_below_the_noise_is_called_equivalent_and_ten_times_the_noise_names_the_winner():
    from bench.analysis.metrics import build_tasks, summarize

    [close] = build_tasks(constructed_board(gap=0.002))
    verdict = summarize(close)["equivalence"]
    assert verdict["best"] == "b" and verdict["decisions"]["a"]["decision"] == "equivalent"
    assert verdict["decisions"]["random"]["decision"] == "worse"
    assert verdict["verdict"] == "indistinguishable within measurement noise: b, a"
    [apart] = build_tasks(constructed_board(gap=0.1))
    verdict = summarize(apart)["equivalence"]
    assert verdict["decisions"]["a"]["decision"] == "worse" and verdict["tied_with_best"] == ["b"]
    assert verdict["verdict"] == "b wins: every other optimizer is worse beyond the measurement noise"


def test_a_winner_is_declared_only_where_it_wins_under_every_surrogate_family(tmp_path):
    from bench.analysis.data import Board
    from bench.analysis.metrics import build_tasks, family_agreement, summarize
    from bench.analysis.render import build

    forest = constructed_board(gap=0.1, family="random-forest")
    agreeing = Board.merge([forest, constructed_board(gap=0.1, family="gp", default=False)])
    [both] = family_agreement([summarize(task) for task in build_tasks(agreeing)])
    assert both["verdict"] == "b wins under every surrogate family" and both["optimizers"] == 3
    assert both["pairs"] == [{"families": ["gp", "random-forest"], "kendall_tau": 1.0}]
    disagreeing = Board.merge([forest, constructed_board(gap=0.1, others=("b", "a"), family="gp", default=False)])
    tasks = build_tasks(disagreeing)
    assert [(t.surrogate, t.default_family) for t in tasks] == [("gp", False), ("random-forest", True)]
    [split] = family_agreement([summarize(task) for task in tasks])
    assert split["leaders"] == {"gp": "a", "random-forest": "b"}
    assert split["pairs"][0]["kendall_tau"] == pytest.approx(1 / 3)  # random last under both, a and b swapped
    assert split["verdict"].startswith("no winner under every surrogate family: gp: a wins")
    build(disagreeing, tmp_path / "board", date="2026-01-01")
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "## Do the surrogate families agree?" in readme and "no winner under every surrogate family" in readme
    assert "## test/made-up · score · gp surrogate" in readme
    assert json.loads((tmp_path / "board" / "data" / "families.json").read_text()) == [split]


def svg_boxes(text: str) -> tuple[tuple[float, ...], tuple[float, ...], dict[str, str]]:
    """The axes' box, the legend's box (x0, y0, x1, y1) and the legend's label -> line colour, from an SVG that
    matplotlib wrote (svg.fonttype none keeps the labels as text)."""
    def box(group: str) -> tuple[float, ...]:
        start = text.index(f'<g id="{group}">')
        path = re.search(r'<path d="([^"]+)"', text[start:]).group(1)
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path)]
        xs, ys = numbers[0::2], numbers[1::2]
        return min(xs), min(ys), max(xs), max(ys)

    legend = text[text.index('<g id="legend_1">'):]
    colours = re.findall(r"stroke: (#[0-9a-f]{6}); stroke-width", legend)
    labels = [label.split(" (seed")[0] for label in re.findall(r"<text[^>]*>([^<]+)</text>", legend)]
    return box("patch_2"), box("legend_1"), dict(zip(labels, colours))


def test_every_legend_sits_beside_its_plot_and_each_optimizer_keeps_its_colour_on_every_figure(tmp_path):
    """Two tasks with different optimizers (b is the second of three in one, the first in the other): its
    colour must not change between them, and no legend may cover the data."""
    from bench.analysis.data import Board
    from bench.analysis.render import build

    board = Board.merge([constructed_board(0.1), constructed_board(0.1, problem="test/other", others=("b", "c"))])
    build(board, tmp_path, date="2026-01-01")
    seen: dict[str, set[str]] = {}
    figures = [p for p in sorted((tmp_path / "figures").glob("*.svg")) if not p.name.endswith("-cd.svg")]
    assert len(figures) == 6
    for path in figures:
        axes, legend, colours = svg_boxes(path.read_text())
        assert legend[0] >= axes[2], path.name  # the legend starts right of the axes' right edge
        assert set(colours) >= {"random", "b"}, path.name
        for name, colour in colours.items():
            seen.setdefault(name, set()).add(colour)
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert len({next(iter(c)) for c in seen.values()}) == len(seen) == 4  # random, a, b, c: four colours


def test_a_table_task_explains_itself_and_measures_regret_from_its_best_real_measurement():
    from bench.analysis.metrics import build_tasks, normalizer, summarize
    from bench.analysis.render import _task_intro

    facts = {"best_measured": {"score": 0.85}, "default_value": {"score": 0.4}, "surrogate": "random-forest",
             "surrogate_quality": {"random-forest": {"score": {"spearman": 0.93, "mae": 0.02}},
                                   "gp": {"score": {"spearman": 0.88, "mae": 0.03}}}}
    [task] = build_tasks(constructed_board(0.1, facts=facts))
    norm = normalizer(task)
    assert norm.best == -0.85  # the best real measurement, not the best value a run reached (0.9)
    summary = summarize(task)
    assert summary["regret_unit"] == pytest.approx(norm.random + 0.85)
    text = _task_intro(summary)
    assert "100% of the trial values are real measurements" in text
    assert f"One unit of regret is {summary['regret_unit']:.4g} in score." in text
    assert "Best real measurement: score 0.85. The default configuration: score 0.4." in text
    assert "held-out Spearman of the families: gp score 0.88; random-forest score 0.93." in text


def test_a_board_entry_may_name_the_only_optimizers_it_runs():
    import dataclasses

    from bench.analysis.publish import run_matrix
    from bench.registry import Registry

    registry = Registry()
    spec = registry.problem("synthetic/zdt1")
    everyone = {s.optimizer for s in run_matrix(registry) if s.problem == spec.name}
    registry.problems[spec.name] = dataclasses.replace(spec, board={**spec.board, "optimizers": ["random", "nsga2",
                                                                                                 "hyperband"]})
    named = {s.optimizer for s in run_matrix(registry) if s.problem == spec.name}
    assert {"random", "nsga2", "smsemoa"} <= everyone and named == {"random", "nsga2"}  # hyperband: one objective only
