"""Running a sweep: the plan of its points, the cache, the table, and one point alone."""
from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from ..validation import check_choice, check_int
from . import cache as _cache
from .config import CacheWarning, SweepError, _canonical, default_build, normalize
from .execute import compute, connect, say
from .keys import code_fingerprint, entropy_of, key_of, spawn_key_of
from .results import SweepResult
from .worker import error_info, measure_row, prepare, train_group

_MAX_WARNINGS = 5                    # distinct training warnings re-emitted per sweep


# ---------------------------------------------------------------------- the plan of a sweep
@dataclass
class _Point:
    key: str
    config: dict
    spawn_key: list
    indices: list = field(default_factory=list)


@dataclass
class _Plan:
    """Everything a sweep's run needs besides its executor."""

    points: dict                 # key -> _Point, in order of first appearance
    n: int                       # points in the sweep's list (duplicates count)
    entropy: int
    build: object
    measure: object
    code: dict                   # code fingerprint (cache record)
    cache_dir: object            # Path or None
    keep_trajectories: bool
    errors: str
    rows: list = field(init=False)
    trajectories: list = field(init=False)
    failures: list = field(default_factory=list)
    computed: int = 0
    cached: int = 0
    broken: bool = False

    def __post_init__(self):
        self.rows = [None] * self.n
        self.trajectories = [None] * self.n if self.keep_trajectories else None

    def fill(self, point, measured, result=None):
        for i in point.indices:
            self.rows[i] = {"index": i, "key": point.key, "seed": self.entropy, **point.config, **measured}
            if self.trajectories is not None:
                self.trajectories[i] = result

    def fail(self, point, info):
        for i in point.indices:
            self.failures.append({"index": i, "config": point.config, "key": point.key, "stage": info["stage"],
                                  "error": info["error"], "traceback": info["traceback"],
                                  "exception": info.get("exception")})
        nan = float("nan")
        self.fill(point, {"status": "failed", "note": "", "error": info["error"], "diverged": False,
                          "final_epoch": nan, "final_loss": nan, "final_eg": nan})

    def result(self):
        return SweepResult(table=self.rows, trajectories=self.trajectories, n_computed=self.computed,
                           n_cached=self.cached, failures=self.failures, seed=self.entropy)

    def raise_failures(self):
        first = self.failures[0]
        others = len({f["index"] for f in self.failures}) - 1
        where = f"; finished points are in the cache {self.cache_dir}" if self.cache_dir is not None else ""
        head = f"point {first['index']} failed in {first['stage']}"
        if first["stage"] == "worker":      # the task was lost as a whole: name every point in it
            lost = sorted({f["index"] for f in self.failures if f["stage"] == "worker"})
            head = f"a worker died or lost the task while it ran points {lost}; point {first['index']}"
        msg = (f"{head}: {first['error']}\nconfig: {_canonical(first['config'])}\n"
               f"({others} other point(s) failed{where})\n{first['traceback']}")
        raise SweepError(msg, index=first["index"], config=first["config"], failures=self.failures) \
            from first.get("exception")


# ---------------------------------------------------------------------- outcomes
class _Collector:
    """Turns the outcomes of tasks into cache files, rows and one-line warnings."""

    def __init__(self, plan, bar):
        self.plan, self.bar = plan, bar
        self.shown, self.hidden = set(), set()
        self.stop = False

    def lost(self, task, exc):
        """A whole task died (dead worker, lost connection)."""
        info = error_info(exc, "worker")
        for item in task.items:
            self.plan.fail(self.plan.points[item["key"]], info)
        if isinstance(exc, BrokenProcessPool):
            self.plan.broken = True
        self.stop = self.stop or self.plan.broken or self.plan.errors == "raise"
        self.bar.update(sum(len(self.plan.points[it["key"]].indices) for it in task.items))

    def done(self, out):
        plan = self.plan
        for o in out["outcomes"]:
            point = plan.points[o["key"]]
            result = None
            if o["arrays"] is not None:
                if plan.cache_dir is not None:
                    _cache.save(plan.cache_dir, point.key, o["arrays"], {
                        **o["meta"], "config": point.config, "seed": plan.entropy,
                        "spawn_key": point.spawn_key, "build": plan.code["build"], "code": plan.code})
                if plan.keep_trajectories:
                    result = _cache.result_from(o["arrays"], o["meta"])
            if o["ok"]:
                plan.fill(point, o["row"], result)
                plan.computed += len(point.indices)
            else:
                plan.fail(point, o)
                self.stop = self.stop or plan.errors == "raise"
            self.bar.update(len(point.indices))
        self.warn(out["warnings"], "training")

    def warn(self, entries, where):
        """Re-emit caught warnings, one line each, a few distinct ones (the table has the rest)."""
        for name, text in entries:
            entry = (name, text)
            if entry in self.shown:
                continue
            if len(self.shown) < _MAX_WARNINGS:
                self.shown.add(entry)
                say(f"from {where}: {text}", RuntimeWarning if name == "RuntimeWarning" else UserWarning)
            else:
                self.hidden.add(entry)

    def finish(self):
        if self.hidden:
            say(f"from the sweep: {len(self.hidden)} more distinct warning(s) not shown; see the status and "
                "note columns of the table.", RuntimeWarning)




