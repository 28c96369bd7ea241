"""Tests of the two-layer sweeps: sims.toy_sweep (figure 6), sims.rand_sweep (figure 7) and
their shared measurement (sims._sweeps).

The original's read-out is checked against an emulation of its training loop written here
from its rules (main.py's loop and stop, util.time_half, sweep.sweep's keep rule and
misattribution), not from the code under test. The sweeps run in their quick settings in
this process (``workers=1``), output and cache under tmp_path.
"""
import dataclasses
import warnings

import numpy as np
import pytest

import figcheck
from linfusion import FusionNet, train
from linfusion.data import random_stats, toy
from sims import _io, _style, rand_sweep, toy_sweep
from sims._cli import Execution
from linfusion.analysis import measured_misattribution, nearest_time
from sims._sweeps import keep_mask, readout

QUICK_RUN = ["--quick", "--workers", "1"]


def _execution(tmp_path):
    return Execution(workers=1, cache=str(tmp_path / "cache"), progress=False)


# ---------------------------------------------------------------------- the original's read-out
def _original_loop(states_w, states_loss, epoch, stop=1e-4):
    """The original main.train's records: Ls[i] = loss of state i, W[i] = weights of state i + 1;
    at the first i with Ls[i] < 1e-4 (sweeps only) both are cut to [:i]."""
    Ls, W = [], []
    for i in range(epoch):
        Ls.append(states_loss[i])
        W.append(states_w[i + 1])
        if Ls[i] < stop:
            return np.array(Ls[:i]), np.array(W[:i])
    return np.array(Ls), np.array(W)


def _time_half(arr, half=None):
    """util.time_half: the index of the record nearest half (half of the maximum by default)."""
    if half is None:
        half = np.max(arr) / 2
    return int(np.argmin((arr - half) ** 2))


def test_paper_readout_on_a_hand_built_trajectory():
    """Record k = state after k updates; the original's index is one less, and it never sees state 0."""
    epochs = np.arange(7)
    w_a = np.array([0.0, 0.1, 0.3, 0.45, 0.8, 1.0, 1.0])
    w_b = np.array([5.0, 0.0, 0.0, 0.0, 0.2, 0.6, 1.0])     # state 0 is not a record of the original
    # nearest to 0.5: record 3 (0.45) -> index 2; B: half of max over records 1.. = 0.5 -> record 5 -> index 4
    t_a, t_b = nearest_time(epochs, w_a, 0.5), nearest_time(epochs, w_b, 0.5 * w_b[1:].max())
    assert (t_a, t_b) == (2.0, 4.0)
    # misattribution at index (2 + 4)//2 = 3, i.e. record 4 (0.8), against the last record (1.0)
    assert measured_misattribution(epochs, w_a, t_a, t_b, convention="paper") == pytest.approx(-0.2)
    # the record-k convention (nearest record) is one later
    assert int(np.argmin(np.abs(w_a - 0.5))) == 3 and int(np.argmin(np.abs(w_b - 0.5))) == 5


