"""Checks and preprocessing of a user's data for :func:`theory.diagnose` (private).

Every problem is reported before any work, as a ValueError or TypeError that names the input
(the modality by its index and name, the column by its label), its value and the rule:
mismatched rows, a wrong number of columns in the held-out split, a constant or one-class
target, labels that are not ±1 for classification, a constant input column that centring
would zero, a singular input covariance (per modality, then jointly), and a modality whose
inputs carry no correlation with the target at all.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from linfusion.validation import check_array, check_choice

__all__ = []

TASKS = ("auto", "regression", "classification")
PREPROCESS = ("standardize", "center", "none")

# An eigenvalue below this fraction of the largest one makes a covariance singular for the
# diagnosis (its formulas invert each modality's block and the whole matrix).
SINGULAR_RTOL = 1e-10
# A modality whose correlation with the target, relative to sqrt(<y²> tr Σ_m), is below this
# carries no signal (zero to rounding).
NO_SIGNAL_RTOL = 1e-10


@dataclass(frozen=True, eq=False)
class Prepared:
    """Checked, preprocessed arrays and what was done to them."""

    xs: tuple              # K arrays (n, d_k)
    y: np.ndarray          # (n,)
    xs_test: tuple | None
    y_test: np.ndarray | None
    names: tuple
    columns: tuple         # per modality, a tuple of column labels
    task: str              # 'regression' or 'classification'
    preprocess: str
    description: str       # what was done, in words


def _label(names, k):
    return f"xs[{k}] ({names[k]!r})"


def _names(names, n_mod):
    if names is None:
        return tuple(f"modality {k}" for k in range(n_mod))
    if isinstance(names, str) or not hasattr(names, "__len__"):
        raise TypeError(f"names == {names!r}, must be a sequence of {n_mod} strings (one per modality).")
    names = tuple(names)
    if len(names) != n_mod:
        raise ValueError(f"names has {len(names)} entries, must have {n_mod} (one per modality in xs).")
    for k, nm in enumerate(names):
        if not isinstance(nm, str) or not nm.strip():
            raise TypeError(f"names[{k}] == {nm!r}, must be a non-empty string.")
    if len(set(names)) != n_mod:
        raise ValueError(f"names == {names}, must be distinct.")
    return names


def _matrix(name, value):
    arr = check_array(name, value, ndim=(1, 2))
    return arr[:, None] if arr.ndim == 1 else arr


def _target(name, value):
    arr = check_array(name, value, ndim=(1, 2))
    if arr.ndim == 2:
        if arr.shape[1] != 1:
            raise ValueError(f"{name} has shape {arr.shape}, must be one target per sample (shape (n,) or "
                             "(n, 1)): the theory is for a scalar output.")
        arr = arr[:, 0]
    return np.ascontiguousarray(arr)


def _columns(columns, dims, names):
    if columns is None:
        return tuple(tuple(f"column {j}" for j in range(d)) for d in dims)
    if isinstance(columns, str) or not hasattr(columns, "__len__") or len(columns) != len(dims):
        raise ValueError(f"columns must be a sequence of {len(dims)} sequences of labels (one per modality).")
    out = []
    for k, (cols, d) in enumerate(zip(columns, dims)):
        cols = tuple(str(c) for c in cols)
        if len(cols) != d:
            raise ValueError(f"columns[{k}] has {len(cols)} labels, must have {d} (the columns of "
                             f"{_label(names, k)}).")
        out.append(cols)
    return tuple(out)


def _xs(name, xs, names=None):
    if isinstance(xs, np.ndarray) or not isinstance(xs, (list, tuple)):
        raise TypeError(f"{name} is a {type(xs).__name__}, must be a list or tuple of arrays, one per modality "
                        "(n_samples, d_k).")
    if len(xs) < 2:
        raise ValueError(f"{name} has {len(xs)} modality, must have at least 2.")
    return [_matrix(f"{name}[{k}]" + (f" ({names[k]!r})" if names else ""), x) for k, x in enumerate(xs)]


def _rows(xs, y, names, xname, yname):
    n = y.shape[0]
    for k, x in enumerate(xs):
        if x.shape[0] != n:
            raise ValueError(f"{xname}[{k}] ({names[k]!r}) has {x.shape[0]} rows, must have as many as "
                             f"{yname} ({n}): one row per sample in every modality.")


def _task(y, task):
    check_choice("task", task, TASKS)
    values = np.unique(y)
    pm_one = values.size == 2 and values[0] == -1.0 and values[1] == 1.0
    if task == "auto":
        return "classification" if pm_one else "regression"
    if task == "classification" and not pm_one:
        shown = ", ".join(f"{v:g}" for v in values[:4]) + (", ..." if values.size > 4 else "")
        hint = " (for 0/1 labels pass 2·y − 1)" if values.size == 2 and values[0] == 0 and values[1] == 1 else ""
        raise ValueError(f"y has the values {{{shown}}}, must be exactly -1 and +1 for task 'classification'"
                         f"{hint}.")
    return task


def prepare(xs, y, *, names=None, columns=None, xs_test=None, y_test=None, task="auto",
            preprocess="standardize"):
    """Check the inputs and preprocess them with the training statistics; see the module docstring."""
    check_choice("preprocess", preprocess, PREPROCESS)
    check_choice("task", task, TASKS)
    raw = _xs("xs", xs)
    names = _names(names, len(raw))
    raw = _xs("xs", xs, names)
    y = _target("y", y)
    _rows(raw, y, names, "xs", "y")
    n = y.shape[0]
    if n < 2:
        raise ValueError(f"y has {n} sample, must have at least 2.")
    dims = tuple(x.shape[1] for x in raw)
    cols = _columns(columns, dims, names)
    if np.all(y == y[0]):
        raise ValueError(f"y is constant (every one of its {n} values is {y[0]:g}), must vary: there is "
                         "nothing to learn.")
    task = _task(y, task)
    test = xs_test is not None or y_test is not None
    if test:
        if xs_test is None or y_test is None:
            raise ValueError("xs_test and y_test must be given together (both or neither).")
        t_xs = _xs("xs_test", xs_test, names if len(xs_test) == len(raw) else None)
        if len(t_xs) != len(raw):
            raise ValueError(f"xs_test has {len(t_xs)} modalities, must have {len(raw)} like xs.")
        t_y = _target("y_test", y_test)
        _rows(t_xs, t_y, names, "xs_test", "y_test")
        for k, (a, b) in enumerate(zip(raw, t_xs)):
            if a.shape[1] != b.shape[1]:
                raise ValueError(f"xs_test[{k}] ({names[k]!r}) has {b.shape[1]} columns, must have {a.shape[1]} "
                                 f"like xs[{k}].")
        if task == "classification" and not np.all(np.isin(t_y, (-1.0, 1.0))):
            raise ValueError("y_test has values other than -1 and +1, must hold ±1 labels like y.")
    xs_p, t_p = [], []
    for k, x in enumerate(raw):
        if preprocess == "none":
            mean, std = np.zeros(x.shape[1]), np.ones(x.shape[1])
        else:
            mean = x.mean(axis=0)
            spread = x.std(axis=0)
            scale = np.maximum(np.max(np.abs(x), axis=0), 1e-300)
            const = np.flatnonzero(spread <= 1e-12 * scale)
            if const.size:
                listed = ", ".join(repr(cols[k][j]) for j in const[:5]) + (", ..." if const.size > 5 else "")
                raise ValueError(f"{_label(names, k)} has constant columns ({listed}), must not with preprocess "
                                 f"{preprocess!r}: centring makes them zero, so the input covariance is singular; "
                                 "drop them.")
            std = spread if preprocess == "standardize" else np.ones(x.shape[1])
        xs_p.append((x - mean) / std)
        if test:
            t_p.append((t_xs[k] - mean) / std)
    if task == "regression" and preprocess != "none":
        y_mean = y.mean()
        y_std = y.std() if preprocess == "standardize" else 1.0
    else:
        y_mean, y_std = 0.0, 1.0
    y_p = (y - y_mean) / y_std
    y_t = (t_y - y_mean) / y_std if test else None
    what = {"standardize": "each input column centred and scaled to unit variance",
            "center": "each input column centred",
            "none": "inputs used as given (uncentred second moments)"}[preprocess]
    if task == "regression":
        what += {"standardize": "; the target centred and scaled to unit variance",
                 "center": "; the target centred", "none": "; the target as given"}[preprocess]
    else:
        what += "; the ±1 labels as given"
    if test and preprocess != "none":
        what += " (means and scales of the training split, applied to the held-out split)"
    return Prepared(xs=tuple(xs_p), y=y_p, xs_test=tuple(t_p) if test else None, y_test=y_t, names=names,
                    columns=cols, task=task, preprocess=preprocess, description=what)


def _null_columns(vec, labels, top=3):
    order = np.argsort(-np.abs(vec))[:top]
    return ", ".join(labels[j] for j in order if abs(vec[j]) > 0.05)


def check_covariances(sigma, syx, syy, dims, names, columns, n):
    """Raise for a singular covariance (each modality's block, then all together) or a modality without signal."""
    edges = np.concatenate([[0], np.cumsum(dims)])
    for k, d in enumerate(dims):
        s = slice(int(edges[k]), int(edges[k + 1]))
        block = sigma[s, s]
        eig, vec = np.linalg.eigh(block)
        if eig[0] <= SINGULAR_RTOL * max(eig[-1], 1e-300):
            rank = int(np.sum(eig > SINGULAR_RTOL * max(eig[-1], 1e-300)))
            why = (f"fewer samples ({n}) than its {d} inputs" if n <= d else
                   f"some of its columns are constant or combinations of others (near-null direction along "
                   f"{_null_columns(vec[:, 0], columns[k]) or 'several columns'})")
            raise ValueError(f"{_label(names, k)} has a singular input covariance (rank {rank} < {d} columns, "
                             f"smallest eigenvalue {eig[0]:.3g}, largest {eig[-1]:.3g}): {why}. The diagnosis "
                             "inverts it; drop or merge the redundant columns.")
    eig, vec = np.linalg.eigh(sigma)
    if eig[0] <= SINGULAR_RTOL * max(eig[-1], 1e-300):
        labels = [f"{names[k]}:{c}" for k in range(len(dims)) for c in columns[k]]
        total = int(edges[-1])
        why = (f"fewer samples ({n}) than inputs ({total})" if n <= total else
               f"inputs of different modalities are combinations of each other (near-null direction along "
               f"{_null_columns(vec[:, 0], labels) or 'several columns'})")
        raise ValueError(f"xs has a singular joint input covariance (smallest eigenvalue {eig[0]:.3g}, largest "
                         f"{eig[-1]:.3g}): {why}. The diagnosis needs every fixed point to be unique; drop the "
                         "redundant columns.")
    for k, d in enumerate(dims):
        s = slice(int(edges[k]), int(edges[k + 1]))
        scale = np.sqrt(max(syy * float(np.trace(sigma[s, s])), 1e-300))
        corr = float(np.linalg.norm(syx[:, s]))
        if corr <= NO_SIGNAL_RTOL * scale:
            raise ValueError(f"{_label(names, k)} has no signal: its correlation with the target ‖Σyx‖ = "
                             f"{corr:.3g} is zero to rounding, must be > 0. A modality without correlation never "
                             "grows from a small init and has no learning time; leave it out.")


def check_int_or_none(name, value, lo):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} == {value!r}, must be an integer or None.")
    if value < lo:
        raise ValueError(f"{name} == {value}, must be >= {lo}.")
    return int(value)
