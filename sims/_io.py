"""Saving and loading an experiment's results.

Every experiment writes, under its output folder (``--out``, default ``results/<name>/``):

- ``<name>.<fmt>`` for each figure format (png, pdf, svg);
- ``<name>.npz``: the arrays behind the figure;
- ``<name>.json``: the configuration, the ``python -m`` command that reproduces it, the git
  commit when run from a checkout, the versions of every package, and the run's summary;
- ``<name>.csv`` (sweeps): a tidy table, one row per run, units in the column names, NaN
  where a quantity is undefined, one value per cell.

The files of one run are written as a set: all are rendered into a temporary folder beside
the output folder and renamed into place together, so a failure leaves the previous set
untouched. Files honour the umask. :func:`load` reads any of them back.
"""
from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["check_folder", "write_set", "figure_bytes", "npz_bytes", "csv_text", "json_text", "provenance",
           "versions", "git_commit", "load"]

FORMATS = ("png", "pdf", "svg")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- checks before any work
def check_folder(path, option="--out"):
    """Check that ``path`` is, or can be created as, a writable folder; ValueError otherwise.

    Called before any training, so that a bad path costs nothing.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a file, must be a folder.")
    probe = p
    while not probe.exists():
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{option} {str(path)!r} lies under the file {str(probe)!r}, must be a folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(path)!r}: {str(probe)!r} is not writable.")
    return p


# ---------------------------------------------------------------------- the set of files
def write_set(out, files):
    """Write ``files`` (name -> bytes or str) into folder ``out`` as one set.

    Everything is written to a temporary folder beside ``out`` first; only when all files
    exist are they renamed into place (same file system, one ``os.replace`` each). Returns
    the final paths.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    mode = 0o666 & ~_umask()
    try:
        for name, data in files.items():
            target = tmp / name
            with open(target, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
            os.chmod(target, mode)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in files:
            os.replace(tmp / name, out / name)
            written.append(out / name)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def figure_bytes(fig, fmt):
    """The figure rendered in one format (png, pdf or svg)."""
    buf = io.BytesIO()
    meta = {"Creator": "linfusion"} if fmt in ("pdf", "svg") else {"Software": "linfusion"}
    if fmt == "pdf":
        meta["CreationDate"] = None            # reproducible bytes
    if fmt == "svg":
        meta["Date"] = None
    fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


def npz_bytes(arrays):
    """Arrays (name -> array_like) as a compressed ``.npz``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _cell(v):
    if v is None:
        return "nan"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return "nan" if math.isnan(v) else repr(float(v))
    if isinstance(v, np.integer):
        return str(int(v))
    if isinstance(v, (list, tuple, dict, np.ndarray)):
        raise TypeError(f"table cell {v!r} is not a scalar; give each entry its own column.")
    return str(v)


def csv_text(rows):
    """A tidy CSV of ``rows`` (list of dicts; columns in first-seen order; missing cells NaN)."""
    cols = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in cols])
    return buf.getvalue()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_text(doc):
    """A JSON document (numpy values converted, NaN as null)."""
    return json.dumps(_jsonable(doc), indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------- provenance
def versions():
    """Versions of Python and of every package the results depend on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("linfusion", "numpy", "scipy", "numba", "matplotlib"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit():
    """The commit of the checkout the toolkit runs from (with ``-dirty`` if modified), or None."""
    here = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(module, cfg, argv=None):
    """What reproduces a run: its command, configuration, commit, versions and time."""
    return {"experiment": module, "command": cfg.command(module),
            "argv": list(sys.argv[1:] if argv is None else argv), "config": cfg.to_dict(),
            "git_commit": git_commit(), "versions": versions(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# ---------------------------------------------------------------------- loading
def load(path):
    """Load what an experiment wrote.

    Parameters
    ----------
    path : str or Path
        A ``.npz`` (returns a dict of arrays), ``.json`` (the provenance and summary),
        ``.csv`` (a pandas DataFrame when pandas is installed, else a dict of column
        arrays), or an output folder / file stem (returns a dict with keys ``arrays``,
        ``config`` and ``table`` for whichever exist).
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".csv":
        return _read_csv(path)
    if path.is_dir():
        path = path / path.name
    found = {}
    for key, suffix in (("arrays", ".npz"), ("config", ".json"), ("table", ".csv")):
        p = path.with_suffix(suffix)
        if p.exists():
            found[key] = load(p)
    if not found:
        raise FileNotFoundError(f"no results at {path} (.npz, .json or .csv)")
    return found


def _read_csv(path):
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        return pd.read_csv(path)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    cols = {}
    for j, name in enumerate(head):
        values = [r[j] for r in body]
        for conv in (int, float):
            try:
                cols[name] = np.array([conv(v) for v in values])
                break
            except ValueError:
                continue
        else:
            if set(values) <= {"True", "False"}:
                cols[name] = np.array([v == "True" for v in values])
            else:
                cols[name] = np.array(values, dtype=object)
    return cols
