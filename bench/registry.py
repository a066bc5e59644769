"""The plugin manager: every plugin, built-in or outside, comes in through an entry point.

Built-in plugins are registered in pyproject.toml under ``[project.entry-points.bench]``
exactly as a third-party package would be, so there is one discovery path. A plugin that
fails to import, or whose hook raises, is recorded as broken with its error and the
others keep working.
"""

from __future__ import annotations

from collections import namedtuple

import pluggy

from bench import hookspecs
from bench.entrypoints import entry_points
from bench.hookspecs import PROJECT, OptimizerSpec, ProblemSpec


class UnknownName(LookupError):
    """A problem or optimizer name that no plugin provides, or that several provide."""


# Plain named tuples: `bench list` creates these, and a dataclass costs a millisecond to define.
Plugin = namedtuple("Plugin", "name distribution version")
BrokenPlugin = namedtuple("BrokenPlugin", "name distribution error")


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
        # "plugin:name" -> (spec, the plugin providing it), for every spec: how a user picks one of two same-named
        # specs, and what a run card records as the provider.
        self.qualified: dict[str, dict[str, tuple]] = {"problem": {}, "optimizer": {}}
        self.ambiguous: dict[str, dict[str, list[str]]] = {"problem": {}, "optimizer": {}}  # name -> its plugins
        dists: dict[str, str] = {}
        by_name: dict[str, Plugin] = {}
        for ep in sorted(entry_points(group=group), key=lambda ep: ep.name):
            dist = ep.distribution
            dists[ep.name] = dist
            try:
                self.pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken plugin must not break the others
                self.broken.append(BrokenPlugin(ep.name, dist, _one_line(exc)))
                continue
            self.plugins.append(Plugin(ep.name, dist, ep.version))
            by_name[ep.name] = self.plugins[-1]
        for hook, spec_type, table, kind in (
            (self.pm.hook.bench_problems, ProblemSpec, self.problems, "problem"),
            (self.pm.hook.bench_optimizers, OptimizerSpec, self.optimizers, "optimizer"),
        ):
            providers: dict[str, list[str]] = {}
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
                    self.qualified[kind][f"{plugin}:{spec.name}"] = (spec, by_name.get(plugin))
                    providers.setdefault(spec.name, []).append(plugin)
                    table[spec.name] = spec
            for name, plugins in providers.items():
                if len(plugins) > 1:  # no plugin may take over another's name: the bare name is nobody's
                    del table[name]
                    self.ambiguous[kind][name] = plugins
                    for plugin in plugins:
                        self.broken.append(BrokenPlugin(plugin, dists[plugin], self._ambiguity(kind, name)))

    def register(self, *specs: ProblemSpec | OptimizerSpec) -> None:
        """Add specs by hand, as a plugin's hook would (tests, notebooks); a taken name is refused,
        so a hand-made spec never shadows an installed one."""
        for spec in specs:
            if isinstance(spec, ProblemSpec):
                kind, table = "problem", self.problems
            elif isinstance(spec, OptimizerSpec):
                kind, table = "optimizer", self.optimizers
            else:
                raise TypeError(f"register() takes ProblemSpec or OptimizerSpec, not {type(spec).__name__}")
            if spec.name in table or spec.name in self.ambiguous[kind]:
                raise ValueError(f"{kind} {spec.name!r} is already registered; give the new one another name")
            table[spec.name] = spec

    def problem(self, name: str) -> ProblemSpec:
        return self._lookup(name, self.problems, "problem", "problems")

    def optimizer(self, name: str) -> OptimizerSpec:
        return self._lookup(name, self.optimizers, "optimizer", "optimizers")

    def _ambiguity(self, kind: str, name: str) -> str:
        plugins = self.ambiguous[kind][name]
        who = " and ".join(f"{p} ({self.qualified[kind][f'{p}:{name}'][1].distribution})" for p in plugins)
        return f"{kind} {name!r} is provided by {who}; pick one as {' or '.join(f'{p}:{name}' for p in plugins)}"

    def provider(self, kind: str, name: str) -> dict[str, str] | None:
        """The plugin, distribution and version providing ``kind`` ``name`` (bare or ``plugin:name``), for run
        cards; None for a spec added by hand rather than by a plugin."""
        table = self.problems if kind == "problem" else self.optimizers
        for qualified, (spec, plugin) in self.qualified[kind].items():
            if name == qualified or table.get(name) is spec:
                return {"plugin": plugin.name, "distribution": plugin.distribution, "version": plugin.version}
        return None

    def _lookup(self, name: str, table: dict, kind: str, listing: str):
        if name in table:
            return table[name]
        if name in self.qualified[kind]:
            return self.qualified[kind][name][0]
        if name in self.ambiguous[kind]:
            raise UnknownName(self._ambiguity(kind, name))
        import difflib  # only for a name that is not there

        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"see `bench list {listing}`"
        raise UnknownName(f"unknown {kind} {name!r}; {hint}")

    def versions(self) -> dict[str, str]:
        """Plugin name -> distribution version, for run cards."""
        return {p.name: f"{p.distribution} {p.version}" for p in self.plugins}
