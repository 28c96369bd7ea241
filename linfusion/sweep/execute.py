"""Where a sweep's tasks run, and the checks made before any work.

Tasks go through the ``concurrent.futures.Executor`` interface: a 'spawn'
``ProcessPoolExecutor`` for local workers (single-threaded BLAS, ``cores // workers`` numba
threads each, killed with their parent), ``distributed.Client.get_executor()`` for a Dask
cluster, or plain calls in this process for one worker.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import sys
import warnings
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool

from ..validation import check_int
from . import cache as _cache
from .config import PER_RUN_KEYS, _canonical
from .worker import Task, init_worker, run_batch

CONNECT_TIMEOUT = 5.0                # seconds to reach a Dask scheduler
# Runs per numba thread in a local task: the sample path synchronises its threads every
# epoch, so a few runs per thread amortise that; more would only delay caching.
_TASK_RUNS_PER_THREAD = 4
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def say(message, category=UserWarning):
    """Emit a warning as one line (no source line), without breaking a progress bar."""
    from tqdm.auto import tqdm
    with tqdm.external_write_mode(file=sys.stderr):
        warnings.warn_explicit(" ".join(str(message).split()), category, "<linfusion.sweep>", 0,
                               module="linfusion.sweep")


# ---------------------------------------------------------------------- checks before any work
def connect(scheduler, timeout=None):
    """(client, owned) for ``scheduler``: a connected Client, an address, or 'dask'/True."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("scheduler= needs the optional Dask extra, which is not installed: "
                          "pip install linfusion[dask]") from exc
    if isinstance(scheduler, distributed.Client):
        if scheduler.status not in ("running", "connecting"):
            raise ValueError(f"scheduler is a distributed.Client with status {scheduler.status!r}, "
                             "must be a running client.")
        return scheduler, False
    if scheduler is True or scheduler == "dask":
        address = os.environ.get("DASK_SCHEDULER_ADDRESS")
        if not address:
            raise ValueError(f"scheduler == {scheduler!r} reads the scheduler address from the "
                             "environment variable DASK_SCHEDULER_ADDRESS, which is not set.")
    elif isinstance(scheduler, str) and scheduler.strip():
        address = scheduler.strip()
    else:
        raise TypeError(f"scheduler == {scheduler!r}, must be None, a scheduler address, 'dask' "
                        "(address from DASK_SCHEDULER_ADDRESS) or a distributed.Client.")
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend
    try:
        proto, loc = parse_address(address)
        get_backend(proto)                       # an unknown scheme, before any client starts
        if proto in ("tcp", "tls", "ws", "wss"):
            port = parse_host_port(loc)[1]
            if not 0 < int(port) < 65536:
                raise ValueError(f"port {port} outside 1..65535")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"scheduler == {address!r} is not a Dask scheduler address ({exc}); "
                         "expected e.g. 'tcp://host:8786'.") from None
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except ValueError as exc:          # e.g. an unknown scheme
        raise ValueError(f"scheduler == {address!r} is not a Dask scheduler address ({exc}); "
                         "expected e.g. 'tcp://host:8786'.") from None
    except OSError as exc:
        raise ValueError(f"scheduler == {address!r}: no Dask scheduler answered within {timeout:g} s "
                         f"({exc}).") from None
    return client, True


def preflight(*, cache_dir=None, scheduler=None, workers=None, timeout=None):
    """Check a sweep's execution settings before any work; creates nothing.

    For command-line drivers: call it right after parsing, and report a ``ValueError`` or
    ``TypeError`` as a usage error. :func:`run_sweep` makes the same checks itself before
    it reads the cache or trains anything.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Must be, or be creatable as, a writable folder (not a file, not under a file).
    scheduler : str, distributed.Client, 'dask' or True, optional
        Must be a valid address of a Dask scheduler that answers within ``timeout``
        seconds (default :data:`CONNECT_TIMEOUT`, 5 s); the test connection is closed.
    workers : int, optional
        Must be >= 1.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and the rule.
    ImportError
        ``scheduler`` without the Dask extra installed.
    """
    check_int("workers", workers, lo=1, allow_none=True)
    if cache_dir is not None:
        _cache.check_dir(cache_dir)
    if scheduler is not None:
        client, own = connect(scheduler, timeout)
        if own:
            client.close()


