import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from conftest import REPO, bench_cli, install_plugin


def test_list_json_has_synthetic_problems_and_baselines():
    out = bench_cli("list", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    problems = {p["name"]: p for p in data["problems"]}
    optimizers = {o["name"]: o for o in data["optimizers"]}
    for name in ("synthetic/branin", "synthetic/himmelblau", "synthetic/hartmann6", "synthetic/zdt1"):
        assert problems[name]["summary"]
    assert problems["synthetic/zdt1"]["objectives"] == ["f1", "f2"]
    assert problems["synthetic/hartmann6"]["multi_fidelity"] is True
    for name in ("random", "grid", "lhs"):
        assert optimizers[name]["summary"]
        assert optimizers[name]["capabilities"]["multi_objective"] is True
    assert data["broken"] == []


def test_list_one_section():
    data = json.loads(bench_cli("list", "optimizers", "--json").stdout)
    assert set(data) == {"optimizers", "broken"}


def test_broken_plugin_is_listed_and_the_rest_still_work(tmp_path):
    env = install_plugin(tmp_path, "broken", "import a_module_that_does_not_exist\n")
    out = bench_cli("list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    [broken] = data["broken"]
    assert broken["name"] == "broken"
    assert "a_module_that_does_not_exist" in broken["error"]
    assert len(data["problems"]) >= 4 and len(data["optimizers"]) >= 3
    run = bench_cli("run", "synthetic/branin", "--optimizer", "random", "--budget", "3",
                    "--store", str(tmp_path / "r.sqlite"), env=env)
    assert run.returncode == 0, run.stderr


def test_plugin_whose_hook_raises_is_broken_not_fatal(tmp_path):
    env = install_plugin(tmp_path, "raising", """
        from bench.hookspecs import hookimpl

        @hookimpl
        def bench_optimizers():
            raise RuntimeError("cannot find my solver")
    """)
    data = json.loads(bench_cli("list", "--json", env=env).stdout)
    assert [(b["name"], b["error"]) for b in data["broken"]] == [("raising", "RuntimeError: cannot find my solver")]
    assert "random" in {o["name"] for o in data["optimizers"]}


def test_a_name_two_plugins_provide_is_refused_for_both_and_picked_by_plugin(tmp_path):
    """An outside plugin whose entry point sorts first cannot take over a built-in name: the bare name is
    refused for both, naming them and how to pick one, and the run card records the provider picked."""
    env = install_plugin(tmp_path, "adup", """
        from bench.hookspecs import OptimizerSpec, hookimpl

        @hookimpl
        def bench_optimizers():
            return [OptimizerSpec("lhs", "an impostor", "bench_baselines.samplers:RandomSearch")]
    """)
    data = json.loads(bench_cli("list", "--json", env=env).stdout)
    assert "lhs" not in {o["name"] for o in data["optimizers"]}
    expected = ("optimizer 'lhs' is provided by adup (bench-test-adup) and baselines (bench-llm);"
                " pick one as adup:lhs or baselines:lhs")
    assert sorted((b["name"], b["error"]) for b in data["broken"]) == [("adup", expected), ("baselines", expected)]
    store = tmp_path / "r.sqlite"
    refused = bench_cli("run", "synthetic/branin", "-o", "lhs", "--budget", "3", "--store", str(store), env=env)
    assert refused.returncode != 0 and refused.stderr.strip().splitlines()[-1] == f"Error: {expected}"
    assert not store.exists()
    picked = bench_cli("run", "synthetic/branin", "-o", "baselines:lhs", "--budget", "3", "--store", str(store), env=env)
    assert picked.returncode == 0, picked.stderr
    with sqlite3.connect(store) as db:
        card = json.loads(db.execute("SELECT card FROM runs").fetchone()[0])
    assert card["providers"]["optimizer"]["plugin"] == "baselines"
    assert card["providers"]["optimizer"]["distribution"] == "bench-llm"
    assert card["providers"]["problem"]["plugin"] == "synthetic"


def test_example_outside_plugin_is_discovered_by_entry_point(tmp_path):
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(REPO / "examples" / "bench-example-plugin")],
        capture_output=True, text=True,
    )
    assert pip.returncode == 0, pip.stderr
    assert list(site.glob("bench_example_plugin-*.dist-info/entry_points.txt"))
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    data = json.loads(bench_cli("list", "--json", env=env).stdout)
    assert "example-hillclimb" in {o["name"] for o in data["optimizers"]}
    assert "example/sphere" in {p["name"] for p in data["problems"]}
    store = tmp_path / "r.sqlite"
    run = bench_cli("run", "example/sphere", "--optimizer", "example-hillclimb", "--budget", "20",
                    "--store", str(store), "--seeds", "0", env=env)
    assert run.returncode == 0, run.stderr
    [summary] = json.loads(bench_cli("show", "--store", str(store), "--json", env=env).stdout)
    assert summary["trials"] == 20 and summary["best"]["value"] < 25


