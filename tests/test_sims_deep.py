"""Tests of the deep-fusion experiments: sims.fusion_depth, rho_sweep, ratio_sweep, init_sweep (figures 9-12).

Quick settings in this process (``--quick`` sweeps run without worker processes), with output
and cache under tmp_path.
"""
import csv

import numpy as np
import pytest

import figcheck
from linfusion import FusionNet, train
from linfusion.data import Moments, toy
from linfusion.sweep import run_point
from sims import _cli, _deep, _deep_sweep, _io, _style, fusion_depth, init_sweep, ratio_sweep, rho_sweep
from theory.dynamics import chain_map
from theory.two_layer import toy_stats

SWEEPS = [rho_sweep, ratio_sweep, init_sweep]
MODULES = [fusion_depth, *SWEEPS]
IN_PROCESS = _cli.Execution(workers=1, cache=None, progress=False)


def _load_all(out, name, table=True):
    got = _io.load(out / name)
    assert (out / f"{name}.png").exists()
    assert set(got) == ({"arrays", "config", "table"} if table else {"arrays", "config"})
    return got


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------ the sweeps
@pytest.mark.parametrize("module", SWEEPS, ids=lambda m: m.NAME)
def test_sweep_smoke(module, tmp_path):
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    got = _load_all(tmp_path, module.NAME)
    n = 4 * len(module.Config.quick().values)            # L_f = 4..1, one repeat per value
    assert len(got["table"]["status"]) == n
    assert got["arrays"]["time_ratio"].shape == (n,)
    assert got["arrays"]["pred_curve"].shape == (4, 100)
    assert got["arrays"]["kept"].all()
    # tidy CSV: units in the names, `seed` only for the random seed, initial scales by layer
    rows = _rows(tmp_path / f"{module.NAME}.csv")
    cols = set(rows[0])
    assert {"seed", "t_a_epochs", "t_b_epochs", "chain_t_a_epochs", "init_sv_a_1", "init_sv_b_4",
            "init_sv_shared_4", "status", "kept", "note"} <= cols
    assert not [c for c in cols if c.startswith("seed_") or c in ("t_a", "w_star")]
    assert {r["seed"] for r in rows} == {"0"}
    lf1 = [r for r in rows if r["fuse_depth"] == "1"][0]
    assert float(lf1["init_sv_a_1"]) > 0 and lf1["init_sv_a_2"] == "nan" and float(lf1["init_sv_shared_2"]) > 0
    record = got["config"]
    assert record["command"].startswith(f"python -m sims.{module.NAME} ") and record["result"]["runs_used"] == n


def test_balanced_sweep_matches_chain_and_is_ordered(tmp_path):
    assert rho_sweep.main(["--quick", "--init-scheme", "balanced", "--values", "-0.5,0.5",
                           "--out", str(tmp_path)]) == 0
    a = _io.load(tmp_path / "rho_sweep.npz")
    np.testing.assert_allclose(a["time_ratio"], a["pred_chain_ratio"], rtol=0.01)
    # ordered by fusion layer at each rho: L_f = 4 > 3 > 2 > 1
    for x in (-0.5, 0.5):
        sel = np.isclose(a["x"], x)
        order = a["fuse_depth"][sel][np.argsort(a["time_ratio"][sel])]
        assert list(order) == [1, 2, 3, 4]


