"""What linfusion.sweep hands back: tidy CSV, pandas, trajectories file, repr, one-line warnings."""
import csv
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from linfusion import sweep
from linfusion.sweep import grid, run_sweep
from test_sweep import CFGS, N, SMALL, TESTS, _tag, flaky_build, measure_fn


def none_measure(result, config):
    """A measure with an undefined quantity (None) for repeat 1."""
    return {"t_half_epochs": None if config["repeat"] == 1 else 3.0, "label": f"r{config['repeat']}"}


def warning_measure(result):
    warnings.warn("measured warning", UserWarning)
    return {}


def warning_build(config, rng):
    warnings.warn("injected warning\nwith a second line", RuntimeWarning)
    return sweep.build(config, rng)


@pytest.fixture(scope="module")
def collected():
    """A sweep with a failed point (4), early stops (tol) and a measure with None values."""
    os.environ["LF_SWEEP_FAIL"] = _tag(CFGS[4])
    try:
        cfgs = [{**c, "w_star": (1.0, 0.5), **({"tol": 0.5} if i % 3 == 0 else {})} for i, c in enumerate(CFGS)]
        return run_sweep(cfgs, seed=7, build=flaky_build, measure=none_measure, errors="collect",
                         keep_trajectories=True, workers=1, progress=False)
    finally:
        del os.environ["LF_SWEEP_FAIL"]


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_is_tidy(tmp_path, collected):
    r = collected
    assert r.table[4]["status"] == "failed" and "injected build failure" in r.table[4]["error"]
    rows = read_csv(r.to_csv(tmp_path / "s.csv"))
    cols = list(rows[0])
    assert len(rows) == N and cols == r.flat_columns
    assert len(cols) == len(set(cols))
    assert "w_star" not in cols and cols.index("w_star_1") == cols.index("w_star_0") + 1
    for row in rows:
        for value in row.values():
            assert not value.startswith(("[", "{")), value            # no JSON in cells
    assert {row["seed"] for row in rows} == {"7"}                    # the root seed, and only it
    assert [row["w_star_0"] for row in rows] == ["1.0"] * N and [row["w_star_1"] for row in rows] == ["0.5"] * N
    # undefined numbers are nan; measure's None became NaN in the table too
    assert rows[1]["t_half_epochs"] == "nan" and np.isnan(r.table[1]["t_half_epochs"])
    assert rows[0]["t_half_epochs"] == "3.0"
    assert rows[4]["final_loss"] == "nan" and rows[4]["t_half_epochs"] == ""   # failed: never measured
    # floats read back to the same bits
    assert [float(row["final_loss"]) for row in rows if row["status"] != "failed"] == \
        [row["final_loss"] for row in r.table if row["status"] != "failed"]
    assert {row["status"] for row in rows} >= {"failed", "converged", "completed"}


def test_to_pandas(collected, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        collected.to_pandas()
    monkeypatch.undo()
    pd = pytest.importorskip("pandas")
    df = collected.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == collected.flat_columns and len(df) == N
    assert np.array_equal(df["final_loss"].to_numpy(float), collected.column("final_loss").astype(float),
                          equal_nan=True)
    assert np.isnan(df["t_half_epochs"][4]) and df["w_star_0"].dtype.kind == "f"


def test_save_trajectories(tmp_path, collected):
    r = collected
    path = r.save_trajectories(tmp_path / "s_trajectories.npz")
    with np.load(path, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    lengths = [0 if t is None else len(t.epochs) for t in r.trajectories]
    assert list(a["length"]) == lengths and len(set(lengths) - {0}) > 1     # ragged: early stops
    assert list(a["key"]) == [row["key"] for row in r.table] and list(a["index"]) == list(range(N))
    assert list(a["status"]) == [row["status"] for row in r.table]
    assert a["epochs"].shape == (N, max(lengths))
    for i, t in enumerate(r.trajectories):
        k = lengths[i]
        assert np.all(np.isnan(a["loss"][i, k:])) and np.all(np.isnan(a["w_tot"][i, k:]))
        if t is None:
            assert k == 0 and np.all(np.isnan(a["w"][i]))
            continue
        assert np.array_equal(a["epochs"][i, :k], t.epochs) and np.array_equal(a["loss"][i, :k], t.loss)
        assert np.array_equal(a["eg"][i, :k], t.eg)
        assert np.array_equal(a["w_tot"][i, :k, :t.net.out_dim, :t.net.in_dim], t.w_tot_all)
        assert np.array_equal(a["w"][i, :a["n_params"][i]], t.w) and np.array_equal(a["w0"][i, :t.w0.size], t.w0)
        assert list(a["in_dims"][i]) == list(t.net.in_dims)
    # sweeps of different widths: w padded to the largest
    mixed = run_sweep(grid(width=[3, 5], **{k: v for k, v in SMALL.items() if k != "width"}),
                      keep_trajectories=True, workers=1, progress=False)
    with np.load(mixed.save_trajectories(tmp_path / "m.npz")) as z:
        assert list(z["n_params"]) == [t.w.size for t in mixed.trajectories]
        assert np.isnan(z["w"][0, z["n_params"][0]:]).all() and not np.isnan(z["w"][1]).any()
    bare = run_sweep(CFGS[:1], workers=1, progress=False)
    with pytest.raises(ValueError, match="keep_trajectories=True"):
        bare.save_trajectories(tmp_path / "x.npz")


def test_repr_is_short(collected):
    text = repr(collected)
    assert "\n" not in text and len(text) < 200
    counts = {s: sum(row["status"] == s for row in collected.table) for s in ("completed", "converged", "failed")}
    assert min(counts.values()) > 0
    for status, n in counts.items():
        assert f"{n} {status}" in text
    assert text.startswith(f"SweepResult({N} points: ") and f"{N - 1} computed, 0 cached" in text


def test_training_warnings_are_one_line_each_above_the_bar(tmp_path):
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(TESTS)!r})
        from linfusion.sweep import run_sweep
        import test_sweep_output as t
        from test_sweep import CFGS
        r = run_sweep(CFGS[:4], build=t.warning_build, workers=1, progress=True)
        r = run_sweep(CFGS[:4], workers=1000, progress=True)
        for _ in range(2):          # computed, then cached (measured here)
            r = run_sweep(CFGS[:2], measure=t.warning_measure, cache_dir=sys.argv[1], workers=1, progress=True)
    """)
    done = subprocess.run([sys.executable, "-W", "default", "-c", code, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    segments = [seg for line in done.stderr.split("\n") for seg in line.split("\r") if seg.strip()]
    warned = [seg for seg in segments if not seg.startswith("sweep: ")]     # the rest is the bar
    cores = len(os.sched_getaffinity(0))
    assert warned == [
        "<linfusion.sweep>:0: RuntimeWarning: from training: injected warning with a second line",
        f"<linfusion.sweep>:0: UserWarning: workers == 1000: using {min(cores, 4)} worker process(es) "
        f"({cores} core(s), 4 point(s) to compute).",
        "<linfusion.sweep>:0: UserWarning: from training: measured warning",
        "<linfusion.sweep>:0: UserWarning: from measure: measured warning"]
    assert sum(seg.startswith("sweep: 100%") for seg in segments) >= 4
