"""Tests of linfusion.sweep: batching, reproducibility, cache, resume, Dask."""
import csv
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from linfusion import sweep
from linfusion.sweep import CacheWarning, SweepError, grid, load_point, point_key, run_point, run_sweep

TESTS = Path(__file__).resolve().parent
SMALL = dict(n=256, width=10, epochs=200, lr=0.05)
# 8 moment-path late-fusion points, 2 sample-path (ReLU) points, 2 early-fusion points.
CFGS = (grid(rho=[0.0, 0.3], ratio=[1.5, 2.0], repeat=range(2), **SMALL)
        + grid(rho=[0.2], slope=0.0, repeat=range(2), **SMALL)
        + grid(arch="early", rho=[0.1], repeat=range(2), **SMALL))
N = len(CFGS)


# ---------------------------------------------------------------------- module-level helpers (picklable)
def measure_fn(result, config):
    wa = result.w_tot[0][:, 0, 0]
    return {"wa_max": float(wa.max()), "t_half": int(np.argmax(wa >= 0.5 * wa[-1])),
            "eg_min": float(np.min(result.eg)), "rho_seen": config["rho"]}


def _tag(config):
    return f"{config.get('rho')}:{config.get('ratio')}:{config.get('repeat')}"


def flaky_build(config, rng):
    """The default build, but raises for the point named by LF_SWEEP_FAIL."""
    if os.environ.get("LF_SWEEP_FAIL") == _tag(config):
        raise RuntimeError("injected build failure")
    return sweep.build(config, rng)


def flaky_measure(result, config):
    if os.environ.get("LF_SWEEP_FAIL") == _tag(config):
        raise RuntimeError("injected measure failure")
    return measure_fn(result, config)


def exit_build(config, rng):
    """Kills its worker process for the point named by LF_SWEEP_EXIT."""
    if os.environ.get("LF_SWEEP_EXIT") == _tag(config):
        os._exit(3)
    return sweep.build(config, rng)


def slow_build(config, rng):
    """The default build, LF_SWEEP_SLOW seconds late; 300 s late for the points in LF_SWEEP_HANG."""
    delay = os.environ.get("LF_SWEEP_SLOW")
    if _tag(config) in os.environ.get("LF_SWEEP_HANG", "").split(","):
        delay = 300
    if delay:
        time.sleep(float(delay))
    return sweep.build(config, rng)


def run_for_kill(cache_dir, workers=1):
    """Entry point of the subprocesses that the kill and Ctrl-C tests stop."""
    run_sweep(CFGS, build=slow_build, cache_dir=cache_dir, workers=workers, threads=1, batch_size=1, progress=False)


def assert_same(a, b, *, trajectories=False):
    """Rows (matched by key) and trajectories equal bit for bit."""
    assert len(a.table) == len(b.table)
    assert a.columns == b.columns
    ia = {row["key"]: i for i, row in enumerate(a.table)}
    order = [ia[row["key"]] for row in b.table]
    for col in a.columns:
        if col == "index":
            continue
        ca, cb = a.column(col)[order], b.column(col)
        if ca.dtype.kind in "fc":
            assert np.array_equal(ca, cb, equal_nan=True), col
        else:
            assert list(ca) == list(cb), col
    if trajectories:
        for i, tb in enumerate(b.trajectories):
            ta = a.trajectories[order[i]]
            for name in ("epochs", "loss", "eg", "w", "w0"):
                assert np.array_equal(getattr(ta, name), getattr(tb, name)), name
            assert all(np.array_equal(x, y) for x, y in zip(ta.w_tot, tb.w_tot))
            assert ta.status == tb.status and ta.net == tb.net


def cache_files(folder):
    return sorted(p for p in Path(folder).glob("*.npz") if not p.name.startswith(".tmp-"))


@pytest.fixture(scope="module")
def reference():
    return run_sweep(CFGS, workers=1, measure=measure_fn, keep_trajectories=True, progress=False)