@pytest.mark.slow
def test_the_example_plugin_passes_bench_testing_from_its_own_tests_in_a_fresh_venv(tmp_path):
    """What an outside author does: a new venv with bench (core only) and the plugin installed, and the plugin's
    own tests, which run bench.testing's conformance suite on its optimizer."""
    import shutil

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv's own packages only
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    plugin = tmp_path / "plugin"
    shutil.copytree(REPO / "examples" / "bench-example-plugin", plugin,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = subprocess.run([python, "-m", "pip", "install", "--quiet", str(REPO), str(plugin), "pytest"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert pip.returncode == 0, pip.stderr
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=plugin,
                           capture_output=True, text=True, timeout=900, env=env)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert re.search(r"5 passed, 2 skipped", tests.stdout), tests.stdout[-500:]

    # bench alone (no extras): what needs an extra says which, and `bench list` marks it unavailable
    bench = str(venv / "bin" / "bench")
    listing = subprocess.run([bench, "list"], capture_output=True, text=True, cwd=tmp_path, env=env).stdout
    assert re.search(r"smac-rf .*\[unavailable: pip install 'bench-llm\[optimizers\]'\]", listing)
    assert re.search(r"lora-hpo/llama-3.2-1b-alpaca .*\[live mode unavailable: pip install 'bench-llm\[live\]'\]",
                     listing)
    assert not re.search(r"  random .*unavailable", listing)
    for args, message in [
        (["run", "synthetic/branin", "-o", "smac-rf"], "optimizer smac-rf needs smac, not installed here: pip install"
                                                      " 'bench-llm[optimizers]'"),
        (["run", "lora-hpo/llama-3.2-1b-alpaca", "--mode", "live", "-o", "random"],
         "problem lora-hpo/llama-3.2-1b-alpaca in live mode needs torch, transformers, peft, lm_eval, not installed"
         " here: pip install 'bench-llm[live]'"),
        (["leaderboard", "build", "--out", "board"], "bench leaderboard needs pandas, matplotlib, autorank, baycomp, pymoo, not"
                                                    " installed here: pip install 'bench-llm[leaderboard]'"),
    ]:
        out = subprocess.run([bench, *args], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert out.returncode != 0 and out.stderr.strip().splitlines() == [f"Error: {message}"], out.stderr
    assert not (tmp_path / "bench-results.sqlite").exists()
    ran = subprocess.run([bench, "run", "lora-hpo/llama-3.2-1b-alpaca", "-o", "random", "--budget", "3"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr  # a table needs no extra


def test_importing_the_cli_and_listing_loads_no_heavy_library():
    code = (
        "import sys\n"
        "from bench.cli import main\n"
        "for args in (['list', '--json'], ['--help'], ['run', '--help']):\n"
        "    try:\n        main(args)\n"
        "    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'smac', 'nevergrad', 'numpy', 'ConfigSpace', 'dask',"
        " 'distributed', 'matplotlib', 'pandas', 'autorank', 'pymoo', 'optuna', 'botorch', 'gpytorch') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_specs_registered_by_hand_run_and_never_shadow_installed_ones(tmp_path):
    from bench.hookspecs import OptimizerSpec, ProblemSpec
    from bench.registry import Registry
    from bench.runner import RunSpec, run
    from bench.store import Store

    registry = Registry()
    registry.register(ProblemSpec("mine/branin", "branin under my name", "bench_synthetic.functions:Branin", ("value",)),
                      OptimizerSpec("my-random", "random search again", "bench_baselines.samplers:RandomSearch"))
    store = Store(tmp_path / "results.sqlite")
    assert len(store.trials(run(RunSpec("mine/branin", "my-random", 0, 3, "live"), store, registry))) == 3
    with pytest.raises(ValueError, match="optimizer 'random' is already registered"):
        registry.register(OptimizerSpec("random", "an impostor", "bench_baselines.samplers:RandomSearch"))
    assert registry.optimizer("random").summary != "an impostor"
    with pytest.raises(TypeError, match="not str"):
        registry.register("random")


def test_a_plugin_whose_class_or_instance_contradicts_its_spec_is_refused_in_one_line_at_creation(tmp_path):
    """Issue 13: a class declared multi-objective-only ran on branin, since only the spec was read."""
    env = install_plugin(tmp_path, "liar", """
        from bench.hookspecs import Capabilities, OptimizerSpec, ProblemSpec, hookimpl
        from bench_baselines.samplers import RandomSearch
        from bench_synthetic.functions import Branin


        class MultiOnly(RandomSearch):
            capabilities = Capabilities(single_objective=False, multi_objective=True)


        @hookimpl
        def bench_optimizers():
            return [OptimizerSpec("multi-only", "says multi-objective only", "bench_test_liar:MultiOnly")]


        @hookimpl
        def bench_problems():
            return [ProblemSpec("test/misnamed", "branin, objective misnamed", "bench_test_liar:Branin", ("loss",)),
                    ProblemSpec("test/fidelity", "branin, said to have a fidelity", "bench_test_liar:Branin",
                                ("value",), multi_fidelity=True)]
    """)
    cases = {("synthetic/branin", "multi-only"): "optimizer multi-only: its class bench_test_liar:MultiOnly declares"
                                                 " {'single_objective': False, 'multi_objective': True}, its spec"
                                                 " otherwise",
             ("test/misnamed", "random"): "problem test/misnamed: its spec lists objectives ['loss'], the instance"
                                          " has ['value']",
             ("test/fidelity", "random"): "problem test/fidelity: in live mode the instance has none, its spec's"
                                          " multi_fidelity True says otherwise"}
    for (problem, optimizer), fragment in cases.items():
        store = tmp_path / "never.sqlite"
        out = bench_cli("run", problem, "-o", optimizer, "--budget", "2", "--store", str(store), env=env)
        lines = out.stderr.strip().splitlines()
        assert out.returncode != 0 and len(lines) == 1 and fragment in lines[0], out.stderr
        assert not store.exists()


def test_the_llama_specs_list_their_live_fidelity():
    data = {p["name"]: p for p in json.loads(bench_cli("list", "problems", "--json").stdout)["problems"]}
    for size in ("1b", "3b"):
        assert data[f"lora-hpo/llama-3.2-{size}-alpaca"]["fidelity_modes"] == ["live"]
    assert data["synthetic/hartmann6"]["fidelity_modes"] == ["live"] and data["synthetic/branin"]["fidelity_modes"] == []
