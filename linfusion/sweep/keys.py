"""Seeds and cache keys of a sweep's points.

A point's key is the sha256 of its completed configuration, the root seed, its spawn key
and a fingerprint of the code that produced it: the source of every ``.py`` file of the
``linfusion`` package (hashed once per process), the build function (its source and its
compiled code, defaults and closure values, so that an edit to its body changes the key even
when the source file on disk is not re-read), and the versions of Python, NumPy and Numba.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import numbers
import platform
import time
import types
from importlib import metadata
from pathlib import Path

import numpy as np

from ..validation import check_choice, check_int
from .config import _canonical, _plain, default_build, normalize

_PACKAGE = None        # (digest, seconds it took), computed once per process


def entropy_of(seed):
    """The root seed as a non-negative int (drawn from the OS when ``seed`` is None)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed == {seed!r}, must be a non-negative integer or None.")
    return int(seed)


def spawn_key_of(cfg, index, seed_by):
    """The spawn key of a point: its index, or 4 words of the hash of its configuration."""
    if seed_by == "index":
        return [int(index)]
    digest = hashlib.sha256(_canonical(cfg).encode()).digest()
    return [int.from_bytes(digest[4 * j:4 * j + 4], "little") for j in range(4)]


def seeds_of(entropy, spawn_key):
    """The data and initial-weight seed sequences of a point (children 0 and 1 of its own)."""
    return (np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key) + (0,)),
            np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key) + (1,)))


# ---------------------------------------------------------------------- code fingerprints
def package_digest():
    """sha256 of the source files of the installed ``linfusion`` package (once per process)."""
    global _PACKAGE
    if _PACKAGE is None:
        start = time.perf_counter()
        root = Path(__file__).resolve().parent.parent
        h = hashlib.sha256()
        for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
            text = path.read_bytes()
            h.update(f"{path.relative_to(root).as_posix()}\0{len(text)}\0".encode())
            h.update(text)
        _PACKAGE = (h.hexdigest(), time.perf_counter() - start)
    return _PACKAGE[0]


@functools.lru_cache(maxsize=1)
def _versions():
    out = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        out["numba"] = metadata.version("numba")
    except metadata.PackageNotFoundError:
        out["numba"] = None
    return out


def _const(c):
    """A text for a constant of a code object that does not depend on the process."""
    if isinstance(c, types.CodeType):
        return _code_digest(c)
    if isinstance(c, (tuple, list)):
        return "(" + ",".join(_const(x) for x in c) + ")"
    if isinstance(c, (frozenset, set)):            # iteration order follows the string hash seed
        return "{" + ",".join(sorted(_const(x) for x in c)) + "}"
    return f"{type(c).__name__}:{c!r}"


def _code_digest(code):
    h = hashlib.sha256(code.co_code)
    for part in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        h.update(repr(part).encode())
    h.update(_const(code.co_consts).encode())
    return h.hexdigest()


def _value(v, depth=0):
    """A process-independent text for an argument bound into a callable."""
    if callable(v) and not isinstance(v, type):
        return callable_name(v) if depth > 4 else callable_digest(v, _depth=depth + 1)
    try:
        return _canonical(_plain("value", v))
    except (TypeError, ValueError):
        text = repr(v)
        return type(v).__qualname__ if " at 0x" in text else f"{type(v).__qualname__}:{text}"


def callable_name(fn):
    """``module.qualname`` of a build function (through ``functools.partial``)."""
    fn = fn if fn is not None else default_build
    while isinstance(fn, functools.partial):
        fn = fn.func
    mod = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{mod}.{name}"


def callable_digest(fn, *, _depth=0):
    """sha256 of what a callable does: its source, compiled code, defaults and bound values.

    ``functools.partial`` objects contribute their arguments; bound methods their function;
    other callable objects their class's source and ``__call__``. Code it calls is not
    included (only the ``linfusion`` package is hashed as a whole).
    """
    h = hashlib.sha256()
    while isinstance(fn, functools.partial):
        h.update(("partial" + _value(list(fn.args), _depth) + _value(dict(fn.keywords), _depth)).encode())
        fn = fn.func
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    h.update(callable_name(fn).encode())
    target = fn if isinstance(fn, (types.FunctionType, type)) else type(fn)
    try:
        h.update(inspect.getsource(target).encode())
    except (OSError, TypeError):
        pass
    func = target if isinstance(target, types.FunctionType) else getattr(target, "__call__", None)
    code = getattr(func, "__code__", None)
    if code is not None:
        h.update(_code_digest(code).encode())
        h.update(_value(list(func.__defaults__ or ()), _depth).encode())
        h.update(_value(dict(func.__kwdefaults__ or {}), _depth).encode())
        for cell in func.__closure__ or ():
            try:
                h.update(_value(cell.cell_contents, _depth).encode())
            except ValueError:                       # an empty cell
                h.update(b"<empty>")
    return h.hexdigest()


def code_fingerprint(build):
    """The code part of every key of a sweep with this build function."""
    return {"package": package_digest(), "build": callable_name(build),
            "build_code": callable_digest(build if build is not None else default_build),
            "versions": _versions()}


def key_of(cfg, entropy, spawn_key, code):
    payload = {"config": cfg, "seed": entropy, "spawn_key": list(spawn_key), "code": code}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def point_key(config, *, seed=0, index=0, seed_by="index", build=None):
    """The sha256 cache key of one point.

    It covers every key and value of the completed configuration (:func:`normalize`, so key
    order and ``2`` vs ``2.0`` do not matter), the seed and the point's spawn key (its
    index, or its configuration with ``seed_by='config'``), and the code: a hash of the
    ``linfusion`` package's source files, the build function's name, source and compiled
    code (with its defaults and bound arguments), and the Python, NumPy and Numba versions.
    Helpers that the build function calls outside ``linfusion`` are not covered: pass
    ``force=True`` to :func:`run_sweep` after editing one. ``measure`` is not part of the
    key: the cache holds simulations, and measurements are recomputed on every run.

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
    return key_of(cfg, entropy_of(seed), spawn_key_of(cfg, check_int("index", index, lo=0), seed_by),
                  code_fingerprint(build))
