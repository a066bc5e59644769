"""The house's layers, read from the source: the core imports no plugin or problem package, optimizer
plugins import no problem package, and no problem package imports another (what two problems share
lives in bench_llm, which imports none of them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.name for p in (REPO / "plugins").iterdir() if (p / "__init__.py").exists())
PROBLEMS = sorted(p.name for p in (REPO / "problems").iterdir() if (p / "__init__.py").exists())
SHARED = "bench_llm"


def imports(folder: Path) -> dict[str, set[str]]:
    """File -> top-level packages it imports (at module level or inside functions)."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


def test_the_layout_is_what_the_test_reads():
    assert {"bench_baselines", "bench_smac"} <= set(PLUGINS) and {"bench_lora", "bench_nas", SHARED} <= set(PROBLEMS)


def test_the_core_imports_no_plugin_or_problem_package():
    offending = {f: n & set(PLUGINS + PROBLEMS) for f, n in imports(REPO / "bench").items() if n & set(PLUGINS + PROBLEMS)}
    assert not offending


@pytest.mark.parametrize("plugin", PLUGINS)
def test_an_optimizer_plugin_imports_no_problem_package(plugin):
    offending = {f: n & set(PROBLEMS) for f, n in imports(REPO / "plugins" / plugin).items() if n & set(PROBLEMS)}
    assert not offending


@pytest.mark.parametrize("package", PROBLEMS)
def test_a_problem_package_imports_no_other_problem_package(package):
    allowed = {package} | ({SHARED} if package != SHARED else set())
    others = set(PROBLEMS + PLUGINS) - allowed
    offending = {f: n & others for f, n in imports(REPO / "problems" / package).items() if n & others}
    assert not offending
