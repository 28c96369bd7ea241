"""Tests of sims.single (one run of any fusion network): its science against the fixed points of
theory.md §6.1, its forward pass against the training loss, its configuration and command line,
and its figure in every panel combination and house style.
"""
import numpy as np
import pytest

from figtest import STYLES, cli_error, figure_problems, quick_run
from linfusion.architecture import default_scale
from sims import _io, single


def _run_single(tmp_path, argv):
    assert single.main(argv + ["--out", str(tmp_path)]) == 0
    for suffix in (".png", ".npz", ".json"):
        assert (tmp_path / f"single{suffix}").exists()
    found = _io.load(tmp_path / "single")
    assert found["config"]["experiment"] == "sims.single"
    return found


def test_single_late_fusion_meets_its_fixed_points(tmp_path):
    """Linear late fusion (figure 2's run, quick size): plateau at L(M_A), end at M_*, ratio near theory."""
    found = _run_single(tmp_path, ["--quick"])
    a = found["arrays"]
    assert list(a["pred_points"]) == ["M_0", "M_A", "M_B", "M_*"]
    assert a["sim_plateau_loss"] == pytest.approx(a["pred_level_loss"][1], rel=0.02)
    assert a["sim_loss"][-1] < 1e-8 and a["sim_w_a"][-1] == pytest.approx(a["pred_level_w_a"][-1], abs=1e-4)
    # finite init and discrete steps put the simulation a few % under the flow formula (theory.md §9.3)
    assert a["sim_ratio"] == pytest.approx(a["pred_time_ratio"], rel=0.1)
    assert found["config"]["result"]["fuse_depth"] == 2          # --fuse-depth unset: late fusion, L_f = L
    # the theory curve of a two-layer linear run is the exact map: the run to rounding
    idx = a["sim_epochs"].astype(int)
    assert np.max(np.abs(a["pred_map_loss"][idx] - a["sim_loss"])) < 1e-10
    assert np.max(np.abs(a["pred_map_w_a"][idx] - a["sim_w_a"])) < 1e-10


def test_single_shallow_and_deep(tmp_path):
    a = _run_single(tmp_path / "shallow", ["--quick", "--depth", "1"])["arrays"]
    assert list(a["pred_points"]) == ["M_0", "M_*"] and a["sim_loss"][-1] < 1e-8
    assert "pred_map_loss" not in a                                # the Gram map is two-layer only
    a = _run_single(tmp_path / "deep", ["--quick", "--depth", "4", "--fuse-depth", "2", "--init", "layer",
                                        "--scale", "0.1", "--epochs", "3000"])["arrays"]
    assert a["sim_loss"][-1] < 1e-6 and np.isfinite(a["sim_ratio"]) and a["sim_ratio"] < a["pred_time_ratio"] + 0.5


def test_single_relu_and_logistic(tmp_path):
    a = _run_single(tmp_path / "relu", ["--quick", "--slope", "0", "--epochs", "600", "--features",
                                        "--contour"])["arrays"]
    assert "pred_points" not in a                        # no fixed-point levels for a ReLU net
    assert a["sim_w_a"].max() > 1.5                      # W_tot bookkeeping -> ≈ 2x (theory.md §6.9)
    assert a["sim_units"].shape == (40, 2) and a["sim_plane_out"].shape == (81, 81)
    a = _run_single(tmp_path / "logistic", ["--quick", "--loss", "logistic", "--scale", "0.1",
                                            "--epochs", "300"])["arrays"]
    assert a["sim_loss"][-1] < a["sim_loss"][0] and "sim_eg" not in a


def test_single_xor_features(tmp_path):
    a = _run_single(tmp_path, ["--quick", "--data", "xor", "--slope", "0", "--fuse-depth", "1", "--scale", "1e-3",
                               "--epochs", "300", "--features", "--contour"])["arrays"]
    assert a["sim_units"].shape == (20, 2) and a["sim_unit_color"].shape == (20,)


@pytest.mark.parametrize("extra", [dict(slope=0.0, bias=True),
                                   dict(depth=3, fuse_depth=2, slope=0.2, bias=True, init="layer", scale=0.3)])
