"""Sweeps: a family of training runs indexed by configurations, with a tidy table of results.

A *point* of a sweep is a plain dict of JSON-serialisable values that fixes one training
run: the architecture, the data set, the training hyper-parameters and a repeat label, e.g.
``{"arch": "late", "depth": 2, "width": 100, "data": "toy", "rho": 0.3, "ratio": 2.0,
"lr": 0.04, "epochs": 40000, "tol": 1e-4, "repeat": 3}``. :func:`grid` builds lists of
points, :func:`run_sweep` trains them all and returns a :class:`SweepResult`: one row per
point (its parameters and its measured quantities) and, when asked, the trajectories.

How a sweep runs
----------------
- **Randomness.** Point ``i`` draws from its own child of ``np.random.SeedSequence(seed)``
  (spawn key ``(i,)``, the child ``SeedSequence(seed).spawn(N)[i]``): the data from that
  child's child 0, the initial weights from its child 1. Nothing else is random, and
  :func:`linfusion.train_many` is batch- and thread-count-invariant, so a sweep gives the
  same bits on 1 process, several processes or a Dask cluster, in any order.
  ``seed_by='config'`` derives the spawn key from the configuration instead of its
  position, so that a point keeps its numbers when the list is reordered or extended.
- **Batching.** Points that differ only in per-run values (``lr``, ``weight_decay``, data
  parameters such as ``rho``, initialisation, ``repeat``) go to one task; a task builds its
  points, groups them by actual shapes (network, data, epochs, ...) and trains each group in
  one :func:`linfusion.train_many` call, cut so that its records stay under 256 MiB.
- **Workers.** ``workers=1`` runs in this process (numba uses every core inside a batch);
  ``workers > 1`` uses a 'spawn' process pool with ``cores // workers`` numba threads each;
  ``scheduler=...`` sends one task per batch to a Dask cluster. Inside one process batches
  train one at a time.
- **Cache.** With ``cache_dir``, each finished point is written at once by this (the
  client) process to ``<cache_dir>/<key>.npz``, atomically (temporary file in the same
  folder, then ``os.replace``). ``key`` is the sha256 of the point's completed
  configuration, the seed and spawn key, the build function's name and
  ``linfusion.__version__`` (:func:`point_key`). The file holds the *simulation* (recorded
  trajectory, initial and final weights, status) plus a JSON record with a sha256 of the
  arrays; the measurements are recomputed from it on every run, so changing ``measure``
  never needs a recompute. A file that cannot be read, lacks a field or fails its
  checksum is reported (:class:`CacheWarning` naming the file) and recomputed. A sweep
  killed at any moment loses only the points in flight.

The cache key contains the build function's module and name, not its code: give a build
function a new name (or pass ``force=True``) when you change what it does.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import inspect
import itertools
import json
import math
import multiprocessing
import numbers
import os
import pickle
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as _futures_wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import data as _data
from .architecture import INIT_SCHEMES, FusionNet
from .data import Dataset, Moments
from .training import LOSSES, train_many
from .validation import check_choice, check_int, check_scalar

__all__ = ["grid", "normalize", "point_key", "build", "run_point", "run_sweep", "load_point",
           "SweepResult", "SweepError", "CacheWarning", "TRAIN_DEFAULTS", "NET_DEFAULTS",
           "DATA_DEFAULTS", "PER_RUN_KEYS"]

#: Training keys every point has (filled in when missing). ``scale=None`` becomes 1e-9 for
#: ``init='entry'`` and 0.1 otherwise, as in :func:`linfusion.train`; ``repeat`` is a label
#: that tells repeats of one configuration apart.
TRAIN_DEFAULTS = {"lr": 0.04, "epochs": 1000, "tol": 0.0, "loss": "mse", "weight_decay": 0.0,
                  "record_every": 1, "path": "auto", "init": "entry", "scale": None, "repeat": 0}
#: Architecture keys of the default :func:`build`. ``arch`` is 'shallow' (L = L_f = 1),
#: 'early' (L_f = 1), 'late' (L_f = L) or 'deep' (L_f from ``fuse_depth``, default 2).
NET_DEFAULTS = {"arch": "late", "depth": 2, "fuse_depth": None, "width": 100, "slope": 1.0, "bias": False}
#: Data keys of the default :func:`build`, per data set (see :mod:`linfusion.data`).
DATA_DEFAULTS = {
    "toy": {"rho": 0.0, "ratio": 2.0, "n": 8192, "noise": 0.0, "w_star": [1.0, 1.0]},
    "multi": {"dim": 100, "n": 700, "noise": 0.5},
    "random_stats": {"dim": 20, "n": 8192},
    "xor_linear": {"sigma_a": 1.0, "n": 8192},
}
#: Keys whose values may differ between the runs of one batch (one train_many call).
PER_RUN_KEYS = frozenset({"lr", "weight_decay", "init", "scale", "repeat",
                          "rho", "ratio", "noise", "w_star", "sigma_a"})

_ARCHS = ("shallow", "early", "late", "deep")
_FORMAT = 1                          # cache file format
_RECORD_BUDGET = 256 * 2 ** 20       # bytes of records + stacked samples per train_many call
_MAX_WARNINGS = 5                    # distinct training warnings re-emitted per sweep
_TRAIN_LOCK = threading.Lock()       # one batch at a time per process (see _run_batch)


class SweepError(RuntimeError):
    """A point of a sweep failed; finished points are kept (in the cache, when there is one).

    Attributes
    ----------
    index : int or None
        Position of the (first) failed point in the sweep's list.
    config : dict or None
        Its completed configuration.
    failures : list of dict
        Every failure the sweep saw (index, config, key, stage, error, traceback).
    """

    def __init__(self, message, *, index=None, config=None, failures=()):
        super().__init__(message)
        self.index = index
        self.config = config
        self.failures = list(failures)


class CacheWarning(RuntimeWarning):
    """A cache file was unreadable, incomplete or failed its checksum; it is recomputed."""


# ---------------------------------------------------------------------- configurations
def grid(**axes):
    """Cartesian product of the list-valued arguments; other values pass through.

    Parameters
    ----------
    **axes
        A ``list``, ``range`` or 1-d ndarray is an axis; anything else (scalars, strings,
        tuples such as ``w_star=(1.0, 1.0)``) is a fixed value of every point.

    Returns
    -------
    list of dict
        One dict per point, the first axis varying slowest.

    Examples
    --------
    >>> grid(rho=[0.0, 0.5], repeat=range(2), data="toy")  # doctest: +NORMALIZE_WHITESPACE
    [{'rho': 0.0, 'repeat': 0, 'data': 'toy'}, {'rho': 0.0, 'repeat': 1, 'data': 'toy'},
     {'rho': 0.5, 'repeat': 0, 'data': 'toy'}, {'rho': 0.5, 'repeat': 1, 'data': 'toy'}]
    """
    values = []
    for name, v in axes.items():
        if isinstance(v, (list, range)) or (isinstance(v, np.ndarray) and v.ndim == 1):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
            if not v:
                raise ValueError(f"{name} == [], an axis must have at least one value.")
            values.append(v)
        else:
            values.append([v])
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _plain(name, v):
    """``v`` as plain JSON values (numpy scalars and tuples converted), else raise."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"{name} == {f!r}, must be finite.")
        return f
    if isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim >= 1):
        return [_plain(f"{name}[{i}]", x) for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError(f"{name} has key {k!r}, must have str keys.")
            out[k] = _plain(f"{name}[{k!r}]", x)
        return out
    raise TypeError(f"{name} == {v!r} is a {type(v).__name__}, must be JSON-serialisable "
                    "(None, bool, int, float, str, or lists and dicts of them).")


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _check_bool(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} == {v!r}, must be True or False.")
    return bool(v)


def _normalize_train(cfg):
    cfg["lr"] = check_scalar("lr", cfg["lr"], lo=0.0, lo_open=True)
    cfg["epochs"] = check_int("epochs", cfg["epochs"], lo=1)
    cfg["tol"] = check_scalar("tol", cfg["tol"], lo=0.0)
    cfg["loss"] = check_choice("loss", cfg["loss"], LOSSES)
    cfg["weight_decay"] = check_scalar("weight_decay", cfg["weight_decay"], lo=0.0)
    cfg["record_every"] = check_int("record_every", cfg["record_every"], lo=1)
    cfg["path"] = check_choice("path", cfg["path"], ("auto", "moment", "sample"))
    cfg["init"] = check_choice("init", cfg["init"], INIT_SCHEMES)
    if cfg["scale"] is None:
        cfg["scale"] = 1e-9 if cfg["init"] == "entry" else 0.1
    cfg["scale"] = check_scalar("scale", cfg["scale"], lo=0.0, lo_open=True)
    cfg["repeat"] = check_int("repeat", cfg["repeat"], lo=0)


def _normalize_default(cfg):
    """Fill and check the architecture and data keys of the default build."""
    kind = check_choice("data", cfg.get("data", "toy"), tuple(DATA_DEFAULTS))
    known = set(TRAIN_DEFAULTS) | set(NET_DEFAULTS) | {"data"}
    for key in cfg:
        if key in known or key in DATA_DEFAULTS[kind]:
            continue
        owners = [d for d, keys in DATA_DEFAULTS.items() if key in keys]
        if owners:
            raise ValueError(f"{key} == {cfg[key]!r} is not a parameter of data {kind!r} "
                             f"(its parameters: {', '.join(DATA_DEFAULTS[kind])}).")
        raise ValueError(f"{key} == {cfg[key]!r} is not a configuration key of the default build "
                         f"(known: {', '.join(sorted(known | set(itertools.chain(*DATA_DEFAULTS.values()))))}); "
                         "pass build= to use keys of your own.")
    out = {"data": kind}
    for key, default in {**NET_DEFAULTS, **DATA_DEFAULTS[kind]}.items():
        out[key] = cfg.get(key, default)
    arch = check_choice("arch", out["arch"], _ARCHS)
    depth = check_int("depth", out["depth"], lo=1)
    fuse = out["fuse_depth"]
    if arch == "shallow" and depth != 1:
        if "depth" in cfg:
            raise ValueError(f"depth == {depth}, must be 1 for arch 'shallow'.")
        depth = 1
    want = {"shallow": 1, "early": 1, "late": depth}.get(arch)
    if want is None:       # deep: any fusion layer, default 2 as in FusionNet.deep
        fuse = check_int("fuse_depth", 2 if fuse is None else fuse, lo=1, hi=depth, hi_name="depth")
    elif fuse is None:
        fuse = want
    else:
        fuse = check_int("fuse_depth", fuse, lo=1)
        if fuse != want:
            raise ValueError(f"fuse_depth == {fuse}, must be {want} for arch {arch!r} (depth {depth}); "
                             "use arch 'deep' for another fusion layer.")
    out["arch"], out["depth"], out["fuse_depth"] = arch, depth, fuse
    out["width"] = check_int("width", out["width"], lo=1)
    out["slope"] = check_scalar("slope", out["slope"], lo=0.0, hi=1.0)
    out["bias"] = _check_bool("bias", out["bias"])
    out["n"] = check_int("n", out["n"], lo=1)
    if kind == "toy":
        out["rho"] = check_scalar("rho", out["rho"], lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
        out["ratio"] = check_scalar("ratio", out["ratio"], lo=0.0, lo_open=True)
        out["noise"] = check_scalar("noise", out["noise"], lo=0.0)
        ws = _plain("w_star", out["w_star"])
        if not isinstance(ws, list) or len(ws) != 2:
            raise ValueError(f"w_star == {out['w_star']!r}, must be 2 numbers (w_A*, w_B*).")
        out["w_star"] = [check_scalar(f"w_star[{k}]", x) for k, x in enumerate(ws)]
    elif kind in ("multi", "random_stats"):
        out["dim"] = check_int("dim", out["dim"], lo=2)
        if out["dim"] % 2:
            raise ValueError(f"dim == {out['dim']}, must be even (two halves, one per modality).")
        if kind == "multi":
            out["noise"] = check_scalar("noise", out["noise"], lo=0.0)
    else:
        out["sigma_a"] = check_scalar("sigma_a", out["sigma_a"], lo=0.0, lo_open=True)
        if out["n"] < 4 or out["n"] % 4:
            raise ValueError(f"n == {out['n']}, must be a positive multiple of 4 for data 'xor_linear'.")
    linear = out["slope"] == 1.0 and not out["bias"] and cfg.get("loss", "mse") == "mse"
    if cfg.get("path") == "moment" and not linear:
        raise ValueError(f"path == 'moment', must be 'sample' or 'auto' for this point (slope {out['slope']}, "
                         f"bias {out['bias']}, loss {cfg.get('loss', 'mse')!r}): the moment path needs a "
                         "linear net, no bias and loss 'mse'.")
    return out


def normalize(config, *, build=None):
    """Complete and check one point's configuration.

    Missing training keys get :data:`TRAIN_DEFAULTS`; with the default :func:`build`, missing
    architecture and data keys get :data:`NET_DEFAULTS` and :data:`DATA_DEFAULTS`, and
    unknown keys are rejected (a typo would otherwise be a silent constant). With a custom
    ``build`` other keys pass through unchecked. Numbers are converted to the type of their
    key (``ratio=2`` and ``ratio=2.0`` are one point), numpy scalars and tuples to plain
    JSON values.

    Parameters
    ----------
    config : dict
    build : callable, optional
        The sweep's build function; None for the default :func:`build`.

    Returns
    -------
    dict
        A new dict with sorted keys.

    Raises
    ------
    TypeError, ValueError
        Naming the key, its value and the rule.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config is a {type(config).__name__}, must be a dict of parameters.")
    for key in config:
        if not isinstance(key, str):
            raise TypeError(f"config has key {key!r}, must have str keys.")
    cfg = {key: _plain(key, v) for key, v in config.items()}
    out = {key: cfg.get(key, default) for key, default in TRAIN_DEFAULTS.items()}
    _normalize_train(out)
    if build is None or build is globals()["build"]:
        out.update(_normalize_default(cfg))
    else:
        out.update({k: v for k, v in cfg.items() if k not in out})
    return dict(sorted(out.items()))


def _callable_name(f):
    f = f if f is not None else build
    while hasattr(f, "func"):          # functools.partial
        f = f.func
    mod = getattr(f, "__module__", None) or type(f).__module__
    name = getattr(f, "__qualname__", None) or type(f).__qualname__
    return f"{mod}.{name}"


def _version():
    import linfusion          # at call time: the package may import this module while it initialises
    return linfusion.__version__


def _entropy(seed):
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed == {seed!r}, must be a non-negative integer or None.")
    return int(seed)


def _spawn_key(cfg, index, seed_by):
    if seed_by == "index":
        return [int(index)]
    digest = hashlib.sha256(_canonical(cfg).encode()).digest()
    return [int.from_bytes(digest[4 * j:4 * j + 4], "little") for j in range(4)]


def _key_of(cfg, entropy, spawn_key, build_name):
    payload = {"config": cfg, "seed": entropy, "spawn_key": list(spawn_key),
               "build": build_name, "version": _version()}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def point_key(config, *, seed=0, index=0, seed_by="index", build=None):
    """The sha256 cache key of one point.

    It covers every key and value of the completed configuration (:func:`normalize`, so key
    order and ``2`` vs ``2.0`` do not matter), the seed and the point's spawn key (its
    index, or its configuration with ``seed_by='config'``), the build function's module and
    name, and ``linfusion.__version__``.

    Parameters
    ----------
    config : dict
    seed : int
    index : int
        Position of the point in its sweep's list.
    seed_by : {'index', 'config'}
    build : callable, optional

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    check_choice("seed_by", seed_by, ("index", "config"))
    cfg = normalize(config, build=build)
    return _key_of(cfg, _entropy(seed), _spawn_key(cfg, check_int("index", index, lo=0), seed_by),
                   _callable_name(build))


def _seeds(entropy, spawn_key):
    """The data and initial-weight seed sequences of a point (children 0 and 1 of its own)."""
    return (np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key) + (0,)),
            np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key) + (1,)))


