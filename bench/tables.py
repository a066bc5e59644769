"""Tables of real measurements: a Parquet file of rows and a JSON manifest, checked by sha256.

One row is one measurement (configuration x replicate x fidelity) with objective and cost
columns. A lookup is exact where the configuration was measured (several measurements:
the run's seed picks one); elsewhere the problem's declared policy answers: ``nearest``
(the closest measured row, in the space's unit cube) or ``surrogate``: a model fitted when
the table is built and stored as arrays with safetensors (no pickle, no code in the data),
of one of two families with different inductive biases, a random forest (the default) and a
Gaussian process, each with its grouped held-out quality in the manifest. Every value says
where it came from, so a prediction is never mistaken for a measurement.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import cache, cached_property, partial
from importlib.resources import files
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from bench import cache_dir
from bench.space import Fidelity, InvalidConfiguration, check, to_unit
from bench.trial import Result, Status

TABLES_PACKAGE = "bench.surrogate_tables"
POLICIES = ("nearest", "surrogate")
MANIFEST_VERSION = 1


class TableError(Exception):
    """A table that is missing, malformed or changed; the message names the fix."""


def tables_dir() -> Path:
    """$BENCH_TABLES (rebuilt or extended tables), else the tables shipped in the package."""
    return Path(os.environ.get("BENCH_TABLES") or str(files(TABLES_PACKAGE)))


def table_names() -> list[str]:
    return sorted(p.stem for p in tables_dir().glob("*.json"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# What a manifest must hold, and of which JSON type: anything else is refused before a file it names is opened.
_MANIFEST_FIELDS = {"name": str, "data": str, "sha256": str, "rows": int, "schema": list, "space": dict,
                    "objectives": list}


def read_manifest(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or tables_dir()) / f"{name}.json"
    if not path.is_file():
        raise TableError(f"unknown table {name!r}; see `bench table list`")
    fix = "restore it (git checkout) or rebuild the table"
    try:
        manifest = json.loads(path.read_bytes()[: 64 * 2**20 + 1])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TableError(f"manifest {path} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(manifest, dict):
        raise TableError(f"manifest {path} is a JSON {type(manifest).__name__}, not an object; {fix}")
    missing = set(_MANIFEST_FIELDS) - set(manifest)
    if missing:
        raise TableError(f"manifest {path} lacks {sorted(missing)}; {fix}")
    wrong = [f"{key} ({type(manifest[key]).__name__}, not {kind.__name__})" for key, kind in _MANIFEST_FIELDS.items()
             if not isinstance(manifest[key], kind)]
    surrogates = manifest.get("surrogates", {})
    if not isinstance(surrogates, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
            for e in surrogates.values()):
        wrong.append("surrogates (each needs a file and a sha256)")
    if wrong:
        raise TableError(f"manifest {path} has the wrong type for {', '.join(wrong)}; {fix}")
    return manifest


def member(directory: Path, file: str, table: str) -> Path:
    """The file ``file`` a manifest names: a regular file in the table's own folder (a path elsewhere, a
    device or a pipe is refused, so that hashing it cannot read forever)."""
    import stat

    path = directory / file
    if Path(file).name != file or file in (".", ".."):
        raise TableError(f"table {table}: the manifest names {file!r}, not a file beside it; rebuild the table")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TableError(f"table {table}: {path} is missing; restore it (git checkout) or rebuild the table") from None
    if not stat.S_ISREG(mode):
        raise TableError(f"table {table}: {path} is not a regular file; restore it or rebuild the table")
    return path


def space_of(manifest: dict[str, Any]) -> ConfigurationSpace:
    """The manifest's search space with its ``meta`` (which ConfigSpace does not serialize; a genotype space keeps
    its parent's shape there). ConfigSpace consumes the dict it reads, so give it a copy."""
    space = ConfigurationSpace.from_serialized_dict(copy.deepcopy(manifest["space"]))
    space.meta = copy.deepcopy(manifest.get("space_meta"))
    return space


def row_configs(columns: dict[str, list], params: list[str], rows) -> list[dict[str, Any]]:
    """The configurations of ``rows`` of a table's columns; a None is an inactive conditional parameter, left out."""
    return [{p: columns[p][i] for p in params if columns[p][i] is not None} for i in rows]


@dataclass(frozen=True)
class Encoding:
    """A problem's fixed-length numeric encoding of its configurations, which the table's surrogates (and the nearest
    policy) read instead of the unit cube where the cube says little: a genotype's block slots, say. A table records
    the feature names, so it is never read through another encoding."""

    name: str
    features: tuple[str, ...]
    encode: Callable[[Mapping[str, Any]], np.ndarray]


