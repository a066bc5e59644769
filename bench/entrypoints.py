"""The ``bench`` entry points of the installed distributions, read straight from their ``entry_points.txt``.

``importlib.metadata`` would do the same, but importing it (email, zipfile, csv, ...) and scanning every
distribution's metadata costs more than the rest of `bench list` together; this reads only the files
that matter. Like ``importlib.metadata``, the first distribution of a name on ``sys.path`` wins.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import namedtuple
from typing import Any


class EntryPoint(namedtuple("EntryPoint", "name value distribution version")):
    """``value`` is "module" or "module:attr"; ``distribution`` as its metadata names it, e.g. "bench-llm"."""

    def load(self) -> Any:
        module, _, attr = self.value.partition(":")
        target = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            target = getattr(target, part)
        return target


def entry_points(group: str) -> list[EntryPoint]:
    found, seen = [], set()
    for folder in sys.path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            key = name.rpartition(".")[0].split("-")[0].lower().replace(".", "_")
            if key in seen:
                continue
            seen.add(key)
            path = os.path.join(folder or ".", name)
            try:
                with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as fh:
                    points = _section(fh.read(), group)
            except OSError:
                continue
            if points:
                distribution, version = _name_and_version(path)
                found += [EntryPoint(n, v, distribution, version) for n, v in points]
    return found


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of the ``[group]`` section of an entry_points.txt."""
    points, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            points.append((name.strip(), value.split("[")[0].strip()))
    return points


def _name_and_version(path: str) -> tuple[str, str]:
    """Name and Version from the distribution's METADATA (PKG-INFO for an egg-info) header."""
    fields: dict[str, str] = {}
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, file), encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        break
                    key, _, value = line.partition(":")
                    if key in ("Name", "Version"):
                        fields.setdefault(key, value.strip())
            break
        except OSError:
            continue
    return fields.get("Name", "?"), fields.get("Version", "?")
