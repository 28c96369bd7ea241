"""A user's data file, or a bundled example, as per-modality arrays (for :mod:`sims.diagnose`).

- ``.npz``: one array per modality plus the target. By default the target is the array ``y``
  (``--target KEY`` names another) and every other array is a modality named by its key, in the
  file's order; ``--modality NAME=key1,key2`` picks and names them instead (several keys are
  joined column-wise). Arrays of more than two dimensions are flattened per sample (images).
- ``.csv``: a header row of column names, then one numeric row per sample;
  ``--modality NAME=col1,col2`` for every modality (at least two) and ``--target COLUMN``.
- Examples bundled with scikit-learn (the optional extra ``linfusion[examples]``; no download):
  ``diabetes`` (442 patients; demographics: age, sex; body: bmi, bp; serum: s1-s6; target:
  disease progression after one year) and ``digits`` (1797 8×8 images split into their left
  and right halves, columns 0-3 and 4-7; target +1 for the digits 5-9, −1 for 0-4; pixels that
  are constant on the training split are dropped).

Every problem raises ValueError naming the option and, where there is one, the file, the
column or key, and the row.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EXAMPLES", "Source", "parse_modality", "check_path", "load_file", "load_example", "split"]

EXAMPLES = ("diabetes", "digits")
SUFFIXES = (".npz", ".csv")


@dataclass(frozen=True, eq=False)
class Source:
    """Per-modality arrays of all samples, with names, column labels and a description."""

    xs: tuple          # K arrays (n, d_k)
    y: np.ndarray      # (n,)
    names: tuple
    columns: tuple     # per modality, column labels
    description: str
    drop_constant: bool = False     # drop columns constant on the training split (digits)


def check_path(name, value):
    """Rule of ``--data``: an existing .npz or .csv file."""
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} == {value!r}, must be the path of a .npz or .csv file.")
    p = Path(value)
    if p.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{name} == {value!r}, must end in .npz or .csv.")
    if not p.is_file():
        raise ValueError(f"{name} == {value!r}, must be an existing file.")
    return value


def parse_modality(spec):
    """'NAME=col1,col2' -> (NAME, (col1, col2)); ValueError naming --modality otherwise."""
    name, sep, rest = spec.partition("=")
    cols = tuple(c.strip() for c in rest.split(",") if c.strip())
    if not sep or not name.strip() or not cols:
        raise ValueError(f"modality == {spec!r}, must be NAME=col1,col2 (a name, '=', and at least one column or "
                         "array key).")
    return name.strip(), cols


def _specs(modality):
    specs = [parse_modality(s) for s in modality]
    names = [n for n, _ in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"modality names {dup} more than once, must name every modality once.")
    used = [c for _, cols in specs for c in cols]
    twice = sorted({c for c in used if used.count(c) > 1})
    if twice:
        raise ValueError(f"modality uses {twice} in more than one place, must use every column or key once.")
    return specs


def _as_columns(key, arr):
    arr = np.asarray(arr)
    if arr.ndim == 0:
        raise ValueError(f"array {key!r} is a scalar, must have one row per sample.")
    flat = arr.reshape(arr.shape[0], -1)
    labels = [key] if arr.ndim == 1 else [f"{key}[{j}]" for j in range(flat.shape[1])]
    return flat, labels


def _load_npz(path, modality, target):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"data == {path!r} could not be read as .npz: {exc}") from None
    target = "y" if target is None else target
    listed = ", ".join(repr(k) for k in arrays) or "none"
    if target not in arrays:
        raise ValueError(f"target == {target!r}: {path} has no array of that name, must name one of its arrays "
                         f"({listed}).")
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise ValueError(f"data == {path!r}: array {k!r} has dtype {a.dtype}, must hold real numbers.")
    specs = _specs(modality) if modality else [(k, (k,)) for k in arrays if k != target]
    if len(specs) < 2:
        raise ValueError(f"data == {path!r} holds {len(specs)} modality array besides the target {target!r}, "
                         "must hold at least 2.")
    xs, cols = [], []
    for name, keys in specs:
        parts, labels = [], []
        for key in keys:
            if key == target:
                raise ValueError(f"modality == {name}={','.join(keys)}: {key!r} is the target, must not be an input.")
            if key not in arrays:
                raise ValueError(f"modality == {name}={','.join(keys)}: {path} has no array {key!r}, must use its "
                                 f"arrays ({listed}).")
            flat, lab = _as_columns(key, arrays[key])
            if parts and flat.shape[0] != parts[0].shape[0]:
                raise ValueError(f"modality == {name}={','.join(keys)}: array {key!r} has {flat.shape[0]} rows and "
                                 f"{keys[0]!r} {parts[0].shape[0]}, must have the same number of samples.")
            parts.append(flat)
            labels += lab
        xs.append(np.concatenate(parts, axis=1).astype(float))
        cols.append(tuple(labels))
    y = np.asarray(arrays[target])
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"target == {target!r}: array of shape {y.shape}, must hold one number per sample.")
    return Source(xs=tuple(xs), y=y.astype(float), names=tuple(n for n, _ in specs), columns=tuple(cols),
                  description=f"{Path(path).name}: {len(specs)} modalities ({', '.join(n for n, _ in specs)}), "
                              f"target {target!r}")


def _load_csv(path, modality, target):
    if not modality:
        raise ValueError("modality == (): a .csv needs --modality NAME=col1,col2 for every modality (at least 2).")
    if target is None:
        raise ValueError("target == None: a .csv needs --target COLUMN.")
    specs = _specs(modality)
    if len(specs) < 2:
        raise ValueError(f"modality == {modality!r}, must describe at least 2 modalities.")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"data == {path!r} could not be read as .csv: {exc}") from None
    if len(rows) < 2:
        raise ValueError(f"data == {path!r} has {len(rows)} rows, must have a header row and samples.")
    header = [h.strip() for h in rows[0]]
    index = {h: j for j, h in enumerate(header)}
    listed = ", ".join(repr(h) for h in header)
    for name, cols in specs:
        for c in cols:
            if c not in index:
                raise ValueError(f"modality == {name}={','.join(cols)}: column {c!r} is not in {path} (columns: "
                                 f"{listed}).")
            if c == target:
                raise ValueError(f"modality == {name}={','.join(cols)}: column {c!r} is the target, must not be an "
                                 "input.")
    if target not in index:
        raise ValueError(f"target == {target!r}: column not in {path} (columns: {listed}).")
    need = [c for _, cols in specs for c in cols] + [target]
    values = {c: np.empty(len(rows) - 1) for c in need}
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"data == {path!r}: row {i} has {len(row)} fields, must have {len(header)} like the "
                             "header.")
        for c in need:
            cell = row[index[c]].strip()
            try:
                values[c][i - 2] = float(cell)
            except ValueError:
                raise ValueError(f"data == {path!r}: row {i}, column {c!r} holds {cell!r}, must be a number.") from None
    xs = tuple(np.column_stack([values[c] for c in cols]) for _, cols in specs)
    return Source(xs=xs, y=values[target], names=tuple(n for n, _ in specs),
                  columns=tuple(tuple(cols) for _, cols in specs),
                  description=f"{Path(path).name}: {len(specs)} modalities ({', '.join(n for n, _ in specs)}), "
                              f"target {target!r}")


def load_file(path, modality=(), target=None):
    """The arrays of a .npz or .csv file (module docstring)."""
    if Path(path).suffix.lower() == ".npz":
        return _load_npz(path, modality, target)
    return _load_csv(path, modality, target)


def _sklearn_datasets(example):
    try:
        from sklearn import datasets
    except ImportError:
        raise ValueError(f"example == {example!r} needs scikit-learn, an optional dependency: pip install "
                         "'linfusion[examples]' (or pip install scikit-learn).") from None
    return datasets


def load_example(example):
    """A bundled example (module docstring), from scikit-learn's package data (no download)."""
    datasets = _sklearn_datasets(example)
    if example == "diabetes":
        d = datasets.load_diabetes(scaled=False)
        names = list(d.feature_names)
        groups = (("demographics", ("age", "sex")), ("body", ("bmi", "bp")),
                  ("serum", ("s1", "s2", "s3", "s4", "s5", "s6")))
        xs = tuple(d.data[:, [names.index(c) for c in cols]] for _, cols in groups)
        return Source(xs=xs, y=np.asarray(d.target, dtype=float), names=tuple(g for g, _ in groups),
                      columns=tuple(cols for _, cols in groups),
                      description="scikit-learn diabetes (442 patients): demographics (age, sex), body (bmi, bp), "
                                  "serum (s1-s6); target: disease progression after one year")
    d = datasets.load_digits()
    img = np.asarray(d.images, dtype=float)
    halves = (("left", slice(0, 4)), ("right", slice(4, 8)))
    xs = tuple(img[:, :, s].reshape(len(img), -1) for _, s in halves)
    cols = tuple(tuple(f"r{r}c{c}" for r in range(8) for c in range(s.start, s.stop)) for _, s in halves)
    y = np.where(np.asarray(d.target) >= 5, 1.0, -1.0)
    return Source(xs=xs, y=y, names=("left", "right"), columns=cols, drop_constant=True,
                  description="scikit-learn digits (1797 8×8 images) split into left and right halves; target +1 for "
                              "the digits 5-9, −1 for 0-4")