# ---------------------------------------------------------------------- building and training
def build(config, rng):
    """Default build: the network and data set of one point.

    Parameters
    ----------
    config : dict
        A point's configuration (completed with :func:`normalize`). Architecture keys
        ``arch, depth, fuse_depth, width, slope, bias``; data key ``data`` in {'toy',
        'multi', 'random_stats', 'xor_linear'} with that generator's parameters (``toy``:
        rho, ratio, n, noise, w_star; ``multi``: dim, n, noise; ``random_stats``: dim, n;
        ``xor_linear``: sigma_a, n).
    rng : numpy.random.Generator
        The point's data randomness.

    Returns
    -------
    net : FusionNet
        Input dimensions and output dimension from the data.
    data : Dataset

    Notes
    -----
    A custom build function has the same signature and may return ``Moments`` instead of a
    ``Dataset`` (moment path only). It must be a module-level function (picklable) for
    worker processes; it must draw only from ``rng``.
    """
    cfg = normalize(config)
    kind = cfg["data"]
    if kind == "toy":
        ds = _data.toy(cfg["rho"], cfg["ratio"], cfg["n"], cfg["noise"], tuple(cfg["w_star"]), rng=rng)
    elif kind == "multi":
        ds = _data.multi(cfg["dim"], cfg["n"], cfg["noise"], rng=rng)
    elif kind == "random_stats":
        ds = _data.random_stats(cfg["dim"], cfg["n"], rng=rng)
    else:
        ds = _data.xor_linear(cfg["sigma_a"], cfg["n"], rng=rng)
    net = FusionNet(ds.in_dims, ds.out_dim, cfg["width"], cfg["depth"], cfg["fuse_depth"],
                    cfg["slope"], cfg["bias"])
    return net, ds


