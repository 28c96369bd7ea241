"""What runs in a worker: build, train and measure one task (a few points), and the worker's setup.

A task's points are built from their own seed sequences, grouped by actual shapes and
trained in as few :func:`linfusion.train_many` calls as the shapes and the record budget
allow. A point's own failure never raises: its outcome carries an error record instead.
"""
from __future__ import annotations

import contextlib
import ctypes
import inspect
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..architecture import FusionNet
from ..data import Dataset, Moments
from ..training import train_many
from .cache import arrays_of, meta_of
from .config import RESERVED_COLUMNS, default_build, flat_names
from .keys import seeds_of

RECORD_BUDGET = 256 * 2 ** 20       # bytes of records + stacked samples per train_many call
_TRAIN_LOCK = threading.Lock()      # one task at a time per process (see run_batch)
_PARENT_POLL = 0.5                  # seconds between two checks that the parent lives


@dataclass(frozen=True)
class Task:
    """The points of one task and what every worker needs to run them."""

    items: tuple            # ({"key", "config", "spawn_key"}, ...)
    entropy: int
    build: object           # callable or None (the default build)
    measure: object         # callable or None
    want_arrays: bool       # send back the trajectories (for the cache or the caller)
    threads: int | None     # numba threads while this task trains


# ---------------------------------------------------------------------- worker processes
def init_worker(parent_pid):
    """Initializer of a local worker process: leave Ctrl-C to the parent, die with it.

    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill the worker when its
    parent dies; everywhere a daemon thread also checks every 0.5 s that the parent is
    still the worker's parent, and exits otherwise.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)          # 1 == PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:                          # the parent died before prctl
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                     name="linfusion-sweep-parent-watch").start()


def _watch_parent(parent_pid):
    while True:
        time.sleep(_PARENT_POLL)
        if os.getppid() != parent_pid:
            os._exit(1)


# ---------------------------------------------------------------------- one point
def prepare(cfg, entropy, spawn_key, build_fn):
    """Build a point and draw its initial weights, from its own seed sequences only."""
    data_seq, init_seq = seeds_of(entropy, spawn_key)
    made = (build_fn or default_build)(dict(cfg), np.random.default_rng(data_seq))
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


def train_group(members):
    """One train_many call for prepared points of equal shapes: [(cfg, net, ds, w0, ...)]."""
    cfg, net = members[0][0], members[0][1]
    return train_many(net, [m[2] for m in members], lr=[m[0]["lr"] for m in members],
                      weight_decay=[m[0]["weight_decay"] for m in members],
                      w0=np.stack([m[3] for m in members]), epochs=cfg["epochs"], loss=cfg["loss"],
                      record_every=cfg["record_every"], tol=cfg["tol"], path=cfg["path"],
                      final_weights=cfg["path"] != "gram")


def usable(result):
    """True for a run whose numbers mean something (status 'completed' or 'converged')."""
    flag = getattr(result, "usable", None)
    return bool(flag) if flag is not None else result.status in ("completed", "converged")


def _takes_config(fn):
    try:
        inspect.signature(fn).bind(None, None)
        return True
    except (TypeError, ValueError):
        return False


def _scalar(name, v):
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(())[()]
    if isinstance(v, np.generic):
        v = v.item()
    if v is None:                       # undefined numbers are NaN (never None)
        return float("nan")
    if not isinstance(v, (bool, int, float, str)):
        raise TypeError(f"measure returned {name} == {v!r}, must be a scalar (bool, int, float, str or None).")
    return v


def measure_row(result, cfg, measure):
    """The measured part of a row: status, base quantities, then ``measure``'s scalars.

    A run that is not usable (diverged, stalled) keeps its status; its final loss, error
    and weights are NaN, ``note`` says why, and an exception that ``measure`` raises for it
    is noted instead of failing the point. For a usable run an exception propagates.
    """
    ok = usable(result)
    nan = float("nan")
    row = {"status": result.status, "note": "" if ok else result.message, "error": "",
           "diverged": bool(result.diverged), "final_epoch": int(result.final_epoch),
           "final_loss": float(result.loss[-1]) if ok else nan,
           "final_eg": float(result.eg[-1]) if (ok and result.eg is not None) else nan}
    for k, wt in enumerate(result.w_tot):
        for j, v in enumerate(np.asarray(wt[-1]).ravel()):
            row[f"w_tot_{k}_{j}"] = float(v) if ok else nan
    if measure is None:
        return row
    try:
        got = measure(result, dict(cfg)) if _takes_config(measure) else measure(result)
    except Exception as exc:
        if ok:
            raise
        row["note"] = f"{row['note']} (measure: {type(exc).__name__}: {exc})"
        return row
    if not isinstance(got, Mapping):
        raise TypeError(f"measure returned a {type(got).__name__}, must return a dict of scalars.")
    taken = set(flat_names(cfg))
    for name, v in got.items():
        if not isinstance(name, str):
            raise TypeError(f"measure returned key {name!r}, must return str keys.")
        if name in row or name in taken or name in RESERVED_COLUMNS or name.startswith("w_tot_"):
            raise ValueError(f"measure returned key {name!r}, which is already a column; rename it.")
        row[name] = _scalar(name, v)
    return row


def error_info(exc, stage):
    """A picklable record of an exception: stage, one-line error, traceback, the exception."""
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
    from .. import _engine
    old = _engine.get_threads()
    _engine.set_threads(n)
    try:
        yield
    finally:
        _engine.set_threads(old)


def _failed(item, info):
    return {"key": item["key"], "ok": False, "arrays": None, "meta": None, "row": None, **info}


def run_batch(task):
    """Build, train and measure the points of one task (in a worker, or in this process).

    Returns ``{"outcomes": [...], "warnings": [(category name, message), ...]}``, one
    outcome per point with its arrays (when wanted), record and row, or an error record.
    Runs under a process-wide lock: numba's workqueue layer does not allow concurrent
    parallel kernels, and ``warnings.catch_warnings`` is process state.
    """
    outcomes = []
    with _TRAIN_LOCK, warnings.catch_warnings(record=True) as caught, _numba_threads(task.threads):
        warnings.simplefilter("always")
        groups = {}
        for item in task.items:
            cfg = item["config"]
            try:
                net, ds, w0 = prepare(cfg, task.entropy, item["spawn_key"], task.build)
            except Exception as exc:
                outcomes.append(_failed(item, error_info(exc, "build")))
                continue
            groups.setdefault(_shape_key(net, ds, cfg), []).append((cfg, net, ds, w0, item))
        for members in groups.values():
            per = max(1, RECORD_BUDGET // max(1, _bytes_per_run(members[0][1], members[0][2], members[0][0])))
            for start in range(0, len(members), per):
                chunk = members[start:start + per]
                try:
                    results = train_group(chunk)
                except Exception as exc:
                    info = error_info(exc, "train")
                    outcomes.extend(_failed(m[4], info) for m in chunk)
                    continue
                for (cfg, _, _, _, item), res in zip(chunk, results):
                    out = {"key": item["key"], "arrays": arrays_of(res) if task.want_arrays else None,
                           "meta": meta_of(res)}
                    try:
                        out.update(ok=True, row=measure_row(res, cfg, task.measure))
                    except Exception as exc:
                        out.update(ok=False, row=None, **error_info(exc, "measure"))
                    outcomes.append(out)
    seen = []
    for w in caught:
        entry = (type(w.message).__name__, str(w.message))
        if entry not in seen:
            seen.append(entry)
    return {"outcomes": outcomes, "warnings": seen}