# ---------------------------------------------------------------------- configurations and keys
def test_grid():
    pts = grid(rho=[0.0, 0.5], repeat=range(2), w_star=(1.0, 2.0), data="toy")
    assert len(pts) == 4
    assert pts[1] == {"rho": 0.0, "repeat": 1, "w_star": (1.0, 2.0), "data": "toy"}
    assert grid(a=np.array([1, 2]))[1]["a"] == 2 and type(grid(a=np.array([1, 2]))[1]["a"]) is int
    with pytest.raises(ValueError, match="rho == \\[\\]"):
        grid(rho=[])


def test_normalize_fills_and_checks():
    cfg = sweep.normalize({"rho": 0.3, "ratio": 2})
    assert cfg["ratio"] == 2.0 and isinstance(cfg["ratio"], float)
    assert cfg["fuse_depth"] == 2 and cfg["scale"] == 1e-9 and cfg["n"] == 8192
    assert sweep.normalize({"arch": "early", "depth": 3})["fuse_depth"] == 1
    assert sweep.normalize({"arch": "deep", "depth": 4, "init": "layer"})["scale"] == 0.1
    with pytest.raises(ValueError, match="lr == -0.1, must be > 0"):
        sweep.normalize({"lr": -0.1})
    with pytest.raises(ValueError, match="'lrr' == 0.1|lrr == 0.1"):
        sweep.normalize({"lrr": 0.1})
    with pytest.raises(ValueError, match="rho == 0.3 is not a parameter of data 'multi'"):
        sweep.normalize({"data": "multi", "rho": 0.3})
    with pytest.raises(ValueError, match="fuse_depth == 1, must be 2 for arch 'late'"):
        sweep.normalize({"arch": "late", "fuse_depth": 1})
    with pytest.raises(ValueError, match="path == 'moment'"):
        sweep.normalize({"slope": 0.0, "path": "moment"})
    with pytest.raises(TypeError, match="epochs == 2.5, must be an integer"):
        sweep.normalize({"epochs": 2.5})
    with pytest.raises(TypeError, match="JSON"):
        sweep.normalize({"rho": object()})
    # the boundary of run_sweep names the point
    with pytest.raises(ValueError, match=r"configs\[1\]: n == 6, must be a positive multiple of 4"):
        run_sweep([{}, {"data": "xor_linear", "n": 6}], progress=False)
    # custom builds keep their own keys
    assert sweep.normalize({"theta": 1.5}, build=flaky_build)["theta"] == 1.5


def test_point_key_distinguishes_every_parameter():
    base = sweep.normalize(dict(CFGS[0]))
    k0 = point_key(base)
    assert len(k0) == 64
    assert point_key(dict(reversed(list(base.items())))) == k0          # key order
    assert point_key({**base, "ratio": int(base["ratio"]) if base["ratio"].is_integer() else base["ratio"]}) == k0
    assert point_key(CFGS[0]) == k0                                        # defaults filled in
    changed = {"arch": "deep", "depth": 3, "fuse_depth": 1, "width": 11, "slope": 0.5, "bias": True,
               "data": "multi", "rho": 0.31, "ratio": 2.5, "n": 257, "noise": 0.1, "w_star": [1.0, 0.5],
               "init": "layer", "scale": 2e-9, "lr": 0.051, "epochs": 201, "tol": 1e-4, "loss": "logistic",
               "weight_decay": 1e-3, "record_every": 2, "path": "sample", "repeat": 1}
    assert set(changed) == set(base), "every key of a config is varied"
    keys = {k0}
    for name, value in changed.items():
        cfg = {**base, name: value}
        if name == "data":
            cfg = {k: v for k, v in cfg.items() if k not in ("rho", "ratio", "w_star")}
        if name == "depth":
            cfg["fuse_depth"] = 3
        if name == "fuse_depth":
            cfg["arch"] = "deep"
        k = point_key(cfg)
        assert k not in keys, name
        keys.add(k)
    assert point_key(base, seed=1) != k0
    assert point_key(base, index=1) != k0
    assert point_key(base, seed_by="config") != k0
    assert point_key(base, build=flaky_build) != k0


