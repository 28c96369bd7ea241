"""Configurations of a sweep: defaults, the grid, completion and checks, the default build."""
from __future__ import annotations

import itertools
import json
import math
import numbers
from collections.abc import Mapping

import numpy as np

from .. import data as _data
from ..architecture import INIT_SCHEMES, FusionNet, default_scale
from .._engine import PATHS
from ..training import LOSSES
from ..validation import check_choice, check_int, check_scalar

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
#: Columns every row of a sweep's table has besides the configuration; configuration keys
#: and ``measure``'s keys may not reuse them (nor the prefix ``w_tot_``).
RESERVED_COLUMNS = ("index", "key", "seed", "status", "note", "error", "diverged", "final_epoch",
                    "final_loss", "final_eg")

_ARCHS = ("shallow", "early", "late", "deep")


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
    cfg["path"] = check_choice("path", cfg["path"], ("auto",) + PATHS)
    cfg["init"] = check_choice("init", cfg["init"], INIT_SCHEMES)
    if cfg["scale"] is None:
        cfg["scale"] = default_scale(cfg["init"])
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
    if cfg.get("path") == "gram" and not (linear and out["depth"] == 2):
        raise ValueError(f"path == 'gram', must be 'moment', 'sample' or 'auto' for this point (depth "
                         f"{out['depth']}, slope {out['slope']}, bias {out['bias']}): the Gram path needs a "
                         "two-layer linear net, no bias and loss 'mse'.")
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
        if key in RESERVED_COLUMNS or key.startswith("w_tot_"):
            raise ValueError(f"config has key {key!r}, a column the sweep fills itself "
                             f"({', '.join(RESERVED_COLUMNS)}, w_tot_*); rename it (the root seed is "
                             "run_sweep's seed=).")
    cfg = {key: _plain(key, v) for key, v in config.items()}
    out = {key: cfg.get(key, default) for key, default in TRAIN_DEFAULTS.items()}
    _normalize_train(out)
    if build is None or build is default_build:
        out.update(_normalize_default(cfg))
    else:
        out.update({k: v for k, v in cfg.items() if k not in out})
    seen = {}
    for key, value in out.items():
        for col, _ in flat_items(key, value):
            if col in RESERVED_COLUMNS or col.startswith("w_tot_"):
                raise ValueError(f"config key {key!r} gives the table column {col!r}, which the sweep fills "
                                 "itself; rename it.")
            if col in seen:
                raise ValueError(f"config keys {seen[col]!r} and {key!r} both give the table column {col!r} "
                                 f"(lists become one column per entry, {key}_0, {key}_1, ...); rename one.")
            seen[col] = key
    return dict(sorted(out.items()))


def flat_items(name, value):
    """(column, value) pairs of one value: lists and dicts give one column per entry.

    ``flat_items('w_star', [1.0, 2.0])`` gives ``('w_star_0', 1.0), ('w_star_1', 2.0)``.
    """
    if isinstance(value, (list, tuple)):
        for i, x in enumerate(value):
            yield from flat_items(f"{name}_{i}", x)
    elif isinstance(value, Mapping):
        for k, x in value.items():
            yield from flat_items(f"{name}_{k}", x)
    else:
        yield name, value


def flat_names(cfg):
    """The table columns of a completed configuration."""
    return [col for key, value in cfg.items() for col, _ in flat_items(key, value)]


# ---------------------------------------------------------------------- the default build
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


default_build = build     # the name stays bound when a caller's parameter shadows `build`