@pytest.mark.parametrize("rho, ratio, slope", [(0.5, 2.0, 1.0), (-0.3, 1.5, 1.0), (0.0, 1.0, 1.0), (0.3, 2.0, 0.0)])
def test_readout_matches_an_emulation_of_the_original(rho, ratio, slope):
    """Train once; replay the states through the original's loop, time_half and misattribution."""
    ds = toy(rho, ratio, 2048, rng=3)
    net = FusionNet((1, 1), 1, 20, 2, 2, slope, False)
    epochs = 3000
    full = train(net, ds, lr=0.04, epochs=epochs, rng=4)              # every state 0..epochs
    res = train(net, ds, lr=0.04, epochs=epochs, rng=4, tol=1e-4)     # the sweep's run
    assert res.status == "converged"
    states_w = full.w_tot_all[:, 0, :]
    Ls, W = _original_loop(states_w, full.loss, epochs)
    half_a = None if ratio == 1 else (1 + rho / ratio) / 2 * (2 if slope == 0 else 1)
    ta = _time_half(W[:, 0], half_a)
    tb = _time_half(W[:, 1])
    want_mis = (W[(ta + tb) // 2, 0] - W[-1, 0]) / W[-1, 0]
    got = readout(res, "paper", wa_uni=1 + rho / ratio, wb_star=1.0, relu=slope == 0, a_from_max=ratio == 1)
    assert (got["t_a"], got["t_b"]) == (ta, tb)
    assert got["time_ratio"] == tb / ta
    assert got["misattribution"] == pytest.approx(want_mis, rel=1e-12)
    assert got["keep_loss"] == Ls[-1]
    # the original's records are exactly ours from record 1 on, up to the converged state
    np.testing.assert_array_equal(W, res.w_tot_all[1:, 0, :])


def test_readout_of_an_unusable_run_is_nan():
    ds = toy(0.0, 2.0, 512, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train(FusionNet.late((1, 1), width=10), ds, lr=5.0, epochs=50, scale=0.5, rng=0)
    assert res.status == "diverged"
    got = readout(res, "paper", wa_uni=1.0, wb_star=1.0)
    assert all(np.isnan(v) for v in got.values())


def test_keep_mask_counts_each_reason():
    keep, counts = keep_mask(["converged", "diverged", "completed", "converged", "stalled"],
                             np.array([1e-5, np.nan, 5e-3, 1e-5, np.nan]),
                             np.array([4.0, np.nan, 3.0, np.nan, np.nan]), 1e-3)
    assert keep.tolist() == [True, False, False, False, False]
    assert counts == dict(unusable=2, unconverged=1, unmeasured=1)


# ---------------------------------------------------------------------- toy_sweep
def test_toy_sweep_paper_scale_plan():
    """The original's toy_sweep: r in {3, 2, 1.5, 1} x 9 rho x (linear, ReLU) x 5 repeats = 360 runs."""
    cfg = toy_sweep.Config()
    pts = toy_sweep.points(cfg)
    assert len(pts) == 360
    assert sorted({p["ratio"] for p in pts}) == [1.0, 1.5, 2.0, 3.0]
    np.testing.assert_allclose(sorted({p["rho"] for p in pts}), np.linspace(-0.9, 0.9, 9), atol=1e-15)
    assert sum(p["slope"] == 1.0 for p in pts) == 180 and sum(p["slope"] == 0.0 for p in pts) == 180
    assert {p["n"] for p in pts} == {8192}                       # the ReLU nets too
    assert {(p["lr"], p["epochs"], p["tol"], p["init"], p["scale"], p["width"], p["arch"], p["depth"])
            for p in pts} == {(0.04, 40000, 1e-4, "entry", 1e-9, 100, "late", 2)}
    assert sorted({p["repeat"] for p in pts}) == [0, 1, 2, 3, 4]
    assert cfg.convention == "paper" and cfg.drop_loss == 1e-3
    # every run is a point of its own: its own data draw and initial weights, as the original
    assert len({tuple(sorted(p.items())) for p in pts}) == 360


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_sweep")
    assert toy_sweep.main(QUICK_RUN + ["--out", str(out)]) == 0
    return out


def test_toy_sweep_quick_outputs(toy_run):
    found = _io.load(toy_run / "toy_sweep")
    a, table = found["arrays"], found["table"]
    # quick: r in {2, 1} x rho in {-0.5, 0, 0.5} x 2 variants x 1 repeat
    assert a["time_ratio"].shape == (12,) and int(a["relu"].sum()) == 6
    assert len(table["variant"]) == 12 and int(a["kept"].sum()) == 12
    assert {"t_a_epochs", "t_b_epochs", "time_ratio", "misattribution", "status", "kept", "seed"} <= set(table)
    r1 = np.asarray(table["sigma_ratio"]) == 1.0
    assert np.all(np.isnan(np.asarray(table["misattribution"], dtype=float)[r1]))
    assert np.all(np.isnan(np.asarray(table["misattribution_theory"], dtype=float)[r1]))
    assert set(np.asarray(table["n_samples"])) == {8192}
    cfg = found["config"]
    assert cfg["config"]["seed"] == 0 and cfg["command"].startswith("python -m sims.toy_sweep")
    assert cfg["result"]["runs"] == 12 and len(cfg["result"]["points"]) == 12


def test_toy_sweep_quick_matches_theory(toy_run):
    """Linear nets at r = 2: t_B/t_A within 6 % of the exact GD map and below the flow formula (a
    mode grows by (1 + ηs)² per step, not e^{2ηs}: at ρ = 0.5 the map itself is 9 % below the
    formula, theory.md §9.3); misattribution within 0.02 of ρ/r."""
    a = _io.load(toy_run / "toy_sweep.npz")
    i = int(np.flatnonzero(a["ratios"] == 2.0)[0])
    for j, rho in enumerate(a["rhos"]):
        sel = (~a["relu"]) & (a["ratio"] == 2.0) & (a["rho"] == rho)
        measured = a["time_ratio"][sel]
        assert a["map_points"][i, j] < a["ratio_points"][i, j] and np.all(measured < a["ratio_points"][i, j])
        assert np.all(np.abs(measured / a["map_points"][i, j] - 1) < 0.06), (rho, measured)
        assert np.all(np.abs(a["misattribution"][sel] - rho / 2.0) < 0.02)
    # ReLU nets: the same ratio within 20 %
    sel = a["relu"] & (a["ratio"] == 2.0)
    expected = 1 + 3 / (1 - a["rho"][sel] ** 2)
    assert np.all(np.abs(a["time_ratio"][sel] / expected - 1) < 0.2)


def test_toy_sweep_second_run_is_cached(toy_run, capsys):
    before = (toy_run / "toy_sweep.csv").read_text()
    capsys.readouterr()
    assert toy_sweep.main(QUICK_RUN + ["--out", str(toy_run)]) == 0
    assert "points 12 from cache, 0 computed" in capsys.readouterr().out
    assert (toy_run / "toy_sweep.csv").read_text() == before


@pytest.mark.parametrize("bad", [{"ratios": (0.5,)}, {"rhos": (0.2, 1.0)}, {"linear": False, "relu": False},
                                 {"repeats": 0}, {"record_every": 2}, {"convention": "nearest"}])
def test_toy_sweep_impossible_settings(bad):
    with pytest.raises((ValueError, TypeError)) as exc:
        toy_sweep.Config.quick(**bad)
    assert any(name in str(exc.value) for name in bad)


def test_toy_sweep_interp_records_less_often():
    assert toy_sweep.Config(convention="interp", record_every=5).record_every == 5


@pytest.mark.parametrize("module", [toy_sweep, rand_sweep])
def test_abbreviations_are_rejected(module, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(["--qui"])
    assert exc.value.code == 2 and "--qui" in capsys.readouterr().err


# ---------------------------------------------------------------------- rand_sweep
def test_original_statistics_are_lag_twolayer():
    """--stats original: sweep.lag_twolayer's formula, written out here from the original."""
    ds = random_stats(20, 4096, rng=np.random.default_rng(5))
    xa, xb, y = ds.xs[0], ds.xs[1], ds.y
    y_xa, y_xb = np.mean(y * xa, axis=0), np.mean(y * xb, axis=0)
    cov_a, cov_ab = ds.sigma[:10, :10], ds.sigma[:10, 10:]
    wa_uni = y_xa @ np.linalg.inv(cov_a)
    lag = 1 + (np.linalg.norm(y_xa) - np.linalg.norm(y_xb)) / np.linalg.norm(y_xb - wa_uni @ cov_ab)
    got, plateau = rand_sweep.prediction(ds, "original")
    if lag < 1:
        assert np.isnan(got)
    else:
        assert got == pytest.approx(lag, rel=1e-12)
    assert plateau == pytest.approx(np.linalg.norm(wa_uni), rel=1e-12)
    emp = rand_sweep.prediction(ds, "empirical")[0]
    assert emp != got                   # the statistics matter


def _check_draw_rule(cfg, sim):
    """Candidates in order: window-rejected ones untrained; the plotted runs are the first
    `draws` candidates that passed the window and the keep rule."""
    cand = sim["cand_predicted"]
    inside = (cand >= cfg.lo) & (cand <= cfg.hi)
    assert np.array_equal(sim["draw"], np.flatnonzero(inside)[:len(sim["draw"])])
    ok = (sim["keep_loss"] < cfg.drop_loss) & np.isin(sim["status"], ["completed", "converged"])
    assert np.array_equal(sim["converged"], ok)
    want = sim["draw"][ok][:cfg.draws]
    assert np.array_equal(sim["draw"][sim["plotted"]], want)
    c = sim["counts"]
    last = want[-1] if len(want) == cfg.draws else len(cand) - 1
    assert c["attempts"] == last + 1
    assert c["rejected"] == int((~inside[:last + 1]).sum())
    assert c["trained"] == int(inside[:last + 1].sum()) == c["plotted"] + c["not_converged"] + c["unusable"]


def test_rand_sweep_quick(tmp_path):
    out = tmp_path / "out"
    assert rand_sweep.main(QUICK_RUN + ["--out", str(out)]) == 0
    found = _io.load(out / "rand_sweep")
    a, table = found["arrays"], found["table"]
    assert int(a["plotted"].sum()) == 3 and int(a["n_plotted"]) == 3
    assert np.all((a["predicted"] >= 1) & (a["predicted"] <= 20))
    assert set(np.asarray(table["stats"])) == {"original"}
    # the heuristic vector formula: each plotted run within 30 % of its prediction
    k = a["plotted"]
    assert np.all(np.abs(a["time_ratio"][k] / a["predicted"][k] - 1) < 0.3)
    assert found["config"]["result"]["counts"]["plotted"] == 3


def test_rand_sweep_draws_until_converged(tmp_path):
    """Too few epochs for some draws: they are trained, fail the keep rule and are replaced."""
    cfg = rand_sweep.Config.quick(draws=3, epochs=14000)
    sim = rand_sweep.run(cfg, _execution(tmp_path))
    assert sim["counts"]["not_converged"] >= 1 and sim["counts"]["plotted"] == 3
    _check_draw_rule(cfg, sim)
    # the same selection when asked again, from the cache
    again = rand_sweep.run(cfg, _execution(tmp_path))
    assert again["n_computed"] == 0
    np.testing.assert_array_equal(again["draw"][again["plotted"]], sim["draw"][sim["plotted"]])


def test_rand_sweep_cap_on_attempts(tmp_path):
    cfg = rand_sweep.Config.quick(draws=3, max_attempts=2)
    with pytest.warns(UserWarning, match="only .* of 3 runs converged within --max-attempts 2"):
        sim = rand_sweep.run(cfg, _execution(tmp_path))
    assert sim["capped"] and sim["counts"]["attempts"] == 2 and sim["counts"]["plotted"] <= 2
    _check_draw_rule(cfg, sim)


@pytest.mark.parametrize("bad", [{"lo": 5.0, "hi": 2.0}, {"dim": 3}, {"stats": "mixed"}, {"draws": 0},
                                 {"max_attempts": 0}, {"lo": 0.5}])
def test_rand_sweep_impossible_settings(bad):
    with pytest.raises((ValueError, TypeError)) as exc:
        rand_sweep.Config.quick(**bad)
    assert any(name in str(exc.value) for name in bad)


@pytest.mark.slow
def test_rand_sweep_bitwise_across_workers(tmp_path):
    """Selection and every number are the same with 1 and 2 worker processes."""
    cfg = rand_sweep.Config.quick(draws=3, epochs=14000)
    one = rand_sweep.run(cfg, Execution(workers=1, cache=None, progress=False))
    two = rand_sweep.run(cfg, Execution(workers=2, cache=None, progress=False))
    for key in ("cand_predicted", "draw", "plotted", "t_a", "t_b", "time_ratio", "keep_loss", "final_loss"):
        np.testing.assert_array_equal(one[key], two[key])


# ---------------------------------------------------------------------- figures
@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """Each module's quick result once; plotted in every style by the tests."""
    out = {}
    for module in (toy_sweep, rand_sweep):
        cfg = module.Config.quick()
        ex = Execution(workers=1, cache=str(tmp_path_factory.mktemp(module.NAME) / "cache"), progress=False)
        result = module.run(cfg, ex)
        out[module.NAME] = (module, cfg, result, module.predict(cfg, result))
    return out


@pytest.mark.parametrize("style", _style.STYLES)
@pytest.mark.parametrize("name", ["toy_sweep", "rand_sweep"])
def test_figure_layout(figures, name, style):
    import matplotlib.pyplot as plt

    module, cfg, result, pred = figures[name]
    _style.use(style)
    try:
        fig = module.plot(cfg, result, pred)
        assert figcheck.layout_problems(fig) == []
        assert "Type3" not in figcheck.pdf_font_types(_io.figure_bytes(fig, "pdf"))
        plt.close(fig)
    finally:
        _style.use("screen")


def test_figures_count_dropped_runs(figures):
    """A run that fails the keep rule is counted on the figure and in the summary."""
    module, cfg, result, pred = figures["toy_sweep"]
    sim = dict(result)
    sim["kept"] = result["kept"].copy()
    sim["kept"][0] = False
    sim["counts"] = dict(unusable=0, unconverged=1, unmeasured=0)
    fig = module.plot(cfg, sim, pred)
    texts = " ".join(t.get_text() for t in fig.legends[0].get_texts()) + fig.legends[0].get_title().get_text()
    assert "11 of 12 runs kept" in texts and "1 dropped" in texts
    assert "1 dropped (loss ≥ 0.001: 1)" in module.summary(cfg, sim, pred)


def test_quick_changes_what_it_lists():
    assert dataclasses.replace(toy_sweep.Config.quick(), ratios=(3.0,)).n == 8192
    assert rand_sweep.Config.quick().draws == 3
