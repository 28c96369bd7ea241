"""The per-point cache of a sweep: one ``<key>.npz`` file per point, written atomically.

A file holds the simulation of one point (recorded trajectory, initial and final weights)
and a JSON record (``meta``: configuration, seed, spawn key, code fingerprint, status,
message, ...). Its sha256 covers the arrays *and* the record, so a changed status is caught
like a changed array. Files are written to a temporary file in the same folder and renamed
into place, with the permissions the umask gives a new file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..architecture import FusionNet
from .config import _canonical

FORMAT = 2                       # 2: the checksum covers the record
_ARRAYS = ("epochs", "loss", "w_tot", "w0")    # and "eg" (population statistics), "w" (not on the Gram path)
_RECORD = ("config", "seed", "spawn_key", "build", "code", "key")


def umask():
    """The process's umask (read without changing it where /proc allows)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write, *, suffix=""):
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it into place.

    The file gets mode ``0o666 & ~umask``, as ``open(path, 'w')`` would give it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def check_dir(path, name="cache_dir"):
    """Check that ``path`` is, or can be created as, a writable folder; nothing is created.

    Parameters
    ----------
    path : str or Path
    name : str
        The parameter named in the message (``'cache_dir'``, ``'--out'``, ...).

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        ``path`` is not a str or path.
    ValueError
        ``path`` is a file, lies under a file, or its nearest existing folder is not
        writable (permissions or a read-only file system).
    """
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise TypeError(f"{name} == {path!r}, must be a non-empty folder path (str or Path).")
    path = Path(path).expanduser()
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise ValueError(f"{name} == '{path}', must be a folder: '{probe}' is a broken symbolic link.")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"lies under the file '{probe}'"
        raise ValueError(f"{name} == '{path}', must be a folder: it {where}.")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is" if probe == path else f"would be created in '{probe}', which is"
        raise ValueError(f"{name} == '{path}' {what} not writable (permissions or a read-only file system).")
    return path


def prepare_dir(path):
    """Check, create and probe the cache folder before any work; remove stale temporaries."""
    path = check_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"cache_dir == '{path}' cannot hold files: {exc.strerror or exc}.") from None
    remove_stale_temporaries(path)
    return path


def checksum(arrays, meta):
    """sha256 of the arrays (names, dtypes, shapes, bytes) and of the record without it."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(_canonical([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    h.update(_canonical({k: v for k, v in meta.items() if k != "sha256"}).encode())
    return h.hexdigest()


def cache_path(cache_dir, key):
    return Path(cache_dir) / f"{key}.npz"


def save(cache_dir, key, arrays, meta):
    """Write one point atomically (a temporary file in the same folder, then os.replace)."""
    meta = {**meta, "format": FORMAT, "key": key, "arrays": sorted(arrays)}
    meta["sha256"] = checksum(arrays, meta)
    payload = dict(arrays)
    payload["meta"] = np.frombuffer(_canonical(meta).encode(), dtype=np.uint8)
    atomic_write(cache_path(cache_dir, key), lambda fh: np.savez(fh, **payload), suffix=".npz")


def remove_stale_temporaries(cache_dir, age=3600.0):
    """Delete temporary files that a killed sweep left (older than ``age`` seconds).

    A live writer holds its temporary file for milliseconds, so an old one is an orphan.
    """
    now = time.time()
    for tmp in Path(cache_dir).glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > age:
                tmp.unlink()


def read(path, key=None):
    """(arrays, meta) of a cache file; raises on anything missing, malformed or altered."""
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ValueError("no 'meta' record")
        meta = json.loads(bytes(z["meta"]).decode())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT}")
        if key is not None and meta.get("key") != key:
            raise ValueError(f"key {meta.get('key')!r}, expected {key}")
        names = meta.get("arrays")
        if not isinstance(names, list) or set(_ARRAYS) - set(names) or not set(names) <= set(z.files):
            raise ValueError(f"incomplete: arrays {sorted(z.files)}, record lists {names}")
        arrays = {name: z[name] for name in names}
    if checksum(arrays, meta) != meta.get("sha256"):
        raise ValueError("checksum mismatch")
    return arrays, meta


def arrays_of(result):
    """The arrays of a TrainResult that a cache file holds."""
    arrays = {"epochs": result.epochs, "loss": result.loss, "w_tot": result.w_tot_all, "w0": result.w0}
    if result.w is not None:
        arrays["w"] = result.w
    if result.eg is not None:
        arrays["eg"] = result.eg
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def meta_of(result):
    """The JSON part of a TrainResult (status, message, lr, path, network)."""
    net = result.net
    return {"status": result.status, "message": result.message, "lr": result.lr, "path": result.path,
            "net": {"in_dims": list(net.in_dims), "out_dim": net.out_dim, "width": net.width,
                    "depth": net.depth, "fuse_depth": net.fuse_depth, "slope": net.slope, "bias": net.bias}}


def result_from(arrays, meta):
    """Rebuild the TrainResult of a point from its arrays and record."""
    from ..training import TrainResult
    n = meta["net"]
    net = FusionNet(tuple(n["in_dims"]), n["out_dim"], n["width"], n["depth"], n["fuse_depth"],
                    n["slope"], n["bias"])
    wt = arrays["w_tot"]
    return TrainResult(epochs=arrays["epochs"], loss=arrays["loss"],
                       w_tot=[np.ascontiguousarray(wt[:, :, sl]) for sl in net.in_slices],
                       eg=arrays.get("eg"), w=arrays.get("w"), w0=arrays["w0"], status=meta["status"],
                       message=meta["message"], lr=float(meta["lr"]), path=meta["path"], net=net)


def load(cache_dir, key):
    """(TrainResult, meta) of a cached point, None if absent; raises if the file is bad."""
    path = cache_path(cache_dir, key)
    if not path.exists():
        return None
    arrays, meta = read(path, key)
    return result_from(arrays, meta), meta


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
        The point's configuration (``config``), ``seed``, ``spawn_key``, ``build`` (the
        build function's name), ``code`` (package and build-function hashes, versions) and
        ``key``.

    Raises
    ------
    ValueError, OSError
        When the file is unreadable, incomplete or fails its checksum.
    """
    arrays, meta = read(path)
    return result_from(arrays, meta), {k: meta.get(k) for k in _RECORD}