def encoder(space: ConfigurationSpace, encoding: Encoding | None) -> tuple[Callable, str]:
    """What a table's surrogates read of a configuration, and its description: the ``encoding``, else the
    configuration in the unit cube."""
    if encoding:
        return encoding.encode, f"the configuration's {encoding.name} encoding (the manifest's encoding)"
    return partial(to_unit, space), "the configuration mapped to the unit cube (bench.space.to_unit)"


def verify(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Check the data file's sha256, row count and column types against the manifest; return it."""
    import pyarrow.parquet as pq

    directory = directory or tables_dir()
    manifest = read_manifest(name, directory)
    data = member(directory, manifest["data"], name)
    _check_hash(name, data, manifest["sha256"])
    for family, surrogate in manifest.get("surrogates", {}).items():
        _check_hash(name, member(directory, surrogate["file"], name), surrogate["sha256"], f"the {family} surrogate ")
    schema = pq.read_schema(data)
    found = {field.name: str(field.type) for field in schema}
    expected = {column["name"]: column["type"] for column in manifest["schema"]}
    if found != expected:
        diff = sorted(set(found.items()) ^ set(expected.items()))
        raise TableError(f"table {name}: columns differ from the manifest schema: {diff}; rebuild the table")
    rows = pq.read_metadata(data).num_rows
    if rows != manifest["rows"]:
        raise TableError(f"table {name}: {rows} rows, the manifest says {manifest['rows']}; rebuild the table")
    return manifest


def _check_hash(table: str, path: Path, expected: str, what: str = "") -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise TableError(f"table {table}: {what}{path.name} has sha256 {actual}, the manifest {expected}; the file was"
                         " changed or damaged: restore it (git checkout) or rebuild the table")


def table_files(name: str, directory: Path | None = None) -> dict[str, str]:
    """sha256 of every file of a verified table, its manifest included (which holds the others' hashes),
    for run cards: a swapped surrogate changes the card even where the data file's hash stays."""
    directory = directory or tables_dir()
    manifest = read_manifest(name, directory)
    files = {f"{name}.json": sha256_file(directory / f"{name}.json"), manifest["data"]: manifest["sha256"]}
    files.update({entry["file"]: entry["sha256"] for entry in manifest.get("surrogates", {}).values()})
    return files


FOREST_SETTINGS = {"n_estimators": 100, "min_samples_leaf": 1, "max_features": 1.0, "bootstrap": True,
                   "random_state": 0}
_TREE_ARRAYS = ("left", "right", "feature", "threshold", "value")


class _StoredArrays:
    """A surrogate that is its arrays (named in ``arrays``, in field order after ``objectives``), saved
    with safetensors: loading runs no code."""

    arrays: tuple[str, ...]
    objectives: tuple[str, ...]

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        save_file({name: np.ascontiguousarray(getattr(self, name)) for name in self.arrays}, path,
                  metadata={"objectives": json.dumps(self.objectives)})

    @classmethod
    def load(cls, path: Path):
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as fh:
            objectives = tuple(json.loads(fh.metadata()["objectives"]))
            return cls(objectives, *(fh.get_tensor(name) for name in cls.arrays))


@dataclass(frozen=True)
class Forest(_StoredArrays):
    """Random forests, one per objective, as plain arrays (one row per tree, padded) walked
    together in numpy: one lookup predicts every objective in a single pass.

    Fitted once at build time with scikit-learn and stored with safetensors, so a table
    loads with no pickle, no code and no scikit-learn, and predicts the same on any version.
    """

    objectives: tuple[str, ...]
    left: np.ndarray  # child node ids, -1 at a leaf
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, ys: dict[str, np.ndarray]) -> Forest:
        from sklearn.ensemble import RandomForestRegressor

        trees = [t.tree_ for y in ys.values() for t in RandomForestRegressor(**FOREST_SETTINGS).fit(x, y).estimators_]
        width = max(t.node_count for t in trees)

        def pad(get, fill, dtype):
            out = np.full((len(trees), width), fill, dtype=dtype)
            for i, t in enumerate(trees):
                out[i, : t.node_count] = get(t)
            return out

        return cls(
            tuple(ys), pad(lambda t: t.children_left, -1, np.int32), pad(lambda t: t.children_right, -1, np.int32),
            pad(lambda t: t.feature, 0, np.int32), pad(lambda t: t.threshold, 0.0, np.float64),
            pad(lambda t: t.value[:, 0, 0], 0.0, np.float64),
        )

    family = "random-forest"
    settings = FOREST_SETTINGS
    arrays = _TREE_ARRAYS

    def predict(self, x: np.ndarray) -> dict[str, float]:
        """One point's means, as ``predict_many`` gives them, without a batch's overheads (a lookup pays this per
        trial): the kernel's arguments are made once per thread, around buffers the point is copied into."""
        one = self._one.__dict__.get("call")
        if one is None or len(one[0]) != len(x):
            one = self._one_call(len(x))
        if one is None:
            return {o: float(v[0]) for o, v in self.predict_many(x[None, :]).items()}
        point, leaves, call = one
        point[:] = x.astype(np.float32)  # scikit-learn's float32 inputs, as in predict_many
        call()
        means = self._means(leaves[None, :])[0]
        return {o: float(means[i]) for i, o in enumerate(self.objectives)}

    def _means(self, leaves: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """[queries, objectives]: each objective's mean over its trees of ``leaves`` ([queries, trees]); numpy's
        mean without its overhead, in one order of additions, so one query and a batch agree bit for bit."""
        per = leaves.shape[1] // len(self.objectives)
        means = np.add.reduce(leaves.reshape(len(leaves), len(self.objectives), per), axis=2, out=out)
        means /= per
        return means

    @cached_property
    def _one(self) -> threading.local:
        return threading.local()

    def _one_call(self, inputs: int):
        """This thread's (point buffer, leaves buffer, kernel call) for ``predict``; None without the kernel."""
        import ctypes

        kernel = _forest_kernel()
        if kernel is None:
            return None
        trees, width = self.left.shape
        point, leaves = np.empty(inputs), np.empty(trees)
        arguments = [ctypes.c_void_p(a) for a in self._packed[1]] + [
            ctypes.c_int64(trees), ctypes.c_int64(width), ctypes.c_void_p(point.ctypes.data), ctypes.c_int64(1),
            ctypes.c_int64(len(point)), ctypes.c_void_p(leaves.ctypes.data)]
        self._one.call = point, leaves, partial(kernel, *arguments)
        return self._one.call

    def predict_many(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Each objective's forest mean for the rows of ``x`` ([queries, inputs])."""
        # scikit-learn compares float32 inputs with its thresholds; do the same to match it exactly
        x = x.astype(np.float32).astype(np.float64)
        means = np.empty((len(x), len(self.objectives)))

        def chunk(start: int) -> None:  # leaves of a chunk at a time, not of the whole batch at once
            self._means(self.leaves(x[start: start + _CHUNK]), out=means[start: start + _CHUNK])

        starts = range(0, len(x), _CHUNK)
        threads = min(len(starts), _cores())
        if threads > 1:  # the kernel and numpy's sums let go of the GIL: a large batch takes every core it may use
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(chunk, starts))
        else:
            for start in starts:
                chunk(start)
        return {o: means[:, i] for i, o in enumerate(self.objectives)}

    def leaves(self, x: np.ndarray, compiled: bool = True) -> np.ndarray:
        """[queries, trees]: the value of the leaf each query reaches in each tree (bench/forest.c where it
        compiles, else the same walk in numpy, one step of every tree at a time)."""
        kernel = _forest_kernel() if compiled else None
        trees, width = self.left.shape
        out = np.empty((len(x), trees))
        if kernel is not None:
            x = np.ascontiguousarray(x, dtype=np.float64)
            kernel(*self._packed[1], trees, width, x.ctypes.data, len(x), x.shape[1], out.ctypes.data)
            return out
        rows = np.arange(trees)
        for q, point in enumerate(x):
            node = np.zeros(trees, dtype=np.int32)
            while True:
                left = self.left[rows, node]
                inner = left >= 0
                if not inner.any():
                    break
                go_left = point[self.feature[rows, node]] <= self.threshold[rows, node]
                node = np.where(inner, np.where(go_left, left, self.right[rows, node]), node)
            out[q] = self.value[rows, node]
        return out

    @cached_property
    def _packed(self) -> tuple:
        """The forest as bench/forest.c walks it: each tree renumbered breadth first, so a node's children are
        neighbours, every node one record (threshold, feature, left child), a leaf with threshold NaN and the
        id before its own as left child (so both ways lead back to it); the leaf values in the new numbering;
        each tree's depth. Returns them and their addresses."""
        trees, width = self.left.shape
        rows = np.arange(trees)
        old_of = np.zeros((trees, width), dtype=np.int64)  # new id -> scikit-learn's id
        level = np.zeros((trees, width), dtype=np.int32)
        count = np.ones(trees, dtype=np.int64)  # ids given so far, per tree
        nodes = np.zeros((trees, width), dtype=_NODE)
        nodes["threshold"], nodes["left"] = np.nan, np.arange(-1, width - 1, dtype=np.int32)  # a leaf, until inner
        for n in range(width):  # breadth first: an inner node's two children take the next two free ids
            inner = (n < count) & (self.left[rows, old_of[:, n]] >= 0)
            t, old, child = rows[inner], old_of[inner, n], count[inner]
            old_of[t, child], old_of[t, child + 1] = self.left[t, old], self.right[t, old]
            level[t, child] = level[t, child + 1] = level[t, n] + 1
            nodes["threshold"][t, n], nodes["feature"][t, n] = self.threshold[t, old], self.feature[t, old]
            nodes["left"][t, n] = child
            count[inner] += 2
        values = np.ascontiguousarray(self.value[rows[:, None], old_of], dtype=np.float64)
        depth = level.max(axis=1).astype(np.int32)
        return (nodes, values, depth), (nodes.ctypes.data, values.ctypes.data, depth.ctypes.data)


_CHUNK = 512  # queries a batch walks at a time, the chunks shared out among threads
_NODE = np.dtype([("threshold", "<f8"), ("feature", "<i4"), ("left", "<i4")], align=True)  # bench/forest.c's node


@cache
def _forest_kernel():
    """bench/forest.c compiled with the system's C compiler (``$CC``, else ``cc``) into the user cache on
    first use, keyed by the hash of the source and the command; None where it cannot be (no compiler), and
    numpy walks instead."""
    import ctypes
    import platform
    import subprocess
    import tempfile

    source = Path(__file__).with_name("forest.c")
    command = [os.environ.get("CC") or "cc", "-O2", "-shared", "-fPIC"]
    digest = hashlib.sha256(source.read_bytes() + " ".join(command).encode()).hexdigest()[:16]
    library = cache_dir("kernels") / f"forest-{digest}-{platform.system()}-{platform.machine()}.so"
    if not library.exists():
        library.parent.mkdir(parents=True, exist_ok=True)
        handle, staged = tempfile.mkstemp(suffix=".so", dir=library.parent)
        os.close(handle)
        try:  # staged and renamed, so a concurrent first use never loads half a file
            subprocess.run([*command, "-o", staged, str(source)],
                           check=True, capture_output=True, timeout=120)
            os.replace(staged, library)
        except (OSError, subprocess.SubprocessError):
            Path(staged).unlink(missing_ok=True)
            return None
    function = ctypes.CDLL(str(library)).forest_leaves
    function.restype = None
    function.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 2 + [ctypes.c_void_p] + [ctypes.c_int64] * 2 + [
        ctypes.c_void_p]
    return function


GP_SETTINGS = {"kernel": "constant * ARD squared exponential + white noise", "normalize_y": True,
               "n_restarts_optimizer": 0, "inactive": -0.5}
_GP_ARRAYS = ("x", "lengthscale", "amplitude", "alpha", "mean", "std")


@dataclass(frozen=True)
class GaussianProcess(_StoredArrays):
    """Gaussian processes, one per objective: a smooth model beside the forest's axis-aligned steps,
    so a verdict that holds under both is not an artefact of one inductive bias.

    Fitted once at build time with scikit-learn (ARD squared-exponential kernel, a noise term,
    normalised targets) and stored as arrays with safetensors: the posterior mean is one kernel row
    against the training inputs times stored weights, the same as scikit-learn predicts. Inactive
    conditional parameters (NaN in the unit cube) take a value outside it.
    """

    objectives: tuple[str, ...]
    x: np.ndarray  # [rows, inputs] training inputs
    lengthscale: np.ndarray  # [objectives, inputs]
    amplitude: np.ndarray  # [objectives]
    alpha: np.ndarray  # [objectives, rows]
    mean: np.ndarray  # [objectives]
    std: np.ndarray  # [objectives]

    family = "gp"
    settings = GP_SETTINGS
    arrays = _GP_ARRAYS

    @classmethod
    def fit(cls, x: np.ndarray, ys: dict[str, np.ndarray]) -> GaussianProcess:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        x = _active(x)
        fitted = []
        for y in ys.values():
            kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.ones(x.shape[1]), (1e-2, 1e2))
                      + WhiteKernel(1e-2, (1e-6, 1.0)))
            with warnings.catch_warnings():  # a hyperparameter at its bound is a fit, not an error
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted.append(GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0).fit(x, y))
        return cls(tuple(ys), x, np.array([g.kernel_.k1.k2.length_scale for g in fitted]),
                   np.array([g.kernel_.k1.k1.constant_value for g in fitted]), np.array([g.alpha_ for g in fitted]),
                   np.array([g._y_train_mean for g in fitted]), np.array([g._y_train_std for g in fitted]))

    def predict(self, x: np.ndarray) -> dict[str, float]:
        return {o: float(v[0]) for o, v in self.predict_many(x[None, :]).items()}

    def predict_many(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Posterior means for the rows of ``x`` ([queries, inputs])."""
        x = _active(x)
        out = {}
        for i, objective in enumerate(self.objectives):
            scaled = (x[:, None, :] - self.x[None, :, :]) / self.lengthscale[i]
            kernel = self.amplitude[i] * np.exp(-0.5 * (scaled**2).sum(axis=2))
            out[objective] = kernel @ self.alpha[i] * self.std[i] + self.mean[i]
        return out



def _active(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), GP_SETTINGS["inactive"], x)


_STANDARD_NORMAL = NormalDist()
SURROGATES = {"random-forest": Forest, "gp": GaussianProcess}  # the first is a table's default


def _check_encoding(name: str, recorded: dict[str, Any] | None, encoding: Encoding | None) -> None:
    """Refuse to read a table through another encoding than the one its surrogates were fitted on."""
    if recorded is None and encoding is None:
        return
    if encoding is None:
        raise TableError(f"table {name}: its surrogates read the {recorded['name']} encoding of a configuration; open"
                         " it through its problem (bench run PROBLEM --mode table)")
    if recorded is None:
        raise TableError(f"table {name} has no {encoding.name} encoding (its surrogates read the unit cube); rebuild it"
                         " with this problem")
    if list(recorded.get("features", [])) != list(encoding.features):
        size = len(recorded.get("features", []))
        other = " other ones" if size == len(encoding.features) else ""
        raise TableError(f"table {name}: its surrogates take {size} inputs of the {recorded['name']} encoding, this"
                         f" problem's {encoding.name} encoding gives {len(encoding.features)}{other}; rebuild the table"
                         " with this problem")


class Table:
    """A verified table in memory, answering lookups for one search space; a table whose surrogates read an
    ``encoding`` of the configurations is opened with that encoding (its problem's)."""

    def __init__(self, name: str, directory: Path | None = None, encoding: Encoding | None = None) -> None:
        import pyarrow.parquet as pq

        directory = directory or tables_dir()
        self.manifest = verify(name, directory)
        _check_encoding(name, self.manifest.get("encoding"), encoding)
        self.name = name
        self.sha256: str = self.manifest["sha256"]
        self.files = table_files(name, directory)
        self.space = space_of(self.manifest)
        self.params = list(self.space.keys())
        self.objectives = [o["name"] for o in self.manifest["objectives"]]
        # one file, read as one: read_table goes through pyarrow.dataset, which imports pandas (0.45 s a run)
        columns = pq.ParquetFile(directory / self.manifest["data"]).read().to_pydict()
        self.rows = len(columns[self.params[0]])
        self.configs = row_configs(columns, self.params, range(self.rows))
        self.values = {o: np.asarray(columns[o], dtype=float) for o in self.objectives}
        self.cost = np.asarray(columns["cost_seconds"], dtype=float)
        self.status = columns.get("status") or ["ok"] * self.rows
        self.errors = columns.get("error") or [None] * self.rows
        self.extra_columns = {c: columns[c] for c in self.manifest.get("extra_columns", [])}
        # a table with a fidelity column has rows at several levels; one without has one level, None
        fidelity = self.manifest.get("fidelity") or {}
        self.fidelity_column: str | None = fidelity.get("column")
        self.level_of = columns[self.fidelity_column] if self.fidelity_column else [None] * self.rows
        self.levels = sorted(set(self.level_of)) if self.fidelity_column else [None]
        self.index: dict[tuple, list[int]] = {}
        for i, config in enumerate(self.configs):
            self.index.setdefault((tuple(config.get(p) for p in self.params), self.level_of[i]), []).append(i)
        self.encode, self.inputs = encoder(self.space, encoding)
        self.x = np.array([self.encode(c) for c in self.configs])
        self.at_level = {level: np.array([lv == level for lv in self.level_of]) for level in self.levels}
        self.median_cost = {level: float(np.median(self.cost[mask])) for level, mask in self.at_level.items()}
        self.bounds = {o["name"]: o.get("bounds") for o in self.manifest["objectives"]}
        self.noise_parts = {(o, level): self._noise_parts(o, level) for o in self.objectives for level in self.levels}
        self.surrogates = {family: SURROGATES[family].load(directory / entry["file"])
                           for family, entry in self.manifest.get("surrogates", {}).items()}

    def level(self, fidelity: float | None) -> float | None:
        """The measured level that answers ``fidelity``: the top one for None, else the smallest
        level at or above it (a table never answers with less training than was asked for)."""
        if fidelity is None or self.fidelity_column is None:
            return self.levels[-1]
        above = [level for level in self.levels if level >= fidelity]
        if not above:
            raise InvalidConfiguration(f"{self.fidelity_column}={fidelity} is above the top level {self.levels[-1]}"
                                       f" of table {self.name}; ask for at most {self.levels[-1]}")
        return above[0]

    def lookup(self, config: dict[str, Any], seed: int, policy: str, fidelity: float | None = None,
               surrogate: str | None = None) -> Result:
        """A measured row where there is one; else the ``policy``: the nearest row, or the
        ``surrogate`` family's prediction (default: the table's first family)."""
        level = self.level(fidelity)
        rows = self.index.get((tuple(config.get(p) for p in self.params), level))
        if rows is not None:
            return self._row(rows[seed % len(rows)], "table")
        check(self.space, config)  # off-grid: make sure it is at least inside the space
        x = self.encode(config)
        if policy == "nearest":
            distance = np.where(self.at_level[level], ((self.x - x) ** 2).sum(axis=1), np.inf)
            return self._row(int(np.argmin(distance)), "nearest")
        if policy == "surrogate":
            predicted = self.surrogate(surrogate).predict(self._surrogate_input(x, level))
            return Result(predicted, cost=self.median_cost[level],
                          source="surrogate", fidelity=level,
                          table_sha256=self.sha256, extra={"cost": "median of the table" + (f" at {self.fidelity_column}={level}"
                                                               if self.fidelity_column else "")})
        raise ValueError(f"unknown lookup policy {policy!r}; one of {POLICIES}")

    def predict_many(self, x: np.ndarray, fidelity: float | None = None, surrogate: str | None = None,
                     ) -> dict[str, np.ndarray]:
        """The ``surrogate`` family's noise-free predictions for many points at once ([queries, inputs], each what
        ``encode`` gives): what a lookup of each point off the table predicts, at a batch's speed."""
        if x.ndim != 2 or x.shape[1] != self.x.shape[1]:
            raise TableError(f"table {self.name}: its surrogates take points of {self.x.shape[1]} numbers"
                             f" ({self.inputs}), given an array of shape {x.shape}; make each point with the table's"
                             " encode")
        return self.surrogate(surrogate).predict_many(self._surrogate_input(x, self.level(fidelity)))

    def _surrogate_input(self, x: np.ndarray, level: float | None) -> np.ndarray:
        """Encoded points (one, or [queries, inputs]) as the surrogates take them: with the level as a last input,
        a share of the top level, where the table has a fidelity."""
        if not self.fidelity_column:
            return x
        return np.concatenate([x, np.full((*x.shape[:-1], 1), level / self.levels[-1])], axis=-1)

    def best_measured(self) -> dict[str, float]:
        """Each objective's best measured value at the top level (the manifest gives the direction)."""
        top = [i for i, level in enumerate(self.level_of) if level == self.levels[-1] and self.status[i] == "ok"]
        directions = {o["name"]: o.get("direction", "min") for o in self.manifest["objectives"]}
        pick = {"max": max, "min": min}
        return {o: float(pick[directions[o]](self.values[o][i] for i in top)) for o in self.objectives}

    def noise_sd(self, objective: str, level: float | None, mean: float) -> float:
        """The standard deviation of one real evaluation around ``mean``, from the manifest's noise model: the
        evaluation set's binomial sampling error (for a proportion: mean (1 - mean) / items) and, where repeats
        measured it, the seed-to-seed spread of training. 0 where the table records neither."""
        items, seed_variance = self.noise_parts[objective, level]
        variance = 0.0
        if items:
            p = min(max(mean, 0.0), 1.0)
            variance += p * (1 - p) / items
        return math.sqrt(variance + seed_variance)

    def _noise_parts(self, objective: str, level: float | None) -> tuple[int | None, float]:
        """The items behind one evaluation of a proportion (None for other objectives) and the seed variance."""
        noise = self.manifest.get("noise", {})
        key = level_key(level) if self.fidelity_column else "all"
        items = noise.get("evaluation", {}).get(key, {}).get("items")
        items = items.get(objective) if isinstance(items, dict) else items
        proportion = list(self.bounds[objective] or []) == [0.0, 1.0]
        seed_std = noise.get("repeats", {}).get(objective, {}).get(key, {}).get("mean_seed_std")
        return (items if proportion else None), (seed_std or 0.0) ** 2

    def observe(self, result: Result, config: dict[str, Any], seed: int) -> Result:
        """What a real evaluation would return for a configuration the table did not measure: the prediction
        plus noise drawn from the noise model, clipped to the objective's bounds, the same for the same (run
        seed, configuration, level) and so reproducible, resumable and checkable from a submission. The noise-free prediction stays in
        ``extra["noise_free"]``. A measured row (exact or nearest) is returned as measured: it is a real
        observation already."""
        if result.source != "surrogate" or not result.ok:
            return result
        # keyed on the configuration's point in the unit cube to 1e-9, so the same configuration gives the same draw
        # however it was typed or rounded (an optimizer's numpy values, ConfigSpace's rounding, a Parquet round trip)
        point = [None if u != u else round(u, 9) for u in to_unit(self.space, config).tolist()]  # u != u: NaN
        # one standard normal per objective from the key's hash (8 bytes each, through the inverse normal CDF)
        stream = hashlib.shake_256(json.dumps([seed, point, result.fidelity]).encode()).digest(8 * len(self.objectives))
        observed, sds = {}, {}
        for i, name in enumerate(self.objectives):
            mean = result.objectives[name]
            sds[name] = self.noise_sd(name, result.fidelity, mean)
            uniform = (int.from_bytes(stream[8 * i: 8 * i + 8], "little") + 0.5) / 2**64
            value = mean + sds[name] * _STANDARD_NORMAL.inv_cdf(uniform) if sds[name] else mean
            if self.bounds.get(name):
                value = min(max(value, self.bounds[name][0]), self.bounds[name][1])
            observed[name] = float(value)
        return replace(result, objectives=observed,
                       extra={**result.extra, "noise_free": dict(result.objectives), "noise_sd": sds})

    def surrogate(self, family: str | None = None):
        if not self.surrogates:
            raise TableError(f"table {self.name} has no surrogate; use the nearest policy or rebuild it")
        family = family or next(iter(self.surrogates))
        if family not in self.surrogates:
            raise TableError(f"table {self.name} has no {family!r} surrogate; it has {', '.join(self.surrogates)}")
        return self.surrogates[family]

    def _row(self, i: int, source: str) -> Result:
        extra = {"row": i, **{c: v[i] for c, v in self.extra_columns.items()}}
        if source == "nearest":
            extra["measured_config"] = self.configs[i]
        common = {"cost": float(self.cost[i]), "source": source, "fidelity": self.level_of[i],
                  "table_sha256": self.sha256, "extra": extra}
        if self.status[i] != Status.OK.value:
            return Result.failure(self.errors[i], status=Status(self.status[i]), **common)
        return Result({o: float(self.values[o][i]) for o in self.objectives}, **common)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def surrogate_quality(x: np.ndarray, y: np.ndarray, groups: list, folds: int = 10,
                      levels: list | None = None, family: str = "random-forest",
                      pool: Executor | None = None) -> dict[str, Any]:
    """Held-out quality of the surrogate: k-fold, grouped so a repeated configuration never sits
    in both the training and the test part; pooled Spearman and mean absolute error, and with
    ``levels`` (each row's fidelity level) the same per level, where a multi-fidelity optimizer reads it.
    With a ``pool``, the folds are fitted in its processes (the same numbers: each fits on one thread)."""
    unique = list(dict.fromkeys(groups))
    order = np.random.default_rng(0).permutation(len(unique))
    fold_of = {unique[j]: position % folds for position, j in enumerate(order)}
    fold = np.array([fold_of[g] for g in groups])
    predicted = np.empty_like(y)
    tests = [fold == k for k in range(folds)]
    parts = ([family] * folds, [x[~test] for test in tests], [y[~test] for test in tests], [x[test] for test in tests])
    for test, values in zip(tests, (pool.map if pool else map)(_held_out, *parts)):
        predicted[test] = values
    quality: dict[str, Any] = {"folds": folds, **_agreement(predicted, y)}
    if levels is not None:
        quality["levels"] = {level_key(level): {"rows": int(sum(np.equal(levels, level))),
                                                 **_agreement(predicted[np.equal(levels, level)],
                                                              y[np.equal(levels, level)])}
                             for level in sorted(set(levels))}
    return quality


def _held_out(family: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """One fold: fitted on one BLAS thread, in this process or a pool's."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return SURROGATES[family].fit(x, {"y": y}).predict_many(x_test)["y"]


# from this many rows a table's held-out folds are fitted in one process a core: below it a fold's fit takes
# well under a second, less than starting the processes (the SmolLM2 table's 928 rows: about 30 s a GP fold)
_PARALLEL_FOLD_ROWS = 300


def _agreement(predicted: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    from scipy.stats import spearmanr

    rho = float(spearmanr(predicted, y).statistic) if len(y) > 1 else math.nan
    return {"spearman": None if math.isnan(rho) else round(rho, 4), "mae": round(float(np.abs(predicted - y).mean()), 5)}


def level_key(level: float) -> str:
    """A fidelity level as a JSON object key: 15 -> "15", 0.5 -> "0.5"."""
    return f"{level:g}"


def write_table(
    name: str,
    columns: dict[str, list],
    manifest: dict[str, Any],
    directory: Path,
    surrogate: bool = True,
    types: dict[str, Any] | None = None,
    encoding: Encoding | None = None,
) -> dict[str, Any]:
    """Write ``name.parquet`` and ``name.json`` (schema, sha256, rows, surrogate and its quality).

    ``manifest`` brings space, objectives, fidelity, provenance and the rest; this adds what is
    computed from the data, so a rebuild from the same rows gives the same files. With a
    ``fidelity.column``, the surrogate also takes the level (as a share of the top level) and its
    quality is reported per level; with a ``status`` column it is fitted on the ok rows only.
    ``types`` fixes the Arrow type of columns that may hold only nulls (an error column, say). With an
    ``encoding``, the surrogates read it, not the unit cube, and the manifest names its features.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    import pyarrow as pa
    import pyarrow.parquet as pq
    from threadpoolctl import threadpool_limits

    data = directory / f"{name}.parquet"
    table = pa.Table.from_pydict({c: pa.array(v, type=(types or {}).get(c)) for c, v in columns.items()})
    pq.write_table(table, data, compression="zstd")
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "name": name,
        **manifest,
        "data": data.name,
        "rows": table.num_rows,
        "sha256": sha256_file(data),
        "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        **({"encoding": {"name": encoding.name, "features": list(encoding.features)}} if encoding else {}),
    }
    if surrogate:
        space = space_of(manifest)
        params = list(space.keys())
        status = columns.get("status") or ["ok"] * table.num_rows
        keep = [i for i in range(table.num_rows) if status[i] == "ok"]
        configs = row_configs(columns, params, keep)
        encode, inputs = encoder(space, encoding)
        x = np.array([encode(c) for c in configs])
        column = (manifest.get("fidelity") or {}).get("column")
        levels = [columns[column][i] for i in keep] if column else None
        if column:
            x = np.column_stack([x, np.asarray(levels, dtype=float) / max(levels)])
            inputs += f", then {column} as a share of the top level {max(levels):g}"
        groups = [tuple(c.values()) for c in configs]
        objectives = [o["name"] for o in manifest["objectives"]]
        ys = {o: np.asarray([columns[o][i] for i in keep], dtype=float) for o in objectives}
        manifest["surrogates"] = {}
        # on one BLAS thread: a GP fitted on two differs in its last bits, and a rebuild on another machine (or
        # with another OMP_NUM_THREADS) must give the same bytes
        cores = _cores() if len(keep) >= _PARALLEL_FOLD_ROWS else 1
        pool = ProcessPoolExecutor(cores, mp_context=get_context("spawn")) if cores > 1 else None
        with threadpool_limits(limits=1), pool or nullcontext():
            for family, model in SURROGATES.items():
                weights = directory / f"{name}.{'surrogate' if family == 'random-forest' else family}.safetensors"
                model.fit(x, ys).save(weights)
                manifest["surrogates"][family] = {
                    "settings": model.settings,
                    "inputs": inputs,
                    "file": weights.name,
                    "sha256": sha256_file(weights),
                    "quality": {o: surrogate_quality(x, ys[o], groups, levels=levels, family=family, pool=pool)
                                for o in objectives},
                }
    (directory / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


class TableProblem:
    """Table mode, the same for every problem with a table: open and check the table, answer a trial from it
    (observed with the table's noise unless told not to), describe it for run cards and the board. A problem sets
    ``space`` before ``open_table``."""

    space: ConfigurationSpace

    def open_table(self, name: str, lookup: str = "surrogate", noise: bool = True, surrogate: str | None = None,
                   encoding: Encoding | None = None) -> None:
        self.lookup, self.noise = lookup, noise
        self.table = Table(name, encoding=encoding)
        self.surrogate = self.table.surrogate(surrogate).family if lookup == "surrogate" else None
        if self.table.space != self.space:
            raise TableError(f"table {name} was measured in another search space than this problem's; rebuild it")
        self.deterministic = self.table.manifest["noise"]["deterministic"] and not noise
        if self.table.fidelity_column:  # a learning-curve table: any fidelity, answered at the next level up
            levels = self.table.levels
            self.fidelity = Fidelity(self.table.fidelity_column, levels[0], levels[-1])

    def answer(self, config: dict[str, Any], fidelity: float | None, seed: int) -> Result:
        result = self.table.lookup(config, seed, self.lookup, fidelity, self.surrogate)
        if result.source != "table" and result.ok:
            result = self.computed(config, result)
        return self.table.observe(result, config, seed) if self.noise else result

    def computed(self, config: dict[str, Any], result: Result) -> Result:
        """An unmeasured configuration's answer with what the problem computes exactly put in place of the
        prediction (a model's parameter count, say); nothing here."""
        return result

    def table_provenance(self) -> dict[str, Any]:
        best = self.table.best_measured()
        return {"table": self.table.name, "table_sha256": self.table.sha256, "table_files": self.table.files,
                "lookup": self.lookup, "surrogate": self.surrogate, "noise": self.noise,
                # one evaluation's noise near the best measurement: the board's region of practical equivalence
                "noise_sd": {o: self.table.noise_sd(o, self.table.levels[-1], value) for o, value in best.items()},
                # what the board explains a table problem by: its best real measurement, the space's default
                # configuration's (noise-free) value, and each surrogate family's held-out quality
                "best_measured": best,
                "default_value": self.table.lookup(dict(self.space.get_default_configuration()), 0, self.lookup, None,
                                                   self.surrogate).objectives,
                "surrogate_quality": {family: {o: {k: q[k] for k in ("spearman", "mae")}
                                               for o, q in entry["quality"].items()}
                                      for family, entry in self.table.manifest.get("surrogates", {}).items()}}