def test_diverged_runs_are_counted_not_fatal(tmp_path, capsys):
    """issue 11.1: every run diverges at lr 5: exit status 1, no figure, rows kept with their status."""
    assert rho_sweep.main(["--quick", "--lr", "5", "--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "12 run(s), 0 used; not used: 12 diverged" in out
    assert "no usable run" in err
    assert not (tmp_path / "rho_sweep.png").exists()
    rows = _rows(tmp_path / "rho_sweep.csv")
    assert len(rows) == 12
    assert {r["status"] for r in rows} == {"diverged"} and {r["kept"] for r in rows} == {"False"}
    for r in rows:
        assert r["time_ratio"] == r["t_a_epochs"] == r["chain_ratio"] == r["init_sv_a_1"] == "nan"
        assert r["note"].startswith("diverged: the loss") and "try lr" in r["note"]
    record = _io.load(tmp_path / "rho_sweep.json")["result"]
    assert record["runs"] == {"layer": {"diverged": 12}} and record["runs_used"] == 0


def test_partly_diverged_sweep_draws_the_rest():
    """Unusable runs are left out of the figure's means and counted in its panel title."""
    cfg = rho_sweep.Config.quick(lr=0.2, epochs=5000)
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = rho_sweep.run(cfg, IN_PROCESS)
    n_bad = int(np.sum(result["status"] == "diverged"))
    assert 0 < n_bad < 12 and result["kept"].any()
    assert np.all(np.isnan(result["time_ratio"][result["status"] == "diverged"]))
    pred = rho_sweep.predict(cfg, result)
    assert np.all(np.isnan(pred["chain_ratio"][result["status"] == "diverged"]))
    n_high = int(np.sum(np.isin(result["status"], ("completed", "converged")) & ~result["kept"]))
    fig = rho_sweep.plot(cfg, result, pred)
    title = fig.axes[0].get_title()
    assert f"{int(result['kept'].sum())} of 12 runs used\nnot used: {n_bad} diverged" in title
    assert (f"{n_high} above keep loss" in title) == (n_high > 0)
    assert figcheck.layout_problems(fig) == []
    assert f"not used: {n_bad} diverged" in rho_sweep.summary(cfg, result, pred)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_measure_point_never_raises_on_a_diverged_run():
    net = FusionNet((1, 1), 1, 8, 3, 2)
    with pytest.warns(RuntimeWarning):
        res = train(net, toy(0.0, 2.0, 256, rng=0), lr=5.0, epochs=200, init="layer", scale=0.1, rng=1)
    assert res.status == "diverged"
    row = _deep_sweep.measure_point(res, dict(rho=0.0, ratio=2.0, fuse_depth=2, depth=3), convention="paper")
    assert row["measure_note"].startswith("diverged")
    numbers = {k: v for k, v in row.items() if k != "measure_note"}
    assert set(numbers) >= {"t_a_epochs", "t_b_epochs", "time_ratio", "thr_a", "thr_b", "init_sv_a_1",
                            "init_sv_shared_3"}
    assert all(np.isnan(v) for v in numbers.values())


def test_measure_run_refuses_non_finite_weights_of_a_completed_run():
    net = FusionNet((1, 1), 1, 8, 3, 2)
    res = train(net, toy(0.0, 2.0, 256, rng=0), lr=0.04, epochs=20, init="layer", scale=0.1, rng=1)
    res.w_tot[1][-1] = np.inf                        # a run the engine called usable, with a blown-up record
    m = _deep.measure_run(res, wa_uni=1.0, wb_star=1.0, convention="interp")
    assert np.isnan(m["t_a_epochs"]) and np.isnan(m["time_ratio"]) and "not finite" in m["note"]


@pytest.mark.parametrize("module, argv, flag", [
    (rho_sweep, ["--values", "0.5,1.0"], "--values"),
    (rho_sweep, ["--values", ","], "--values"),
    (rho_sweep, ["--fuse-depths", "5"], "--fuse-depths"),
    (rho_sweep, ["--fuse-depths", "0"], "--fuse-depths"),
    (rho_sweep, ["--scale", "1.5"], "--scale"),
    (rho_sweep, ["--ratio", "0.5"], "--ratio"),
    (rho_sweep, ["--repeats", "0"], "--repeats"),
    (rho_sweep, ["--lr", "inf"], "--lr"),
    (rho_sweep, ["--seed", "-1"], "--seed"),
    (rho_sweep, ["--drop-loss", "0"], "--drop-loss"),
    (rho_sweep, ["--rho", "0.5"], "--rho"),          # swept: its values are --values
    (rho_sweep, ["--workers", "0"], "--workers"),
    (ratio_sweep, ["--rho", "1"], "--rho"),
    (ratio_sweep, ["--values", "0.5"], "--values"),
    (init_sweep, ["--values", "0,0.1"], "--values"),
    (init_sweep, ["--values", "0.1,1.2"], "--values"),
    (init_sweep, ["--scale", "0.1"], "--scale"),     # swept
    (fusion_depth, ["--depth", "3", "--fuse-depths", "4"], "--fuse-depths"),
    (fusion_depth, ["--fuse-depths", "2,2"], "--fuse-depths"),
    (fusion_depth, ["--convention", "nearest"], "--convention"),
    (fusion_depth, ["--init-scheme", "both"], "--init-scheme"),
    (fusion_depth, ["--n", "1"], "--n"),
    (fusion_depth, ["--cache", "x"], "--cache"),     # trains no sweep
])
def test_impossible_setting_is_a_usage_error_naming_the_option(module, argv, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(argv + ["--out", str(tmp_path)])
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_abbreviations_are_rejected(module, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(["--qui", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--qui" in capsys.readouterr().err


def test_negative_values_and_quick_values():
    cfg, _ = _cli.parse(rho_sweep, ["--values", "-0.5,0.5", "--quick"])
    assert cfg.values == (-0.5, 0.5) and cfg.width == 50 and cfg.repeats == 1
    cfg, _ = _cli.parse(rho_sweep, ["--quick", "--width", "20"])
    assert cfg.values == (-0.6, 0.0, 0.6) and cfg.width == 20
    assert rho_sweep.Config().values == pytest.approx(np.linspace(-0.9, 0.9, 9), abs=1e-12)
    assert ratio_sweep.Config.quick().values == (1.5, 2.5) and init_sweep.Config.quick().values == (0.1, 0.18)
    assert fusion_depth.Config.quick() == fusion_depth.Config(width=50)
    assert fusion_depth.Config().lf_list == [4, 3, 2, 1] and fusion_depth.Config(fuse_depths=(2,)).lf_list == [2]
    # a notebook Config is checked like the command line
    with pytest.raises(ValueError, match="values"):
        rho_sweep.Config(values=(0.2, 1.0))


def test_unset_scale_is_the_librarys_default():
    from linfusion.architecture import default_scale
    assert rho_sweep.Config().scale is None
    assert _deep.scale_of(rho_sweep.Config(), "layer") == default_scale("layer")
    assert _deep.scale_of(rho_sweep.Config(scale=0.05)) == 0.05


# ------------------------------------------------------------------ figure 9
def test_fusion_depth_smoke_and_phenomenon(tmp_path, capsys):
    assert fusion_depth.main(["--quick", "--out", str(tmp_path)]) == 0
    a = _load_all(tmp_path, "fusion_depth", table=False)["arrays"]
    # later fusion converges later, and the plateau is L(M_A)/L(M_0) of the data (0.2 in population)
    assert list(a["fuse_depths"][np.argsort(a["final_epoch"])]) == [1, 2, 3, 4]
    assert a["pred_plateau"] == pytest.approx(0.2, abs=0.01)
    assert a["time_ratio"][0] > 3.0 and a["time_ratio"][-1] < 1.1     # L_f = 4 and L_f = 1
    # the chain's scale factor reproduces the run's t_A; t_B is a prediction (within 10 %)
    np.testing.assert_allclose(a["pred_fit_t_a_epochs"], a["t_a_epochs"], rtol=0.01)
    np.testing.assert_allclose(a["pred_fit_t_b_epochs"], a["t_b_epochs"], rtol=0.1)
    # the chain from the run's own scales, nothing fitted: the ratio within 8 % (theory.md §9.4) ...
    np.testing.assert_allclose(a["pred_chain_ratio"], a["time_ratio"], rtol=0.08)
    # ... while its times run early (the network first aligns its layers) and the closed form's far earlier
    early = a["pred_chain_t_a_epochs"] / a["t_a_epochs"]
    assert np.all((early > 0.4) & (early < 0.8))
    assert np.all(a["pred_closed_t_a_epochs"] < a["pred_chain_t_a_epochs"])
    out = capsys.readouterr().out
    for what in ("chain map: exact chain map", "chain x c: the same chain", "closed: closed form"):
        assert what in out


def test_balanced_init_meets_the_chain_exactly(tmp_path):
    """With the rank-one balanced init the network is its chain: times agree to about an epoch."""
    assert fusion_depth.main(["--quick", "--init-scheme", "balanced", "--out", str(tmp_path)]) == 0
    a = _io.load(tmp_path / "fusion_depth.npz")
    np.testing.assert_allclose(a["pred_fit_factor"], 1.0)
    np.testing.assert_allclose(a["pred_chain_t_a_epochs"], a["t_a_epochs"], atol=1.0)
    np.testing.assert_allclose(a["pred_chain_t_b_epochs"], a["t_b_epochs"], atol=1.0)
    assert not [k for k in a if k.startswith("pred_fit_loss_")]     # no second curve when nothing is fitted


def test_fusion_depth_diverged(tmp_path, capsys):
    assert fusion_depth.main(["--quick", "--lr", "5", "--fuse-depths", "4,1", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "L_f = 4 not usable, not drawn: diverged" in out and "L_f = 1 not usable" in out
    assert not (tmp_path / "fusion_depth.png").exists()
    a = _io.load(tmp_path / "fusion_depth.npz")
    assert list(a["status"]) == ["diverged", "diverged"] and np.all(np.isnan(a["pred_chain_ratio"]))


# ------------------------------------------------------------------ layout of every figure
@pytest.fixture(scope="module")
def quick_runs():
    """Quick runs of every figure, computed once (in this process, no cache)."""
    runs = {}
    for module, cfg in ((fusion_depth, fusion_depth.Config.quick()),
                        (rho_sweep, rho_sweep.Config.quick(init_scheme="both")),
                        (ratio_sweep, ratio_sweep.Config.quick()), (init_sweep, init_sweep.Config.quick())):
        result = module.run(cfg, IN_PROCESS)
        runs[module.NAME] = (module, cfg, result, module.predict(cfg, result))
    return runs


@pytest.mark.parametrize("style", _style.STYLES)
@pytest.mark.parametrize("name", [m.NAME for m in MODULES])
def test_figure_layout(quick_runs, name, style):
    import matplotlib
    import matplotlib.pyplot as plt
    matplotlib.use("Agg")
    module, cfg, result, pred = quick_runs[name]
    _style.use(style)
    try:
        fig = module.plot(cfg, result, pred)
        assert figcheck.layout_problems(fig) == []
        if style == "paper":
            assert fig._suptitle is None
        else:
            assert "\n" not in fig._suptitle.get_text()             # one-line title
        if style == "paper":                                       # camera-ready: no Type 3 font
            fonts = figcheck.pdf_font_types(_io.figure_bytes(fig, "pdf"))
            assert fonts and "Type3" not in fonts
        plt.close(fig)
    finally:
        _style.use("screen")


def test_fusion_colors_are_the_ordered_family(quick_runs):
    import matplotlib.colors as mcolors
    module, cfg, result, pred = quick_runs["fusion_depth"]
    fig = module.plot(cfg, result, pred)
    ax = fig.axes[0]
    for lf in cfg.lf_list:
        want = mcolors.to_hex(_style.fusion_color(lf, cfg.depth))
        dashed = [ln for ln in ax.get_lines() if mcolors.to_hex(ln.get_color()) == want and ln.get_linestyle() == "--"]
        assert len(dashed) == 1                      # the theory curve of L_f, in its colour
    import matplotlib.pyplot as plt
    plt.close(fig)


# ------------------------------------------------------------------ the scalar chain
@pytest.mark.parametrize("fuse_depth", [1, 2, 3, 4])
def test_chain_times_equals_theory_chain_map(fuse_depth):
    """The sweeps' chain_times is theory's batched chain map: per chain, chain_map's crossings."""
    rng = np.random.default_rng(fuse_depth)
    rhos = (-0.4, 0.5)
    stats = [toy_stats(rho, 2.0) for rho in rhos]
    sxx = np.array([s[0] for s in stats])
    syx = np.array([s[1][0] for s in stats])
    pre = rng.uniform(0.02, 0.06, size=(2, 2, fuse_depth))
    post = rng.uniform(0.02, 0.06, size=(2, 4 - fuse_depth))
    thr = np.array([[0.5 * (1 + rho / 2.0), 0.5] for rho in rhos])      # half of W_A^uni, half of W_B(M_*)
    got = _deep.chain_times(sxx, syx, pre, post, 0.04, thr[:, 0], thr[:, 1], 40000)
    assert np.all(np.isfinite(got))
    trs = [chain_map(sxx[i], syx[i], stats[i][2], 4, fuse_depth, np.arange(int(got.max()) + 2), 0.04,
                     layer_scales=(pre[i], post[i])) for i in range(2)]
    np.testing.assert_allclose(thr, [tr.thresholds for tr in trs], rtol=1e-15)
    np.testing.assert_allclose(got, [[tr.t_a, tr.t_b] for tr in trs], rtol=1e-13)
    # stop at A: B's crossings are left out (NaN) where they come after the last A crossing
    at_a = _deep.chain_times(sxx, syx, pre, post, 0.04, thr[:, 0], thr[:, 1], 40000, stop=0)
    np.testing.assert_array_equal(at_a[:, 0], got[:, 0])
    assert np.all(np.isnan(at_a[:, 1]) | (at_a[:, 1] == got[:, 1]))


def test_moments_are_rebuilt_from_the_sweep_seed():
    """The chain of a sweep point uses its own data: the documented seed contract of run_sweep."""
    cfg = dict(arch="deep", depth=3, fuse_depth=2, width=8, data="toy", rho=0.3, ratio=2.0, n=256,
               epochs=5, init="layer", scale=0.1)
    res = run_point(cfg, seed=7, index=3)
    sxx, syx = _deep_sweep.moments_of(cfg, 7, 3)
    net = FusionNet((1, 1), 1, 8, 3, 2)
    # gradient descent on a linear net sees the data only through its moments (syy: loss only)
    mine = train(net, Moments(sxx=sxx, syx=syx[None], syy=1.0), lr=0.04, epochs=5, w0=res.w0)
    np.testing.assert_allclose(mine.w_tot_all, res.w_tot_all, rtol=1e-12, atol=1e-15)


def test_chain_scales_of_balanced_init_are_the_scalar_chain():
    net = FusionNet((1, 1), 1, 20, 4, 2)
    w = net.init("balanced", 0.1, 0, align=np.array([[1.0, 1.0]]))
    pre, post = _deep.chain_scales(net, w)
    np.testing.assert_allclose(pre, 0.1)
    np.testing.assert_allclose(post, np.sqrt(2) * 0.1)


@pytest.mark.parametrize("convention", ["interp", "paper"])
def test_chain_times_in_the_runs_convention(convention):
    """A chain's crossing is reported as linfusion.analysis reads a run: within half an epoch of its
    own trajectory read in that convention (the 'paper' one is the original's index, theory.md §7.4)."""
    from linfusion import analysis
    sxx, syx, syy = toy_stats(0.3, 2.0)
    pre, post = np.full((2, 2), 0.05), np.full(2, 0.05 * np.sqrt(2))
    thr = (0.5 * (1 + 0.3 / 2.0), 0.5)
    got = _deep.chain_times(sxx[None], syx[0][None], pre[None], post[None], 0.04, thr[0:1], thr[1:2], 40000,
                            convention=convention)[0]
    tr = chain_map(sxx, syx, syy, 4, 2, np.arange(int(np.nanmax(got)) + 3), 0.04, layer_scales=(pre, post))
    read = analysis.nearest_time if convention == "paper" else analysis.crossing_time
    for k in (0, 1):
        assert abs(got[k] - read(tr.epochs, tr.w_tot[:, k], thr[k])) <= (0.5 if convention == "paper" else 1e-9)
