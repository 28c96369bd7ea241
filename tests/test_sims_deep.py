"""Tests of the deep-fusion experiments: sims.fusion_depth, rho_sweep, ratio_sweep, init_sweep."""
import numpy as np
import pytest

from linfusion import FusionNet, train
from linfusion.data import Moments
from linfusion.sweep import run_point
from sims import _common, _deep, fusion_depth, init_sweep, ratio_sweep, rho_sweep
from theory.dynamics import chain_map
from theory.two_layer import toy_stats

SWEEPS = [rho_sweep, ratio_sweep, init_sweep]


def _load_all(out, name, table=True):
    got = _common.load(out / name)
    assert (out / f"{name}.png").exists()
    assert set(got) == ({"arrays", "config", "table"} if table else {"arrays", "config"})
    return got


@pytest.mark.parametrize("module", SWEEPS, ids=lambda m: m.__name__)
def test_sweep_smoke(module, tmp_path):
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    got = _load_all(tmp_path, module.AXIS.name)
    n = 4 * len(module.AXIS.quick)               # L_f = 4..1, one repeat per value
    assert len(got["table"]) == n
    assert got["arrays"]["time_ratio"].shape == (n,)
    assert got["arrays"]["pred_curve"].shape == (4, 100)
    assert got["arrays"]["kept"].all()


def test_fusion_depth_smoke_and_phenomenon(tmp_path):
    assert fusion_depth.main(["--quick", "--out", str(tmp_path)]) == 0
    a = _load_all(tmp_path, "fusion_depth", table=False)["arrays"]
    # later fusion converges later, and the plateau is L(M_A)/L(M_0) of the data (0.2 in population)
    assert list(a["fuse_depths"][np.argsort(a["final_epoch"])]) == [1, 2, 3, 4]
    assert a["pred_plateau"] == pytest.approx(0.2, abs=0.01)
    assert a["time_ratio"][0] > 3.0 and a["time_ratio"][-1] < 1.1     # L_f = 4 and L_f = 1
    # the chain's scale factor reproduces the run's t_A; t_B is a prediction (within 10 %)
    np.testing.assert_allclose(a["pred_chain_t_a"], a["t_a"], rtol=0.01)
    np.testing.assert_allclose(a["pred_chain_t_b"], a["t_b"], rtol=0.1)


def test_balanced_init_meets_the_chain_exactly(tmp_path):
    """With the rank-one balanced init the network is its chain: times agree to about an epoch."""
    assert fusion_depth.main(["--quick", "--init-scheme", "balanced", "--out", str(tmp_path)]) == 0
    a = _common.load(tmp_path / "fusion_depth.npz")
    np.testing.assert_allclose(a["pred_factor"], 1.0)
    np.testing.assert_allclose(a["pred_chain_t_a"], a["t_a"], atol=1.0)
    np.testing.assert_allclose(a["pred_chain_t_b"], a["t_b"], atol=1.0)


def test_balanced_sweep_matches_chain_and_is_ordered(tmp_path):
    assert rho_sweep.main(["--quick", "--init-scheme", "balanced", "--values=-0.5,0.5",
                           "--out", str(tmp_path)]) == 0
    a = _common.load(tmp_path / "rho_sweep.npz")
    np.testing.assert_allclose(a["time_ratio"], a["pred_chain_ratio"], rtol=0.01)
    # ordered by fusion layer at each rho: L_f = 4 > 3 > 2 > 1
    for x in (-0.5, 0.5):
        sel = np.isclose(a["x"], x)
        order = a["fuse_depth"][sel][np.argsort(a["time_ratio"][sel])]
        assert list(order) == [1, 2, 3, 4]


@pytest.mark.parametrize("argv", [["--rho", "1"], ["--values", "0.5,1.0"], ["--fuse-depths", "5"],
                                  ["--scale", "1.5"], ["--ratio", "0.5"], ["--repeats", "0"]])
def test_impossible_setting_is_an_argparse_error(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        rho_sweep.main(argv + ["--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--" in capsys.readouterr().err


def test_fusion_depth_impossible_setting(tmp_path):
    with pytest.raises(SystemExit) as exc:
        fusion_depth.main(["--depth", "3", "--fuse-depths", "4", "--out", str(tmp_path)])
    assert exc.value.code == 2


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
    sxx, syx = _deep._moments_of(cfg, 7, 3)
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