def _prepare(cfg, entropy, spawn_key, build_fn):
    """Build a point and draw its initial weights, from its own seed sequences only."""
    data_seq, init_seq = _seeds(entropy, spawn_key)
    made = build_fn(dict(cfg), np.random.default_rng(data_seq))
    if not (isinstance(made, tuple) and len(made) == 2):
        raise TypeError(f"build returned a {type(made).__name__}, must return (FusionNet, Dataset).")
    net, ds = made
    if not isinstance(net, FusionNet):
        raise TypeError(f"build returned a {type(net).__name__} as network, must return a FusionNet.")
    if not isinstance(ds, (Dataset, Moments)):
        raise TypeError(f"build returned a {type(ds).__name__} as data, must return a Dataset or Moments.")
    align = None
    if cfg["init"] == "balanced":      # as linfusion.train: align with the least-squares solution
        mo = ds if isinstance(ds, Moments) else ds.moments()
        align = np.linalg.lstsq(mo.sxx, mo.syx.T, rcond=None)[0].T
    w0 = net.init(cfg["init"], cfg["scale"], np.random.default_rng(init_seq), align=align)
    return net, ds, w0


def _shape_key(net, ds, cfg):
    if isinstance(ds, Moments):
        sig = ("moments", np.shape(ds.sxx), np.shape(ds.syx))
    else:
        sig = ("dataset", ds.n_samples, ds.in_dims, ds.out_dim,
               ds.sigma is not None and ds.w_star is not None)
    return (net, sig, cfg["epochs"], cfg["record_every"], cfg["tol"], cfg["loss"], cfg["path"])