# ---------------------------------------------------------------------- the public entry points
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
        :class:`TrainResult`, added to each row (None becomes NaN). Runs in the workers for
        computed points and here for cached ones; must be a module-level function for
        worker processes. It is also called for runs that are not usable (diverged,
        stalled): an exception it raises for them is written to the row's ``note``.
    build : callable, optional
        ``build(config, rng) -> (FusionNet, Dataset)``; default :func:`build`. Module-level
        for worker processes.
    workers : int, optional
        Local processes; default all cores, and never more than the cores or the points to
        compute (a one-line warning says so when an explicit value is lowered). 1 runs in
        this process. Unused with ``scheduler``.
    threads : int, optional
        Numba threads per worker; default ``cores // workers`` for local processes,
        numba's default in this process and on Dask workers.
    batch_size : int
        Most points per task. A task trains its points in as few ``train_many`` calls as
        their shapes allow, and its points are cached when it returns; local tasks hold at
        most 4 points per numba thread of their worker (so that an interrupted sweep keeps
        most of its work), Dask tasks about a quarter of the points per Dask thread.
    cache_dir : str or Path, optional
        Cache folder (created); None: no cache, nothing resumable.
    force : bool
        Recompute (and overwrite) cached points.
    keep_trajectories : bool
        Return each point's :class:`TrainResult` in ``trajectories``. Off, the memory used
        does not grow with the trajectories: results stream to the cache and only rows stay.
    scheduler : str, distributed.Client or 'dask', optional
        Run on a Dask cluster through ``Client.get_executor()``: a scheduler address, a
        connected Client, or 'dask' (or True) for the address in ``DASK_SCHEDULER_ADDRESS``.
        Needs ``pip install linfusion[dask]`` and linfusion importable on the workers. The
        scheduler must answer within 5 s (:data:`CONNECT_TIMEOUT`), checked before the
        cache is read. The cache is written by this process (no shared file system needed).
    errors : {'raise', 'collect'}
        A point that fails with an exception (in build, training or measure) is reported
        with its index and configuration. 'raise': no new tasks start, the tasks in flight
        finish and are cached, then :class:`SweepError` is raised. 'collect': the sweep goes
        on; the point's row has status 'failed' and an ``error``, and it is listed in
        ``failures``. A dead worker process (broken pool) always raises. Runs that diverge
        or stall are not failures: their rows keep their status, with NaN measurements.
    seed_by : {'index', 'config'}
        Spawn key of a point: its position in ``configs``, or a hash of its configuration
        (then results do not depend on the order of ``configs``).
    progress : bool
        Show a tqdm progress bar on stderr; warnings are printed above it, one line each.

    Returns
    -------
    SweepResult

    Raises
    ------
    TypeError, ValueError
        A bad argument, configuration, cache folder or scheduler, before any work
        (``configs[3]: lr == -0.1, must be > 0.``).
    SweepError
        A point failed and ``errors='raise'``, or a worker process died.
    KeyboardInterrupt
        On Ctrl-C: worker processes are killed at once; finished points stay in the cache.

    Notes
    -----
    Worker processes are started with 'spawn': a script that runs a sweep with
    ``workers > 1`` needs the ``if __name__ == "__main__":`` guard, and ``build`` and
    ``measure`` must live in an importable module (in a notebook, use ``workers=1`` or Dask,
    which pickles functions by value). Worker processes die with this process, even when it
    is killed. With ``workers=1`` a Ctrl-C takes effect when the current ``train_many`` call
    returns.

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
    entropy = entropy_of(seed)
    code = code_fingerprint(build)

    # ---- completed configurations, spawn keys, cache keys (duplicates computed once)
    points = {}
    for i, c in enumerate(configs):
        try:
            cfg = normalize(c, build=build)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"configs[{i}]: {exc}") from None
        sk = spawn_key_of(cfg, i, seed_by)
        key = key_of(cfg, entropy, sk, code)
        points.setdefault(key, _Point(key, cfg, sk)).indices.append(i)
    # ---- where the work goes, checked before any work
    if cache_dir is not None:
        _cache.check_dir(cache_dir)
    client, own = connect(scheduler) if scheduler is not None else (None, False)
    bar = None
    try:
        if cache_dir is not None:
            cache_dir = _cache.prepare_dir(cache_dir)
        plan = _Plan(points, len(configs), entropy, build, measure, code, cache_dir, keep_trajectories, errors)
        bar = tqdm(total=plan.n, desc="sweep", unit="pt", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True)
        collect = _Collector(plan, bar)
        todo = []
        for key, point in points.items():      # cached points: read, check, measure here
            got = None
            if cache_dir is not None and not force:
                try:
                    got = _cache.load(cache_dir, key)
                except Exception as exc:
                    say(f"sweep cache file {_cache.cache_path(cache_dir, key)} is corrupt or incomplete "
                        f"({type(exc).__name__}: {exc}); recomputing the point.", CacheWarning)
            if got is None:
                todo.append(key)
                continue
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    measured = measure_row(got[0], point.config, measure)
                collect.warn([(type(w.message).__name__, str(w.message)) for w in caught], "measure")
            except Exception as exc:
                plan.fail(point, error_info(exc, "measure"))
                if errors == "raise":
                    plan.raise_failures()
            else:
                plan.fill(point, measured, got[0])
            plan.cached += len(point.indices)
            bar.update(len(point.indices))
        compute(plan, todo, workers=workers, threads=threads, batch_size=batch_size, client=client,
                collect=collect)
        collect.finish()
    finally:
        if bar is not None:
            bar.close()
        if own:
            client.close()
    if plan.failures and (errors == "raise" or plan.broken):
        plan.raise_failures()
    return plan.result()


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
    spawn_key = spawn_key_of(cfg, check_int("index", index, lo=0), seed_by)
    net, ds, w0 = prepare(cfg, entropy_of(seed), spawn_key, build or default_build)
    return train_group([(cfg, net, ds, w0)])[0]
