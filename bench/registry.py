"""The plugin manager: every plugin, built-in or outside, comes in through an entry point.

Built-in plugins are registered in pyproject.toml under ``[project.entry-points.bench]``
exactly as a third-party package would be, so there is one discovery path. A plugin that
fails to import, or whose hook raises, is recorded as broken with its error and the
others keep working.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib.metadata import entry_points

import pluggy

from bench import hookspecs
from bench.hookspecs import PROJECT, OptimizerSpec, ProblemSpec


class UnknownName(LookupError):
    """A problem or optimizer name that no plugin provides."""


@dataclass(frozen=True)
class Plugin:
    name: str
    distribution: str
    version: str


@dataclass(frozen=True)
class BrokenPlugin:
    name: str
    distribution: str
    error: str


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Registry:
    """Problems and optimizers from all installed ``bench`` entry points."""

    def __init__(self, group: str = PROJECT) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[Plugin] = []
        self.broken: list[BrokenPlugin] = []
        self.problems: dict[str, ProblemSpec] = {}
        self.optimizers: dict[str, OptimizerSpec] = {}
        dists: dict[str, str] = {}
        for ep in sorted(entry_points(group=group), key=lambda ep: ep.name):
            dist = ep.dist.name if ep.dist else "?"
            dists[ep.name] = dist
            try:
                self.pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken plugin must not break the others
                self.broken.append(BrokenPlugin(ep.name, dist, _one_line(exc)))
                continue
            self.plugins.append(Plugin(ep.name, dist, ep.dist.version if ep.dist else "?"))
        for hook, spec_type, table in (
            (self.pm.hook.bench_problems, ProblemSpec, self.problems),
            (self.pm.hook.bench_optimizers, OptimizerSpec, self.optimizers),
        ):
            for impl in sorted(hook.get_hookimpls(), key=lambda impl: impl.plugin_name):
                plugin = impl.plugin_name
                try:
                    specs = list(impl.function() or [])
                    for spec in specs:
                        if not isinstance(spec, spec_type):
                            raise TypeError(f"{hook.name}() returned {type(spec).__name__}, not {spec_type.__name__}")
                except Exception as exc:
                    self.broken.append(BrokenPlugin(plugin, dists[plugin], _one_line(exc)))
                    continue
                for spec in specs:
                    if spec.name in table:
                        error = f"{spec.name!r} is also provided by another plugin; the first one is kept"
                        self.broken.append(BrokenPlugin(plugin, dists[plugin], error))
                    else:
                        table[spec.name] = spec

    def problem(self, name: str) -> ProblemSpec:
        return self._lookup(name, self.problems, "problem", "problems")

    def optimizer(self, name: str) -> OptimizerSpec:
        return self._lookup(name, self.optimizers, "optimizer", "optimizers")

    def _lookup(self, name: str, table: dict, kind: str, listing: str):
        if name in table:
            return table[name]
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"see `bench list {listing}`"
        raise UnknownName(f"unknown {kind} {name!r}; {hint}")

    def versions(self) -> dict[str, str]:
        """Plugin name -> distribution version, for run cards."""
        return {p.name: f"{p.distribution} {p.version}" for p in self.plugins}
