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
- **Workers.** Tasks run through a ``concurrent.futures`` executor: ``workers=1`` runs them
  in this process (numba uses every core inside a task); ``workers > 1`` uses a 'spawn'
  ``ProcessPoolExecutor`` with ``cores // workers`` numba threads per worker, at most one
  worker per core and per point, and workers that die with this process;
  ``scheduler=...`` uses a Dask cluster's ``Client.get_executor()``.
- **Cache.** With ``cache_dir``, each finished task's points are written at once by this
  (the client) process to ``<cache_dir>/<key>.npz``, atomically (temporary file in the same
  folder, then ``os.replace``), with the permissions of the umask. ``key`` (:func:`point_key`)
  is the sha256 of the point's completed configuration, the seed and spawn key, and the
  code: a hash of the ``linfusion`` package's source files, of the build function's source
  and compiled code, and the Python, NumPy and Numba versions, so that editing the kernels
  or a build function never reuses stale points. The file holds the *simulation* (recorded
  trajectory, initial and final weights, status) plus a JSON record, under one sha256; the
  measurements are recomputed from it on every run, so changing ``measure`` never needs a
  recompute. A file that cannot be read, lacks a field or fails its checksum is reported
  (:class:`CacheWarning` naming the file) and recomputed. A sweep killed at any moment
  loses only the points in flight.
- **Outcomes.** A row's ``status`` is the run's ('completed', 'converged', 'diverged',
  'stalled'); runs that are not usable keep their rows with NaN measurements and a
  ``note``; 'failed' is reserved for exceptions (``errors='raise'`` or ``'collect'``).

Before any work, :func:`run_sweep` checks the cache folder and connects to the scheduler;
:func:`preflight` makes the same checks for a command-line driver.
"""
from .cache import check_dir, load_point
from .config import (DATA_DEFAULTS, NET_DEFAULTS, PER_RUN_KEYS, RESERVED_COLUMNS, TRAIN_DEFAULTS, CacheWarning,
                     SweepError, build, grid, normalize)
from .execute import CONNECT_TIMEOUT, preflight
from .keys import point_key
from .results import SweepResult
from .running import run_point, run_sweep

__all__ = ["grid", "normalize", "point_key", "build", "run_point", "run_sweep", "load_point",
           "SweepResult", "SweepError", "CacheWarning", "preflight", "check_dir", "TRAIN_DEFAULTS",
           "NET_DEFAULTS", "DATA_DEFAULTS", "PER_RUN_KEYS", "RESERVED_COLUMNS", "CONNECT_TIMEOUT"]