# ---------------------------------------------------------------------- reproducibility
def test_workers_bitwise_equal(reference):
    assert reference.n_computed == N and reference.n_cached == 0
    assert {r["status"] for r in reference.table} <= {"completed", "converged"}
    assert {"w_tot_0_0", "w_tot_1_0", "final_loss", "final_epoch", "diverged", "wa_max"} <= set(reference.columns)
    two = run_sweep(CFGS, workers=2, batch_size=2, measure=measure_fn, keep_trajectories=True, progress=False)
    assert_same(reference, two, trajectories=True)
    # one point alone, in this process, gives the same bits as inside the sweep
    res = run_point(CFGS[9], index=9)
    assert np.array_equal(res.loss, reference.trajectories[9].loss)
    assert np.array_equal(res.w, reference.trajectories[9].w)


@pytest.mark.parametrize("options", [dict(workers=2), dict(workers=2, threads=2, batch_size=5),
                                     dict(workers=1, threads=1, batch_size=1), dict(workers=1, batch_size=7)])
def test_task_sizes_and_threads_bitwise_equal(reference, options):
    r = run_sweep(CFGS, measure=measure_fn, keep_trajectories=True, progress=False, **options)
    assert_same(reference, r, trajectories=True)


def test_seed_by_config_is_order_free():
    a = run_sweep(CFGS, seed=5, seed_by="config", measure=measure_fn, keep_trajectories=True,
                  workers=1, threads=1, progress=False)
    shuffled = list(CFGS)
    random.Random(0).shuffle(shuffled)
    b = run_sweep(shuffled, seed=5, seed_by="config", measure=measure_fn, keep_trajectories=True,
                  workers=1, threads=1, batch_size=3, progress=False)
    assert_same(a, b, trajectories=True)
    # with index seeds the seed does matter
    c = run_sweep(CFGS[:2], seed=6, workers=1, threads=1, progress=False)
    assert not np.array_equal(c.column("final_loss"), a.column("final_loss")[:2])