def split(source, test_fraction, rng):
    """Training and held-out arrays: (xs, y, columns, xs_test or None, y_test or None, note)."""
    n = source.y.shape[0]
    rows = [x.shape[0] for x in source.xs]
    if test_fraction == 0.0 or any(r != n for r in rows):     # mismatched rows: diagnose names them
        train, test = np.arange(n), None
    else:
        n_test = int(round(test_fraction * n))
        if n_test < 2 or n - n_test < 2:
            raise ValueError(f"test_fraction == {test_fraction!r} holds out {n_test} of {n} samples, must leave at "
                             "least 2 in each split (or be 0 for no held-out split).")
        perm = np.random.default_rng(rng).permutation(n)
        test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    xs = [x[train] if x.shape[0] == n else x for x in source.xs]
    cols = list(source.columns)
    xt = None if test is None else [x[test] for x in source.xs]
    note = ""
    if source.drop_constant:
        dropped = 0
        for k, x in enumerate(xs):
            keep = x.std(axis=0) > 0
            dropped += int(np.sum(~keep))
            xs[k] = x[:, keep]
            cols[k] = tuple(c for c, kp in zip(cols[k], keep) if kp)
            if xt is not None:
                xt[k] = xt[k][:, keep]
        note = f"; {dropped} pixels constant on the training split dropped"
    y = source.y[train] if source.y.shape[0] == n else source.y
    yt = None if test is None else source.y[test]
    return xs, y, tuple(cols), xt, yt, note