def _bytes_per_run(net, ds, cfg):
    n_rec = cfg["epochs"] // cfg["record_every"] + 2
    size = n_rec * (net.out_dim * net.in_dim + 3) * 8
    if isinstance(ds, Dataset) and not (net.slope == 1.0 and not net.bias and cfg["loss"] == "mse"):
        size += ds.n_samples * (net.in_dim + net.out_dim) * 8
    return size


def _train(members):
    """One train_many call for prepared points of equal shapes: [(cfg, net, ds, w0)]."""
    cfg, net = members[0][0], members[0][1]
    return train_many(net, [m[2] for m in members], lr=[m[0]["lr"] for m in members],
                      weight_decay=[m[0]["weight_decay"] for m in members],
                      w0=np.stack([m[3] for m in members]), epochs=cfg["epochs"], loss=cfg["loss"],
                      record_every=cfg["record_every"], tol=cfg["tol"], path=cfg["path"])


def _takes_config(fn):
    try:
        inspect.signature(fn).bind(None, None)
        return True
    except (TypeError, ValueError):
        return False


def _measure(result, cfg, measure):
    """The measured part of a row: base quantities, then ``measure``'s scalars."""
    row = {"status": result.status, "diverged": bool(result.diverged),
           "final_epoch": int(result.final_epoch), "final_loss": float(result.loss[-1]),
           "final_eg": float(result.eg[-1]) if result.eg is not None else float("nan")}
    for k, wt in enumerate(result.w_tot):
        for j, v in enumerate(np.asarray(wt[-1]).ravel()):
            row[f"w_tot_{k}_{j}"] = float(v)
    if measure is None:
        return row
    got = measure(result, dict(cfg)) if _takes_config(measure) else measure(result)
    if not isinstance(got, Mapping):
        raise TypeError(f"measure returned a {type(got).__name__}, must return a dict of scalars.")
    for name, v in got.items():
        if not isinstance(name, str):
            raise TypeError(f"measure returned key {name!r}, must return str keys.")
        if name in row or name in cfg or name in ("index", "key", "seed", "error"):
            raise ValueError(f"measure returned key {name!r}, which is already a column; rename it.")
        if isinstance(v, np.ndarray) and v.size == 1:
            v = v.reshape(())[()]
        if isinstance(v, np.generic):
            v = v.item()
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise TypeError(f"measure returned {name} == {v!r}, must be a scalar (bool, int, float, str or None).")
        row[name] = v
    return row


def _arrays_of(result):
    arrays = {"epochs": result.epochs, "loss": result.loss, "w_tot": result.w_tot_all,
              "w": result.w, "w0": result.w0}
    if result.eg is not None:
        arrays["eg"] = result.eg
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def _result_meta(result):
    net = result.net
    return {"status": result.status, "message": result.message, "lr": result.lr, "path": result.path,
            "net": {"in_dims": list(net.in_dims), "out_dim": net.out_dim, "width": net.width,
                    "depth": net.depth, "fuse_depth": net.fuse_depth, "slope": net.slope, "bias": net.bias}}


def _result_from(arrays, meta):
    from .training import TrainResult
    n = meta["net"]
    net = FusionNet(tuple(n["in_dims"]), n["out_dim"], n["width"], n["depth"], n["fuse_depth"],
                    n["slope"], n["bias"])
    wt = arrays["w_tot"]
    return TrainResult(epochs=arrays["epochs"], loss=arrays["loss"],
                       w_tot=[np.ascontiguousarray(wt[:, :, sl]) for sl in net.in_slices],
                       eg=arrays.get("eg"), w=arrays["w"], w0=arrays["w0"], status=meta["status"],
                       message=meta["message"], lr=float(meta["lr"]), path=meta["path"], net=net)