def test_network_output_reproduces_the_training_loss(extra):
    cfg = single.Config.quick(epochs=200, **extra)
    sim = single.run(cfg)
    ds = single.dataset(cfg)
    y_hat = single.network(cfg, ds).forward(sim["w"], ds.xs)
    assert 0.5 * np.mean((ds.y - y_hat) ** 2) == pytest.approx(sim["loss"][-1], rel=1e-10)


# ---------------------------------------------------------------------- configuration and command line
def test_init_layer_without_scale_trains_at_the_library_default(tmp_path):
    """An unset --scale is the library's default for the scheme, not a second default in sims."""
    base = dict(init="layer", depth=4, fuse_depth=2, epochs=5)
    unset, given = single.run(single.Config.quick(**base)), single.run(single.Config.quick(scale=default_scale("layer"),
                                                                                            **base))
    np.testing.assert_array_equal(unset["w0"], given["w0"])
    entry = single.run(single.Config.quick(**{**base, "init": "entry"}))
    assert np.max(np.abs(entry["w0"])) < 1e-6 < np.max(np.abs(unset["w0"]))
    found = _run_single(tmp_path, ["--quick", "--init", "layer", "--depth", "4", "--fuse-depth", "2", "--epochs", "5"])
    assert found["config"]["config"]["scale"] is None and found["config"]["result"]["scale"] == default_scale("layer")


def test_single_config_rules():
    with pytest.raises(ValueError, match="fuse_depth == 3"):
        single.Config(fuse_depth=3)
    with pytest.raises(ValueError, match="n == 10"):
        single.Config(data="xor", n=10)
    single.Config(data="toy", n=10)                      # the multiple of 4 is XOR's rule only
    with pytest.raises(TypeError, match="bias"):
        single.Config(bias="yes")
    assert single.Config().fusion_layer == 2 and single.Config(depth=5).fusion_layer == 5


@pytest.mark.parametrize("argv", [["--fuse-depth", "3"], ["--data", "multi", "--dim", "7"],
                                  ["--data", "xor", "--n", "10"], ["--depth", "1", "--features"],
                                  ["--data", "multi", "--contour"], ["--rho", "1"], ["--n", "0"], ["--lr", "inf"],
                                  ["--seed", "-1"], ["--slope", "2"], ["--loss", "hinge"], ["--scale", "-1"],
                                  ["--tol", "nan"], ["--weight-decay", "-1"], ["--record-every", "0"],
                                  ["--sigma-a", "0"], ["--depth", "0"], ["--width", "1.5"]])
def test_single_impossible_settings(argv, tmp_path, capsys):
    err = cli_error(single, argv + ["--out", str(tmp_path)], capsys)
    assert any(flag in err for flag in argv if flag.startswith("--"))


def test_single_rejects_abbreviations(tmp_path, capsys):
    assert "--qui" in cli_error(single, ["--qui", "--out", str(tmp_path)], capsys)


def test_single_diverged_run_is_reported(tmp_path, capsys):
    assert single.main(["--quick", "--lr", "3", "--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "diverged" in out and "Traceback" not in err
    assert not (tmp_path / "single.png").exists()


# ---------------------------------------------------------------------- figures
CASES = {
    "late": {},
    "five_panels": dict(features=True, contour=True),                       # 2 + 3 panels
    "xor_relu": dict(data="xor", slope=0.0, fuse_depth=1, scale=1e-3, epochs=300, features=True, contour=True),
    "deep_multi": dict(data="multi", n=70, depth=3, init="layer", epochs=600),
}


@pytest.fixture(scope="module")
def case_runs():
    return {name: quick_run(single, **given) for name, given in CASES.items()}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", list(CASES))
def test_figure_layout_and_fonts(case, style, case_runs):
    """No overlapping or clipped text (the level labels included), no legend over data, TrueType fonts."""
    assert figure_problems(single, *case_runs[case], style) == []


@pytest.mark.parametrize("case, panels", [("late", 3), ("five_panels", 5), ("xor_relu", 4)])
def test_figure_has_no_empty_panel(case, panels, case_runs):
    fig = single.plot(*case_runs[case])
    drawn = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(drawn) == panels and all(ax.has_data() for ax in drawn)