def test_dask_local_cluster(reference, monkeypatch, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        r = run_sweep(CFGS, scheduler=client, batch_size=2, measure=measure_fn, keep_trajectories=True,
                      progress=False)
        assert_same(reference, r, trajectories=True)
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        r = run_sweep(CFGS, scheduler="dask", measure=measure_fn, progress=False)
        assert_same(reference, r)
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        r = run_sweep(CFGS, scheduler=client, measure=measure_fn, keep_trajectories=True, progress=False)
        assert_same(reference, r, trajectories=True)
        # every point cached by a Dask sweep reads back the same bits
        r = run_sweep(CFGS, scheduler=client, measure=measure_fn, cache_dir=tmp_path / "cache", progress=False)
        again = run_sweep(CFGS, measure=measure_fn, cache_dir=tmp_path / "cache", keep_trajectories=True,
                          workers=1, progress=False)
        assert again.n_cached == N
        assert_same(reference, again, trajectories=True)


def test_dask_failures(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("LF_SWEEP_FAIL", _tag(CFGS[5]))
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=2,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        r = run_sweep(CFGS, scheduler=client, build=flaky_build, errors="collect", cache_dir=tmp_path / "c",
                      batch_size=1, progress=False)
        assert [f["index"] for f in r.failures] == [5] and r.table[5]["status"] == "failed"
        assert len(cache_files(tmp_path / "c")) == N - 1
        with pytest.raises(SweepError, match="point 5 failed in build: RuntimeError: injected build failure"):
            run_sweep(CFGS, scheduler=client, build=flaky_build, cache_dir=tmp_path / "c", progress=False)


def test_dask_errors(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(ValueError, match="DASK_SCHEDULER_ADDRESS"):
        run_sweep(CFGS[:1], scheduler="dask", progress=False)


def test_dask_missing_extra(monkeypatch):
    """Runs with or without dask installed: the import fails as it would without the extra."""
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install linfusion\[dask\]"):
        run_sweep(CFGS[:1], scheduler="tcp://127.0.0.1:1", progress=False)


# ---------------------------------------------------------------------- cache and resume
def test_cache_force_and_csv(tmp_path, reference):
    cache = tmp_path / "cache"
    a = run_sweep(CFGS, cache_dir=cache, measure=measure_fn, workers=1, threads=1, progress=False)
    assert (a.n_computed, a.n_cached) == (N, 0)
    assert len(cache_files(cache)) == N
    assert_same(reference, a)
    b = run_sweep(CFGS, cache_dir=cache, measure=measure_fn, keep_trajectories=True, workers=1, threads=1,
                  progress=False)
    assert (b.n_computed, b.n_cached) == (0, N)
    assert_same(reference, b, trajectories=True)
    c = run_sweep(CFGS, cache_dir=cache, measure=measure_fn, force=True, workers=1, threads=1, progress=False)
    assert (c.n_computed, c.n_cached) == (N, 0)
    assert_same(reference, c)
    res, record = load_point(cache / f"{a.table[3]['key']}.npz")
    assert record["config"] == sweep.normalize(CFGS[3]) and np.array_equal(res.loss, reference.trajectories[3].loss)
    out = a.to_csv(tmp_path / "sweep.csv")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == N and list(rows[0]) == a.flat_columns
    assert "w_star" not in rows[0] and {"w_star_0", "w_star_1"} <= set(rows[0])
    assert [float(r["final_loss"]) for r in rows] == list(a.column("final_loss"))


def test_corrupt_cache_files_are_recomputed(tmp_path, reference):
    cache = tmp_path / "cache"
    run_sweep(CFGS, cache_dir=cache, measure=measure_fn, workers=1, threads=1, progress=False)
    victims = [cache / f"{reference.table[i]['key']}.npz" for i in (2, 5, 8, 11)]
    data = victims[0].read_bytes()
    victims[0].write_bytes(data[: len(data) // 2])                         # truncated
    data = bytearray(victims[1].read_bytes())
    data[len(data) // 2] ^= 0xFF                                           # one flipped byte
    victims[1].write_bytes(bytes(data))
    victims[2].write_bytes(b"")                                            # empty
    np.savez(victims[3], loss=np.zeros(3))                                 # valid zip, no record
    with pytest.warns(CacheWarning) as caught:
        r = run_sweep(CFGS, cache_dir=cache, measure=measure_fn, keep_trajectories=True, workers=1, threads=1,
                      progress=False)
    text = " ".join(str(w.message) for w in caught)
    for v in victims:
        assert v.name in text
    assert (r.n_computed, r.n_cached) == (4, N - 4)
    assert_same(reference, r, trajectories=True)
    for v in victims:
        load_point(v)                                                      # rewritten whole


def test_failed_point_resumes(tmp_path, reference, monkeypatch):
    cache = tmp_path / "cache"
    clean = run_sweep(CFGS, build=flaky_build, measure=measure_fn, workers=1, threads=1, progress=False)
    monkeypatch.setenv("LF_SWEEP_FAIL", _tag(CFGS[4]))
    with pytest.raises(SweepError, match="injected build failure") as info:
        run_sweep(CFGS, build=flaky_build, measure=measure_fn, cache_dir=cache, workers=1, threads=1, batch_size=2,
                  progress=False)
    assert info.value.index == 4 and info.value.config["rho"] == CFGS[4]["rho"]
    assert "point 4 failed in build" in str(info.value)
    done = len(cache_files(cache))
    assert 4 <= done < N                       # the points before it and the rest of its batch
    monkeypatch.delenv("LF_SWEEP_FAIL")
    r = run_sweep(CFGS, build=flaky_build, measure=measure_fn, cache_dir=cache, workers=1, threads=1, progress=False)
    assert (r.n_cached, r.n_computed) == (done, N - done)
    assert_same(clean, r)


def test_failed_measure_keeps_simulation(tmp_path, reference, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LF_SWEEP_FAIL", _tag(CFGS[6]))
    r = run_sweep(CFGS, measure=flaky_measure, cache_dir=cache, workers=2, errors="collect", progress=False)
    assert [f["index"] for f in r.failures] == [6] and r.failures[0]["stage"] == "measure"
    assert r.table[6]["status"] == "failed" and "injected measure failure" in r.table[6]["error"]
    assert len(cache_files(cache)) == N        # the run itself was cached
    monkeypatch.delenv("LF_SWEEP_FAIL")
    r = run_sweep(CFGS, measure=flaky_measure, cache_dir=cache, workers=1, threads=1, progress=False)
    assert (r.n_cached, r.n_computed) == (N, 0)
    assert_same(reference, r)


def test_killed_worker_loses_only_points_in_flight(tmp_path, reference, monkeypatch):
    cache = tmp_path / "cache"
    clean = run_sweep(CFGS, build=exit_build, measure=measure_fn, workers=1, threads=1, progress=False)
    monkeypatch.setenv("LF_SWEEP_EXIT", _tag(CFGS[7]))
    with pytest.raises(SweepError, match="BrokenProcessPool|terminated"):
        run_sweep(CFGS, build=exit_build, measure=measure_fn, cache_dir=cache, workers=2, batch_size=1,
                  progress=False)
    files = cache_files(cache)
    assert 0 < len(files) < N
    for f in files:
        load_point(f)
    monkeypatch.delenv("LF_SWEEP_EXIT")
    r = run_sweep(CFGS, build=exit_build, measure=measure_fn, cache_dir=cache, workers=1, threads=1, progress=False)
    assert (r.n_cached, r.n_computed) == (len(files), N - len(files))
    assert_same(clean, r)


def test_killed_sweep_resumes(tmp_path):
    cache = tmp_path / "cache"
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_sweep; test_sweep.run_for_kill({str(cache)!r})"
    env = {**os.environ, "LF_SWEEP_SLOW": "0.25"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if cache.exists() and len(cache_files(cache)) >= 3:
                break
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    files = cache_files(cache)
    assert 3 <= len(files) < N
    for f in files:
        load_point(f)                          # every file written is complete
    r = run_sweep(CFGS, build=slow_build, cache_dir=cache, workers=1, threads=1, progress=False)
    assert (r.n_cached, r.n_computed) == (len(files), N - len(files))
    clean = run_sweep(CFGS, build=slow_build, workers=1, threads=1, progress=False)
    assert_same(clean, r)


def test_gram_path_points_match_the_moment_path_and_cache_without_weights(tmp_path):
    """A sweep may run two-layer linear points on the Gram path: same W_tot to rounding, no final weights."""
    kw = dict(seed=3, workers=1, keep_trajectories=True, progress=False)
    moment = run_sweep(grid(rho=[0.0, 0.5], epochs=400, path="moment"), **kw)
    gram = run_sweep(grid(rho=[0.0, 0.5], epochs=400, path="gram"), cache_dir=tmp_path, **kw)
    for m, g in zip(moment.trajectories, gram.trajectories):
        assert g.path == "gram" and g.w is None and m.w is not None
        np.testing.assert_array_equal(g.w0, m.w0)
        np.testing.assert_allclose(g.w_tot_all, m.w_tot_all, rtol=1e-10, atol=1e-30)
    again = run_sweep(grid(rho=[0.0, 0.5], epochs=400, path="gram"), cache_dir=tmp_path, **kw)
    assert again.n_cached == 2 and again.trajectories[1].w is None
    again.save_trajectories(tmp_path / "traj.npz")
    with pytest.raises(ValueError, match="path == 'gram'"):
        run_sweep(grid(depth=3, arch="deep", path="gram"), workers=1, progress=False)
