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


def core_graph() -> dict[str, set[str]]:
    """bench module -> the bench modules it imports, at module level or inside functions. The package itself
    (``bench``: the version and the lazy ``bench.run``) is left out: importing any module imports it first."""
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (REPO / "bench").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                             for alias in node.names)
        graph[name] = {m for m in found if m in modules and m not in (name, "bench")}
    graph.pop("bench")
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Kosaraju)."""
    order, seen = [], set()

    def visit(node, edges, out):
        stack = [(node, iter(sorted(edges[node])))]
        seen.add(node)
        while stack:
            current, children = stack[-1]
            child = next((c for c in children if c not in seen), None)
            if child is None:
                stack.pop()
                out.append(current)
            else:
                seen.add(child)
                stack.append((child, iter(sorted(edges[child]))))

    for node in sorted(graph):
        if node not in seen:
            visit(node, graph, order)
    reverse = {node: {m for m in graph if node in graph[m]} for node in graph}
    seen, components = set(), []
    for node in reversed(order):
        if node not in seen:
            component: list[str] = []
            visit(node, reverse, component)
            components.append(set(component))
    return [c for c in components if len(c) > 1]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle_among_the_core_modules():
    graph = core_graph()
    assert {"bench.runner", "bench.executors", "bench.problem"} <= set(graph)
    assert cycles(graph) == []


def test_executors_import_only_the_contract_trial_clock_and_spec_modules():
    assert core_graph()["bench.executors"] <= {"bench.problem", "bench.trial", "bench.clock", "bench.hookspecs"}


def test_the_example_plugin_uses_only_the_public_plugin_api():
    import bench.plugin

    used = set()
    for path in (REPO / "examples" / "bench-example-plugin" / "bench_example").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bench":
                used.add(node.module)
                if node.module == "bench.plugin":
                    assert {alias.name for alias in node.names} <= set(bench.plugin.__all__)
    assert used == {"bench.hookspecs", "bench.plugin"}