# ---------------------------------------------------------------------- executors
def _tasks(plan, keys, per, threads):
    """Tasks of at most ``per`` points, each from one group of points that differ only per run."""
    groups = {}
    for key in keys:
        cfg = plan.points[key].config
        groups.setdefault(_canonical({k: v for k, v in cfg.items() if k not in PER_RUN_KEYS}), []).append(key)
    want = plan.cache_dir is not None or plan.keep_trajectories
    out = deque()
    for members in groups.values():
        for s in range(0, len(members), per):
            items = tuple({"key": k, "config": plan.points[k].config, "spawn_key": plan.points[k].spawn_key}
                          for k in members[s:s + per])
            out.append(Task(items, plan.entropy, plan.build, plan.measure, want, threads))
    return out


def _abort(ex):
    """Stop a local pool now: kill its workers, cancel what has not started."""
    if hasattr(ex, "kill_workers"):                       # Python >= 3.14
        ex.kill_workers()
    else:
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(5)
    ex.shutdown(wait=True, cancel_futures=True)


def _drive(ex, slots, tasks, collect, *, cancel=True):
    """Keep ``2 * slots`` tasks in flight; after a stop, let the running ones finish.

    ``cancel``: on a stop, cancel the tasks that have not started (a Dask executor's futures
    cannot tell started from waiting ones, so there every task in flight finishes).
    """
    pending = {}
    while tasks or pending:
        while tasks and not collect.stop and len(pending) < 2 * slots:
            try:
                pending[ex.submit(run_batch, tasks[0])] = tasks[0]
            except BrokenProcessPool:      # a worker died; its task's future reports it below
                collect.plan.broken = collect.stop = True
                break
            tasks.popleft()
        if not pending:
            break
        done = futures_wait(set(pending), return_when=FIRST_COMPLETED).done
        for f in done:
            task = pending.pop(f)
            if f.cancelled():
                continue
            try:
                out = f.result()
            except Exception as exc:
                collect.lost(task, exc)
                continue
            collect.done(out)
        if collect.stop and cancel:
            for f in list(pending):
                if f.cancel():
                    del pending[f]


def compute(plan, keys, *, workers, threads, batch_size, client, collect):
    if not keys:
        return
    n_points = sum(len(plan.points[k].indices) for k in keys)
    if client is not None:
        slots = max(1, sum(client.nthreads().values()))
        per = min(batch_size, max(1, math.ceil(len(keys) / (4 * slots))))
        tasks = _tasks(plan, keys, per, threads)
        ex = client.get_executor(pure=False)
        try:
            _drive(ex, slots, tasks, collect, cancel=False)
        except BaseException:
            ex.shutdown(wait=False)
            raise
        ex.shutdown(wait=True)
        return
    n_cores = cores()
    n_proc = min(workers or n_cores, n_cores, len(keys))
    if n_proc > 1:                       # tasks small enough that every worker gets some
        task_threads = threads or max(1, n_cores // n_proc)
        per = min(batch_size, _TASK_RUNS_PER_THREAD * task_threads, math.ceil(len(keys) / n_proc))
        tasks = _tasks(plan, keys, per, task_threads)
        n_proc = min(n_proc, len(tasks))
    if workers is not None and n_proc < workers:
        say(f"workers == {workers}: using {n_proc} worker process(es) ({n_cores} core(s), "
            f"{n_points} point(s) to compute).")
    if n_proc == 1:                      # plain calls in this process
        per = min(batch_size, _TASK_RUNS_PER_THREAD * (threads or n_cores))
        for task in _tasks(plan, keys, per, threads):
            if collect.stop:
                break
            collect.done(run_batch(task))
        return
    for name, fn in (("build", plan.build), ("measure", plan.measure)):
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise TypeError(f"{name} == {fn!r} cannot be sent to worker processes ({exc}); define it at "
                            "module level in an importable module, or pass workers=1.") from None
    # Workers get single-threaded BLAS (numba's threads are set per task). They are spawned
    # on demand and copy the environment when they start, so it stays set while the pool lives.
    saved = {k: os.environ.get(k) for k in _BLAS_ENV}
    os.environ.update({k: "1" for k in _BLAS_ENV})
    try:
        ex = ProcessPoolExecutor(n_proc, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=init_worker, initargs=(os.getpid(),))
        try:
            _drive(ex, n_proc, tasks, collect)
        except BaseException:
            _abort(ex)
            raise
        ex.shutdown(wait=True, cancel_futures=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
