"""The result of a sweep: a tidy table, and the trajectories when they were kept."""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache import atomic_write
from .config import flat_items


def _flat_row(row):
    out = {}
    for key, value in row.items():
        for col, v in flat_items(key, value):
            if col in out:
                raise ValueError(f"the table column {col!r} arises twice (from {key!r}); rename a "
                                 "configuration key or a measured quantity.")
            out[col] = v
    return out


def _cell(v):
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else v


@dataclass(repr=False)
class SweepResult:
    """The results of a sweep, one row per point in the order of the sweep's list.

    Attributes
    ----------
    table : list of dict
        Row ``i``: ``index``, ``key`` (cache key), ``seed`` (the root seed), the point's
        completed configuration, then ``status`` ('completed', 'converged', 'diverged',
        'stalled', or 'failed' for an exception), ``note`` (why a row's measurements are
        NaN), ``error`` (the exception of a failed point), ``diverged``, ``final_epoch``,
        ``final_loss``, ``final_eg`` (NaN without population statistics), the final
        end-to-end weights ``w_tot_{k}_{j}`` (modality k, flattened entry j of its
        (out_dim, d_k) block), and the scalars ``measure`` returned. Rows of runs that are
        not usable (diverged, stalled) and of failed points have NaN measurements.
    trajectories : list of TrainResult or None
        With ``keep_trajectories=True``: each point's run, None for a failed point.
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

    def __repr__(self):
        status = Counter(row.get("status", "?") for row in self.table)
        parts = ", ".join(f"{n} {s}" for s, n in sorted(status.items(), key=lambda kv: -kv[1]))
        kept = "trajectories kept" if self.trajectories is not None else "no trajectories"
        return (f"SweepResult({len(self.table)} points: {parts or 'none'}; {self.n_computed} computed, "
                f"{self.n_cached} cached; {len(self.columns)} columns; seed {self.seed}; {kept})")

    @property
    def columns(self):
        """Column names of ``table`` in first-seen order (list values are one column)."""
        names = {}
        for row in self.table:
            names.update(dict.fromkeys(row))
        return list(names)

    def column(self, name):
        """One column of ``table`` as an ndarray of shape (n_points, ...) (NaN where a row lacks it)."""
        if name not in self.columns:
            raise KeyError(f"column {name!r} not in the table (columns: {', '.join(self.columns)}).")
        return np.array([row.get(name, np.nan) for row in self.table])

    def flat_table(self):
        """The rows with list-valued entries spread over columns (``w_star_0``, ``w_star_1``)."""
        return [_flat_row(row) for row in self.table]

    @property
    def flat_columns(self):
        """Column names of :meth:`flat_table` (those of the CSV and of :meth:`to_pandas`)."""
        names = {}
        for row in self.flat_table():
            names.update(dict.fromkeys(row))
        return list(names)

    def to_csv(self, path):
        """Write the table as a tidy CSV, one row per run, atomically.

        One value per cell: list-valued configuration keys become one column per entry
        (``w_star_0, w_star_1``); floats are written with ``repr`` (they read back to the
        same bits; undefined quantities are ``nan``); a column a row lacks is an empty
        cell. The file honours the umask.

        Returns
        -------
        Path
        """
        rows = self.flat_table()
        names = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        cols = list(names)
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(cols)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in cols])
        data = text.getvalue().encode()
        return atomic_write(path, lambda fh: fh.write(data), suffix=".csv")

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (columns of :meth:`flat_table`, NaN where missing).

        Raises
        ------
        ImportError
            When pandas is not installed (it is optional: ``pip install pandas``).
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("SweepResult.to_pandas needs pandas, which is not installed: "
                              "pip install pandas (or use SweepResult.table / to_csv).") from exc
        return pd.DataFrame.from_records(self.flat_table(), columns=self.flat_columns)

    def save_trajectories(self, path):
        """Write the kept trajectories to one ``.npz`` file (atomically; honours the umask).

        Runs have different numbers of records (early stops) and may have different shapes,
        so every per-run array is padded with NaN to the largest, and lengths say how much
        of each row is real.

        Arrays: ``index``, ``key``, ``status`` (n,); ``length`` (n,) records of each run
        (0 for a failed point); ``epochs``, ``loss``, ``eg`` (n, T); ``w_tot`` (n, T,
        out_dim, D) with ``out_dim`` (n,) and ``in_dims`` (n, M) (0-padded); ``w0``, ``w``
        (n, P) initial and final weights with ``n_params`` (n,).

        Raises
        ------
        ValueError
            When the sweep was run without ``keep_trajectories=True``.
        """
        if self.trajectories is None:
            raise ValueError("this SweepResult has no trajectories: run the sweep with "
                             "keep_trajectories=True to save them.")
        runs = self.trajectories
        n = len(runs)
        have = [r for r in runs if r is not None]
        t = max((len(r.epochs) for r in have), default=0)
        m = max((len(r.net.in_dims) for r in have), default=0)
        out = max((r.net.out_dim for r in have), default=0)
        d = max((r.net.in_dim for r in have), default=0)
        p = max((r.w0.size for r in have), default=0)
        arrays = {"index": np.array([row["index"] for row in self.table], dtype=np.int64),
                  "key": np.array([row["key"] for row in self.table], dtype="U64"),
                  "status": np.array([row.get("status", "") for row in self.table], dtype=str),
                  "length": np.zeros(n, np.int64), "out_dim": np.zeros(n, np.int64),
                  "in_dims": np.zeros((n, m), np.int64), "n_params": np.zeros(n, np.int64),
                  "epochs": np.full((n, t), np.nan), "loss": np.full((n, t), np.nan),
                  "eg": np.full((n, t), np.nan), "w_tot": np.full((n, t, out, d), np.nan),
                  "w0": np.full((n, p), np.nan), "w": np.full((n, p), np.nan)}
        for i, r in enumerate(runs):
            if r is None:
                continue
            k, net = len(r.epochs), r.net
            arrays["length"][i], arrays["out_dim"][i], arrays["n_params"][i] = k, net.out_dim, r.w0.size
            arrays["in_dims"][i, :len(net.in_dims)] = net.in_dims
            arrays["epochs"][i, :k] = r.epochs
            arrays["loss"][i, :k] = r.loss
            if r.eg is not None:
                arrays["eg"][i, :k] = r.eg
            arrays["w_tot"][i, :k, :net.out_dim, :net.in_dim] = r.w_tot_all
            arrays["w0"][i, :r.w0.size] = r.w0
            if r.w is not None:                   # the Gram path keeps no final weights
                arrays["w"][i, :r.w.size] = r.w
        return atomic_write(Path(path), lambda fh: np.savez(fh, **arrays), suffix=".npz")