def _error_info(exc, stage):
    try:
        pickle.dumps(exc)
        picklable = exc
    except Exception:
        picklable = None
    return {"stage": stage, "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            "exception": picklable}


@contextlib.contextmanager
def _numba_threads(n):
    if n is None:
        yield
        return
    from . import _engine
    old = _engine.get_threads()
    _engine.set_threads(n)
    try:
        yield
    finally:
        _engine.set_threads(old)


def _run_batch(task):
    """Build, train and measure one batch of points (runs in a worker, or in-process).

    Never raises for a point's own failure: each item's outcome carries either its arrays
    and measured row or an error record. Runs under a process-wide lock: numba's workqueue
    layer does not allow concurrent parallel kernels, and ``warnings.catch_warnings`` is
    process state.
    """
    build_fn = task["build"] if task["build"] is not None else build
    measure = task["measure"]
    outcomes = []
    with _TRAIN_LOCK, warnings.catch_warnings(record=True) as caught, _numba_threads(task["threads"]):
        warnings.simplefilter("always")
        groups = {}
        for item in task["items"]:
            cfg = item["config"]
            try:
                net, ds, w0 = _prepare(cfg, task["entropy"], item["spawn_key"], build_fn)
            except Exception as exc:
                outcomes.append({"key": item["key"], "ok": False, "arrays": None, "meta": None,
                                 "row": None, **_error_info(exc, "build")})
                continue
            groups.setdefault(_shape_key(net, ds, cfg), []).append((cfg, net, ds, w0, item))
        for members in groups.values():
            per = max(1, _RECORD_BUDGET // max(1, _bytes_per_run(members[0][1], members[0][2], members[0][0])))
            for start in range(0, len(members), per):
                chunk = members[start:start + per]
                try:
                    results = _train(chunk)
                except Exception as exc:
                    info = _error_info(exc, "train")
                    outcomes.extend({"key": m[4]["key"], "ok": False, "arrays": None, "meta": None,
                                     "row": None, **info} for m in chunk)
                    continue
                for (cfg, _, _, _, item), res in zip(chunk, results):
                    out = {"key": item["key"], "arrays": _arrays_of(res) if task["want_arrays"] else None,
                           "meta": _result_meta(res)}
                    try:
                        out.update(ok=True, row=_measure(res, cfg, measure))
                    except Exception as exc:
                        out.update(ok=False, row=None, **_error_info(exc, "measure"))
                    outcomes.append(out)
    seen = []
    for w in caught:
        entry = (type(w.message).__name__, str(w.message))
        if entry not in seen:
            seen.append(entry)
    return {"outcomes": outcomes, "warnings": seen}


def run_point(config, *, seed=0, index=0, seed_by="index", build=None):
    """Train one point exactly as a sweep would, in this process and without a cache.

    Parameters
    ----------
    config : dict
    seed, index, seed_by, build
        As in :func:`run_sweep`; ``index`` is the point's position in the sweep's list.

    Returns
    -------
    TrainResult
        Bit for bit the run that ``run_sweep(..., seed=seed)`` trains for that point.
    """
    check_choice("seed_by", seed_by, ("index", "config"))
    cfg = normalize(config, build=build)
    spawn_key = _spawn_key(cfg, check_int("index", index, lo=0), seed_by)
    net, ds, w0 = _prepare(cfg, _entropy(seed), spawn_key, build if build is not None else globals()["build"])
    return _train([(cfg, net, ds, w0)])[0]


# ---------------------------------------------------------------------- cache
def _checksum(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(_canonical([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _cache_path(cache_dir, key):
    return Path(cache_dir) / f"{key}.npz"


def _save(cache_dir, key, arrays, meta):
    """Write one point atomically: a temporary file in the same folder, then os.replace."""
    meta = {**meta, "format": _FORMAT, "key": key, "arrays": sorted(arrays), "sha256": _checksum(arrays)}
    payload = dict(arrays)
    payload["meta"] = np.frombuffer(_canonical(meta).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **payload)
        os.replace(tmp, _cache_path(cache_dir, key))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remove_stale_temporaries(cache_dir, age=3600.0):
    """Delete temporary files that a killed sweep left (older than ``age`` seconds).

    A live writer holds its temporary file for milliseconds, so an old one is an orphan.
    """
    now = time.time()
    for tmp in Path(cache_dir).glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > age:
                tmp.unlink()


def _read(path, key=None):
    """(arrays, meta) of a cache file; raises on anything missing, malformed or altered."""
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ValueError("no 'meta' record")
        meta = json.loads(bytes(z["meta"]).decode())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT}")
        if key is not None and meta.get("key") != key:
            raise ValueError(f"key {meta.get('key')!r}, expected {key}")
        missing = {"epochs", "loss", "w_tot", "w", "w0"} - set(meta["arrays"])
        if missing or not set(meta["arrays"]) <= set(z.files):
            raise ValueError(f"incomplete: arrays {sorted(z.files)}, record lists {meta['arrays']}")
        arrays = {name: z[name] for name in meta["arrays"]}
    if _checksum(arrays) != meta.get("sha256"):
        raise ValueError("checksum mismatch")
    return arrays, meta


def _load(cache_dir, key):
    path = _cache_path(cache_dir, key)
    if not path.exists():
        return None
    try:
        arrays, meta = _read(path, key)
        return _result_from(arrays, meta), meta
    except Exception as exc:
        warnings.warn(f"sweep cache file {path} is corrupt or incomplete ({type(exc).__name__}: {exc}); "
                      "recomputing the point.", CacheWarning, stacklevel=3)
        return None


def load_point(path):
    """Read one cache file of a sweep, with all checks.

    Parameters
    ----------
    path : str or Path
        A ``<key>.npz`` file of a sweep's ``cache_dir``.

    Returns
    -------
    result : TrainResult
    record : dict
        The point's configuration (``config``), ``seed``, ``spawn_key``, ``build``,
        ``version`` and ``key``.

    Raises
    ------
    ValueError, OSError
        When the file is unreadable, incomplete or fails its checksum.
    """
    arrays, meta = _read(path)
    return _result_from(arrays, meta), {k: meta[k] for k in ("config", "seed", "spawn_key", "build",
                                                             "version", "key")}


# ---------------------------------------------------------------------- executors
class _Serial:
    """Runs each task at submit time in this process."""

    slots = 1

    def submit(self, task):
        f = Future()
        try:
            f.set_result(_run_batch(task))
        except Exception as exc:
            f.set_exception(exc)
        return f

    def wait(self, pending):
        return set(pending)

    def cancel(self, f):
        return False

    def close(self, abort=False):
        pass


class _Pool:
    """Local worker processes ('spawn': numba's threading layers are not fork-safe).

    Workers get single-threaded BLAS: with several workers on few cores, BLAS threads in
    every worker oversubscribe the machine (numba's threads are set per batch instead).
    """

    _BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

    def __init__(self, n):
        self.slots = n
        # Children are spawned on demand and copy the environment when they start, so it
        # stays set while the pool lives (this process's BLAS is loaded already).
        self.saved_env = {k: os.environ.get(k) for k in self._BLAS_ENV}
        os.environ.update({k: "1" for k in self._BLAS_ENV})
        self.ex = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task):
        return self.ex.submit(_run_batch, task)

    def wait(self, pending):
        return _futures_wait(pending, return_when=FIRST_COMPLETED).done

    def cancel(self, f):
        return f.cancel()        # True only for a task that has not started

    def close(self, abort=False):
        self.ex.shutdown(wait=not abort, cancel_futures=True)
        for k, v in self.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Dask:
    """One task per batch on a Dask distributed cluster."""

    def __init__(self, scheduler):
        try:
            import distributed
        except ImportError as exc:
            raise ImportError("scheduler= needs the optional Dask extra, which is not installed: "
                              "pip install linfusion[dask]") from exc
        self.distributed = distributed
        self.own = False
        if isinstance(scheduler, distributed.Client):
            self.client = scheduler
        else:
            if scheduler is True or scheduler == "dask":
                address = os.environ.get("DASK_SCHEDULER_ADDRESS")
                if not address:
                    raise ValueError(f"scheduler == {scheduler!r} reads the scheduler address from the "
                                     "environment variable DASK_SCHEDULER_ADDRESS, which is not set.")
            elif isinstance(scheduler, str):
                address = scheduler
            else:
                raise TypeError(f"scheduler == {scheduler!r}, must be None, a scheduler address, 'dask' "
                                "(address from DASK_SCHEDULER_ADDRESS) or a distributed.Client.")
            self.client = distributed.Client(address)
            self.own = True
        self.slots = max(1, sum(self.client.nthreads().values()))

    def submit(self, task):
        return self.client.submit(_run_batch, task, pure=False)

    def wait(self, pending):
        return set(self.distributed.wait(list(pending), return_when="FIRST_COMPLETED").done)

    def cancel(self, f):
        return False             # at most 2 tasks per thread are in flight: let them finish and cache

    def close(self, abort=False):
        if self.own:
            self.client.close()


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---------------------------------------------------------------------- results
@dataclass
class SweepResult:
    """The results of a sweep, one row per point in the order of the sweep's list.

    Attributes
    ----------
    table : list of dict
        Row ``i``: ``index``, ``key`` (cache key), ``seed``, the point's completed
        configuration, then ``status`` ('completed', 'converged', 'diverged', or 'failed'
        with an ``error`` column), ``diverged``, ``final_epoch``, ``final_loss``,
        ``final_eg`` (NaN without population statistics), the final end-to-end weights
        ``w_tot_{k}_{j}`` (modality k, flattened entry j of its (out_dim, d_k) block), and
        the scalars ``measure`` returned.
    trajectories : list of TrainResult or None
        With ``keep_trajectories=True``: each point's run (epochs, loss, w_tot, eg, ...),
        None for a failed point.
    n_computed, n_cached : int
        Points trained by this call and points read from the cache.
    failures : list of dict
        Failed points (index, config, key, stage, error, traceback).
    seed : int
        The root seed (drawn when the sweep was given None).
    """

    table: list
    trajectories: list | None
    n_computed: int
    n_cached: int
    failures: list = field(default_factory=list)
    seed: int = 0

    def __len__(self):
        return len(self.table)

    @property
    def columns(self):
        """Column names in first-seen order."""
        names = {}
        for row in self.table:
            names.update(dict.fromkeys(row))
        return list(names)

    def column(self, name):
        """One column as an ndarray of shape (n_points,) (NaN where a row lacks it)."""
        if name not in self.columns:
            raise KeyError(f"column {name!r} not in the table (columns: {', '.join(self.columns)}).")
        return np.array([row.get(name, np.nan) for row in self.table])

    def to_csv(self, path):
        """Write the table as a tidy CSV, one row per run, atomically.

        Lists (e.g. ``w_star``) are written as JSON, None and missing values as empty cells,
        floats with ``repr`` (they read back to the same bits).
        """
        path = Path(path)
        cols = self.columns

        def cell(v):
            if v is None:
                return ""
            if isinstance(v, (list, dict)):
                return json.dumps(v)
            return repr(v) if isinstance(v, float) else v

        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".tmp-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(cols)
                for row in self.table:
                    writer.writerow([cell(row.get(c)) for c in cols])
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path


def _batch_key(cfg):
    return _canonical({k: v for k, v in cfg.items() if k not in PER_RUN_KEYS})


def run_sweep(configs, *, seed=0, measure=None, build=None, workers=None, threads=None, batch_size=32,
              cache_dir=None, force=False, keep_trajectories=False, scheduler=None, errors="raise",
              seed_by="index", progress=True):
    """Train every point of a sweep and return a tidy table of results.

    Parameters
    ----------
    configs : sequence of dict
        The points, e.g. from :func:`grid`; each is completed and checked by
        :func:`normalize` before anything runs.
    seed : int or None
        Root seed; point ``i`` draws from child ``i`` of ``np.random.SeedSequence(seed)``.
    measure : callable, optional
        ``measure(result) -> dict`` or ``measure(result, config) -> dict`` of scalars from a
        :class:`TrainResult`, added to each row. Runs in the workers for computed points and
        here for cached ones; must be a module-level function for worker processes.
    build : callable, optional
        ``build(config, rng) -> (FusionNet, Dataset)``; default :func:`build`. Module-level
        for worker processes.
    workers : int, optional
        Local processes; default all cores. 1 runs in this process.
    threads : int, optional
        Numba threads per worker; default ``cores // workers`` for local processes,
        numba's default in this process and on Dask workers.
    batch_size : int
        Most points per task (one task trains its points in as few ``train_many`` calls as
        their shapes allow). Smaller tasks are made when there are few points, so that every
        worker gets work.
    cache_dir : str or Path, optional
        Cache folder (created); None: no cache, nothing resumable.
    force : bool
        Recompute (and overwrite) cached points.
    keep_trajectories : bool
        Return each point's :class:`TrainResult` in ``trajectories``. Off, the memory used
        does not grow with the trajectories: results stream to the cache and only rows stay.
    scheduler : str, distributed.Client or 'dask', optional
        Run on a Dask cluster, one task per batch: a scheduler address, a connected Client, or
        'dask' (or True) for the address in ``DASK_SCHEDULER_ADDRESS``. Needs ``pip install
        linfusion[dask]`` and linfusion importable on the workers. ``workers`` is then unused;
        the cache is written by this process, so it needs no shared file system.
    errors : {'raise', 'collect'}
        A point that fails (in build, training or measure) is reported with its index and
        configuration. 'raise': no new batches start, the batches in flight finish and are
        cached, then :class:`SweepError` is raised. 'collect': the sweep goes on; the point's
        row has status 'failed' and an ``error`` column, and it is listed in ``failures``.
        A dead worker process (broken pool) always raises.
    seed_by : {'index', 'config'}
        Spawn key of a point: its position in ``configs``, or a hash of its configuration
        (then results do not depend on the order of ``configs``).
    progress : bool
        Show a tqdm progress bar on stderr (points done, rate, time left).

    Returns
    -------
    SweepResult

    Raises
    ------
    TypeError, ValueError
        A bad argument or configuration (``configs[3]: lr == -0.1, must be > 0.``).
    SweepError
        A point failed and ``errors='raise'``.

    Notes
    -----
    Worker processes are started with 'spawn': a script that runs a sweep with
    ``workers > 1`` needs the ``if __name__ == "__main__":`` guard, and ``build`` and
    ``measure`` must live in an importable module (in a notebook, use ``workers=1`` or Dask,
    which pickles functions by value). On Ctrl-C the sweep stops at once; the points
    already written to the cache are kept.

    Each cache file holds the whole recorded trajectory: about
    ``8 * (epochs / record_every) * (out_dim * D + 3)`` bytes per point.
    """
    from tqdm.auto import tqdm

    if isinstance(configs, Mapping) or isinstance(configs, (str, bytes)):
        raise TypeError(f"configs is a {type(configs).__name__}, must be a list of dicts (see grid()).")
    configs = list(configs)
    check_choice("errors", errors, ("raise", "collect"))
    check_choice("seed_by", seed_by, ("index", "config"))
    batch_size = check_int("batch_size", batch_size, lo=1)
    workers = check_int("workers", workers, lo=1, allow_none=True)
    threads = check_int("threads", threads, lo=1, allow_none=True)
    for name, fn in (("measure", measure), ("build", build)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} == {fn!r}, must be callable or None.")
    entropy = _entropy(seed)
    build_name = _callable_name(build)

    # ---- completed configurations, spawn keys, cache keys (duplicates computed once)
    norm, by_key = [], {}
    for i, c in enumerate(configs):
        try:
            cfg = normalize(c, build=build)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"configs[{i}]: {exc}") from None
        sk = _spawn_key(cfg, i, seed_by)
        key = _key_of(cfg, entropy, sk, build_name)
        norm.append((cfg, sk, key))
        by_key.setdefault(key, []).append(i)
    n = len(configs)
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(cache_dir)
    rows = [None] * n
    trajs = [None] * n if keep_trajectories else None
    failures = []
    counts = {"computed": 0, "cached": 0}

    def fill(key, measured, result=None):
        for i in by_key[key]:
            cfg = norm[i][0]
            rows[i] = {"index": i, "key": key, "seed": entropy, **cfg, **measured}
            if keep_trajectories:
                trajs[i] = result

    def fail(key, info):
        for i in by_key[key]:
            failures.append({"index": i, "config": norm[i][0], "key": key, "stage": info["stage"],
                             "error": info["error"], "traceback": info["traceback"],
                             "exception": info.get("exception")})
        fill(key, {"status": "failed", "error": info["error"]})

    bar = tqdm(total=n, desc="sweep", unit="pt", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        # ---- cached points: read, check, measure here
        todo = []
        for key, idxs in by_key.items():
            cfg = norm[idxs[0]][0]
            got = _load(cache_dir, key) if cache_dir is not None and not force else None
            if got is None:
                todo.append(key)
                continue
            result = got[0]
            try:
                measured = _measure(result, cfg, measure)
            except Exception as exc:
                fail(key, _error_info(exc, "measure"))
                if errors == "raise":
                    _raise(failures, cache_dir)
            else:
                fill(key, measured, result)
            counts["cached"] += len(idxs)
            bar.update(len(idxs))
        # ---- the rest: batches of points that can share train_many calls
        _compute(todo, norm, by_key, entropy, build, measure, workers, threads, batch_size, cache_dir,
                 keep_trajectories, scheduler, errors, bar, fill, fail, counts)
    finally:
        bar.close()
    if failures and (errors == "raise" or counts.get("broken")):
        _raise(failures, cache_dir)
    return SweepResult(table=rows, trajectories=trajs, n_computed=counts["computed"],
                       n_cached=counts["cached"], failures=failures, seed=entropy)


def _raise(failures, cache_dir):
    first = failures[0]
    others = len({f["index"] for f in failures}) - 1
    where = f"; finished points are in the cache {cache_dir}" if cache_dir is not None else ""
    head = f"point {first['index']} failed in {first['stage']}"
    if first["stage"] == "worker":      # the task was lost as a whole: name every point in it
        lost = sorted({f["index"] for f in failures if f["stage"] == "worker"})
        head = f"a worker died or lost the task while it ran points {lost}; point {first['index']}"
    msg = (f"{head}: {first['error']}\n"
           f"config: {_canonical(first['config'])}\n"
           f"({others} other point(s) failed{where})\n{first['traceback']}")
    raise SweepError(msg, index=first["index"], config=first["config"], failures=failures) \
        from first.get("exception")


def _compute(todo, norm, by_key, entropy, build_fn, measure, workers, threads, batch_size, cache_dir,
             keep_trajectories, scheduler, errors, bar, fill, fail, counts):
    if not todo:
        return
    cores = _cores()
    if scheduler is not None:
        ex = _Dask(scheduler)
        task_threads, inner = threads, 1
    else:
        n_proc = workers if workers is not None else cores
        if n_proc == 1 or len(todo) == 1:
            ex = _Serial()
            task_threads, inner = threads, threads or cores
        else:
            # no more processes than there can be tasks
            n_proc = min(n_proc, len(todo))
            task_threads = threads or max(1, cores // n_proc)
            for name, fn in (("build", build_fn), ("measure", measure)):
                try:
                    pickle.dumps(fn)
                except Exception as exc:
                    raise TypeError(f"{name} == {fn!r} cannot be sent to worker processes ({exc}); define it "
                                    "at module level in an importable module, or pass workers=1.") from None
            ex = _Pool(n_proc)
            inner = task_threads
    # Tasks: group by everything but per-run values, then cut so that every slot gets work.
    groups = {}
    for key in todo:
        groups.setdefault(_batch_key(norm[by_key[key][0]][0]), []).append(key)
    per = min(batch_size, max(inner, -(-len(todo) // (4 * ex.slots))))
    tasks = deque()
    for keys in groups.values():
        for s in range(0, len(keys), per):
            items = [{"key": k, "config": norm[by_key[k][0]][0], "spawn_key": norm[by_key[k][0]][1]}
                     for k in keys[s:s + per]]
            tasks.append({"items": items, "entropy": entropy, "build": build_fn, "measure": measure,
                          "want_arrays": cache_dir is not None or keep_trajectories,
                          "threads": task_threads})
    window = 2 * ex.slots
    pending = {}
    stop = False
    shown, hidden = set(), set()
    try:
        while tasks or pending:
            while tasks and not stop and len(pending) < window:
                try:
                    pending[ex.submit(tasks[0])] = tasks[0]
                except BrokenProcessPool:  # a worker died; its task's future reports it below
                    counts["broken"] = True
                    stop = True
                    break
                tasks.popleft()
            if not pending:
                break
            for f in ex.wait(set(pending)):
                task = pending.pop(f)
                if f.cancelled():
                    continue
                try:
                    out = f.result()
                except Exception as exc:   # the whole task died (dead worker, lost connection)
                    info = _error_info(exc, "worker")
                    for item in task["items"]:
                        fail(item["key"], info)
                    if isinstance(exc, BrokenProcessPool):
                        counts["broken"] = True
                    if counts.get("broken") or errors == "raise":
                        stop = True
                    bar.update(sum(len(by_key[it["key"]]) for it in task["items"]))
                    continue
                for o in out["outcomes"]:
                    key = o["key"]
                    result = None
                    if o["arrays"] is not None:
                        if cache_dir is not None:
                            _save(cache_dir, key, o["arrays"], {
                                **o["meta"], "config": norm[by_key[key][0]][0], "seed": entropy,
                                "spawn_key": norm[by_key[key][0]][1], "build": _callable_name(build_fn),
                                "version": _version()})
                        if keep_trajectories:
                            result = _result_from(o["arrays"], o["meta"])
                    if o["ok"]:
                        fill(key, o["row"], result)
                        counts["computed"] += len(by_key[key])
                    else:
                        fail(key, o)
                        if errors == "raise":
                            stop = True
                    bar.update(len(by_key[key]))
                for entry in out["warnings"]:      # a few distinct ones; the table has the rest
                    entry = tuple(entry)
                    if entry in shown:
                        continue
                    if len(shown) < _MAX_WARNINGS:
                        shown.add(entry)
                        cat = RuntimeWarning if entry[0] == "RuntimeWarning" else UserWarning
                        warnings.warn(f"from training: {entry[1]}", cat, stacklevel=3)
                    else:
                        hidden.add(entry)
            if stop:
                for f in list(pending):
                    if ex.cancel(f):
                        del pending[f]
        if hidden:
            warnings.warn(f"from training: {len(hidden)} more distinct warning(s) not shown; "
                          "see the status column of the table.", RuntimeWarning, stacklevel=3)
    except BaseException:
        ex.close(abort=True)
        raise
    ex.close()
