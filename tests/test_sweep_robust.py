"""linfusion.sweep under faults: killed and interrupted sweeps, worker counts, unusable runs, bad paths
and schedulers, file modes, the cache record's checksum."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import linfusion
from linfusion import sweep
from linfusion.sweep import CacheWarning, SweepError, execute, load_point, run_sweep, worker
from test_sweep import CFGS, N, TESTS, _tag, assert_same, cache_files, measure_fn, slow_build

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads processes from /proc (Linux)")


# ---------------------------------------------------------------------- helpers (module level: picklable)
BUILDS = []


def counting_build(config, rng):
    """The default build; counts its calls in this process."""
    BUILDS.append(config.get("rho"))
    return sweep.build(config, rng)


MEASURED = []


def counting_measure(result, config):
    MEASURED.append(config.get("rho"))
    return {}


def strict_measure(result, config):
    """Like the old analysis.measure on a diverged run: raises on non-finite weights."""
    wa = result.w_tot[0][:, 0, 0]
    if not np.all(np.isfinite(wa)):
        raise ValueError("threshold == inf, must be finite")
    return {"wa_last": float(wa[-1])}


def _stat(pid):
    """(state, ppid, start time) of a process from /proc, None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), rest[19]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children(pid):
    """{pid: start time} of the live children of ``pid``."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[1] == pid and st[0] != "Z":
                out[int(name)] = st[2]
    return out


def alive(procs):
    """The processes of ``{pid: start time}`` that still run (zombies and reused PIDs do not count)."""
    out = []
    for pid, start in procs.items():
        st = _stat(pid)
        if st is not None and st[0] != "Z" and st[2] == start:
            out.append(pid)
    return out


def wait_gone(procs, timeout):
    deadline = time.monotonic() + timeout
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(procs)


def kill_all(procs):
    for pid in alive(procs):
        os.kill(pid, signal.SIGKILL)


def start_sweep(cache, workers, **popen):
    """A subprocess that runs CFGS with a cache: 0.25 s per point for points 0-2, then each point
    hangs for 300 s (so the sweep is mid-way whenever it is stopped); Ctrl-C exits 130."""
    code = ("import sys; sys.path.insert(0, {tests!r}); import test_sweep\n"
            "try:\n    test_sweep.run_for_kill({cache!r}, {workers})\n"
            "except KeyboardInterrupt:\n    print('interrupted', flush=True); sys.exit(130)\n"
            ).format(tests=str(TESTS), cache=str(cache), workers=workers)
    env = {**os.environ, "LF_SWEEP_SLOW": "0.25", "LF_SWEEP_HANG": ",".join(_tag(c) for c in CFGS[3:])}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


def wait_for_files(proc, cache, count, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.exists() and len(cache_files(cache)) >= count:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def clean():
    return run_sweep(CFGS, build=slow_build, workers=1, threads=1, progress=False)


# ---------------------------------------------------------------------- killed and interrupted sweeps
@needs_proc
def test_sigkill_parent_takes_workers_with_it(tmp_path, clean):
    cache = tmp_path / "cache"
    proc = start_sweep(cache, 2)
    kids = {}
    try:
        assert wait_for_files(proc, cache, 3), proc.stderr.read().decode() if proc.poll() is not None else "timeout"
        kids = children(proc.pid)
        workers = [pid for pid in kids if "spawn_main" in _cmdline(pid)]
        assert len(workers) == 2, {pid: _cmdline(pid) for pid in kids}
        assert any("resource_tracker" in _cmdline(pid) for pid in kids), {pid: _cmdline(pid) for pid in kids}
        proc.kill()
        proc.wait()
        left = wait_gone(kids, timeout=10)
        assert left == [], {pid: _cmdline(pid) for pid in left}      # workers and resource tracker
    finally:
        proc.kill()
        proc.wait()
        kill_all(kids)
    files = cache_files(cache)
    assert len(files) == 3
    for f in files:
        load_point(f)                          # every file written is complete
    r = run_sweep(CFGS, build=slow_build, cache_dir=cache, workers=1, threads=1, progress=False)
    assert (r.n_cached, r.n_computed) == (len(files), N - len(files))
    assert_same(clean, r)


@needs_proc
def test_ctrl_c_stops_at_once_and_keeps_the_cache(tmp_path, clean):
    cache = tmp_path / "cache"
    proc = start_sweep(cache, 2, start_new_session=True)
    kids = {}
    try:
        assert wait_for_files(proc, cache, 3)
        kids = children(proc.pid)
        assert len(kids) >= 2
        os.killpg(proc.pid, signal.SIGINT)     # as a terminal does: the whole process group
        out, err = proc.communicate(timeout=60)       # without killing its workers: 300 s
        assert proc.returncode == 130 and out.decode().strip() == "interrupted", err.decode()
        assert "Traceback" not in err.decode(), err.decode()   # workers leave Ctrl-C to the parent
        assert wait_gone(kids, timeout=10) == []
    finally:
        proc.kill()
        proc.wait()
        kill_all(kids)
    files = cache_files(cache)
    assert len(files) == 3
    r = run_sweep(CFGS, build=slow_build, cache_dir=cache, workers=1, threads=1, progress=False)
    assert r.n_cached == len(files)
    assert_same(clean, r)


def test_worker_initializer_watches_its_parent():
    """A worker whose parent is not the expected process exits at once."""
    code = "from linfusion.sweep.worker import init_worker; init_worker(1); print('survived')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 1 and b"survived" not in done.stdout


# ---------------------------------------------------------------------- worker count
def test_workers_capped_at_points_and_cores(monkeypatch):
    started = []

    class Recording(execute.ProcessPoolExecutor):
        def __init__(self, n, **kw):
            started.append(n)
            super().__init__(n, **kw)

    monkeypatch.setattr(execute, "ProcessPoolExecutor", Recording)
    expect = min(execute.cores(), 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run_sweep(CFGS[:3], workers=1000, measure=measure_fn, progress=False)
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert msgs == [f"workers == 1000: using {expect} worker process(es) ({execute.cores()} core(s), "
                    "3 point(s) to compute)."]
    assert started == ([expect] if expect > 1 else [])
    assert r.n_computed == 3


# ---------------------------------------------------------------------- runs that are not usable
def raising_measure(result, config):
    """A measure that refuses a diverged run (its weights stopped at a huge, finite loss)."""
    if result.diverged:
        raise ValueError("threshold == inf, must be finite")
    return strict_measure(result, config)


def test_diverged_rows_keep_their_status(tmp_path):
    cfgs = [dict(CFGS[0]), {**CFGS[1], "lr": 50.0}, dict(CFGS[2])]
    with pytest.warns(RuntimeWarning, match="from training: diverged"):
        r = run_sweep(cfgs, measure=raising_measure, cache_dir=tmp_path / "c", workers=1, progress=False)
    assert [row["status"] for row in r.table] == ["completed", "diverged", "completed"]
    assert r.failures == []
    bad = r.table[1]
    assert bad["diverged"] is True and bad["error"] == ""
    assert np.isnan(bad["final_loss"]) and np.isnan(bad["w_tot_0_0"]) and np.isnan(bad["final_eg"])
    assert bad["note"].startswith("diverged: the loss") and "threshold == inf" in bad["note"]
    assert np.isnan(r.column("wa_last")[1]) and np.all(np.isfinite(r.column("wa_last")[[0, 2]]))
    # the same from the cache
    again = run_sweep(cfgs, measure=raising_measure, cache_dir=tmp_path / "c", workers=1, progress=False)
    assert again.n_cached == 3 and again.table[1]["status"] == "diverged" and again.table[1]["note"] == bad["note"]
    # an exception from measure on a usable run is still a failure
    with pytest.raises(SweepError, match="point 0 failed in measure"):
        run_sweep(cfgs[:1], measure=lambda res: 1 / 0, workers=1, progress=False)


@pytest.mark.parametrize("status", ["stalled", "diverged"])
def test_unusable_result_measures_nan(status):
    res = linfusion.train(linfusion.FusionNet((1, 1), 1, 5, 2, 2), sweep.build(sweep.normalize(CFGS[0]),
                          np.random.default_rng(0))[1], lr=0.05, epochs=20)
    import dataclasses
    fake = dataclasses.replace(res, status=status, message=f"{status}: injected")
    row = worker.measure_row(fake, sweep.normalize(CFGS[0]), strict_measure)
    assert row["status"] == status and row["note"].startswith(f"{status}: injected")
    assert np.isnan(row["final_loss"]) and np.isnan(row["w_tot_1_0"])
    assert row["final_epoch"] == 20 and row["wa_last"] == float(res.w_tot[0][-1, 0, 0])  # measure's own value


# ---------------------------------------------------------------------- checks before any work
def test_bad_cache_paths_fail_before_training(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    BUILDS.clear()
    for path, match in ((a_file, "is a file"), (a_file / "sub" / "cache", "lies under the file"),
                        ("", "non-empty folder path")):
        with pytest.raises((ValueError, TypeError), match=match) as info:
            run_sweep(CFGS[:2], build=counting_build, cache_dir=path, workers=1, progress=False)
        assert "cache_dir" in str(info.value)
        with pytest.raises((ValueError, TypeError), match=match):
            sweep.preflight(cache_dir=path)
    assert BUILDS == []
    assert sweep.check_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()                              # nothing created


def test_unwritable_cache_path(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):      # root: permissions do not apply; pretend the file system is read-only
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real(p, mode, **kw))
        with pytest.raises(ValueError, match="cache_dir == .*would be created in .*not writable"):
            run_sweep(CFGS[:1], cache_dir=ro / "cache", workers=1, progress=False)
        with pytest.raises(ValueError, match="--out == .* is not writable"):
            sweep.check_dir(ro, "--out")
    finally:
        ro.chmod(0o700)


def test_bad_scheduler_fails_before_work(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(execute, "CONNECT_TIMEOUT", 1.0)
    cache = tmp_path / "cache"
    run_sweep(CFGS[:2], cache_dir=cache, workers=1, progress=False)
    MEASURED.clear()
    for address, match in (("foo://host:1", "not a Dask scheduler address"),
                           ("tcp://127.0.0.1:99999", "not a Dask scheduler address"),
                           ("no-port", "not a Dask scheduler address"),
                           ("tcp://127.0.0.1:1", r"no Dask scheduler answered within 1 s")):
        with pytest.raises(ValueError, match=match) as info:      # every point is cached
            run_sweep(CFGS[:2], cache_dir=cache, scheduler=address, measure=counting_measure, progress=False)
        assert "scheduler ==" in str(info.value)
        with pytest.raises(ValueError, match=match):
            sweep.preflight(scheduler=address, timeout=1.0)
    assert MEASURED == []                      # the cache was not even read
    with pytest.raises(TypeError, match="scheduler == 3"):
        sweep.preflight(scheduler=3)
    with pytest.raises(ValueError, match="workers == 0"):
        sweep.preflight(workers=0)


# ---------------------------------------------------------------------- files
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        r = run_sweep(CFGS[:2], cache_dir=tmp_path / "cache", keep_trajectories=True, workers=1, progress=False)
        written = cache_files(tmp_path / "cache") + [r.to_csv(tmp_path / "t.csv"),
                                                     r.save_trajectories(tmp_path / "t.npz")]
    finally:
        os.umask(old)
    for path in written:
        assert (path.stat().st_mode & 0o777) == 0o666 & ~mask, path


def test_checksum_covers_the_record(tmp_path):
    cache = tmp_path / "cache"
    r = run_sweep(CFGS[:3], cache_dir=cache, workers=1, progress=False)
    victim = cache / f"{r.table[1]['key']}.npz"
    with np.load(victim) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    assert meta["status"] == "completed"
    meta["status"] = "converged"                               # the arrays are untouched
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(victim, **arrays)
    assert zipfile.is_zipfile(victim)
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_point(victim)
    with pytest.warns(CacheWarning, match=victim.name):
        again = run_sweep(CFGS[:3], cache_dir=cache, workers=1, progress=False)
    assert (again.n_cached, again.n_computed) == (2, 1) and again.table[1]["status"] == "completed"
    load_point(victim)


def test_reserved_and_clashing_keys():
    for key in ("seed", "status", "final_loss", "w_tot_0_0"):
        with pytest.raises(ValueError, match=f"config has key '{key}', a column the sweep fills itself"):
            sweep.normalize({key: 1}, build=counting_build)
    with pytest.raises(ValueError, match="'w' and 'w_0'|'w_0' and 'w'"):
        sweep.normalize({"w": [1.0], "w_0": 2.0}, build=counting_build)
    with pytest.raises(ValueError, match="config key 'final' gives the table column 'final_loss'"):
        sweep.normalize({"final": {"loss": 1.0}}, build=counting_build)
    with pytest.raises(SweepError, match="measure returned key 'w_star_0', which is already a column"):
        run_sweep(CFGS[:1], measure=lambda res: {"w_star_0": 1.0}, workers=1, progress=False)


def test_small_tasks_cache_as_they_finish(tmp_path, monkeypatch):
    """Points are cached as their train_many call returns, a few points per thread at a time."""
    log = []
    real_save, real_train = sweep.cache.save, worker.train_group
    monkeypatch.setattr(sweep.cache, "save", lambda *a, **k: (log.append("save"), real_save(*a, **k)))
    monkeypatch.setattr(worker, "train_group", lambda m: (log.append(len(m)), real_train(m))[1])
    cfgs = [{**c, "repeat": c["repeat"] + 2 * k} for k in range(4) for c in CFGS[:8]]    # 32 points, one shape
    run_sweep(cfgs, cache_dir=tmp_path, workers=1, threads=1, progress=False)
    assert log == [4, "save", "save", "save", "save"] * 8
