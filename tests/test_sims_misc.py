"""Smoke and science tests of sims.generalization, sims.heatmaps and sims.xor (theory.md §10
figures 13, 4-5 and 14).

The generalisation runs are linear (moment path) and cheap even at paper scale, so one test
runs the over-parameterised case n = 70 at the paper's D = 100 and checks the facts of
theory.md §6.8; the XOR test uses the quick setting (ReLU nets, sample path). The layout
tests draw each figure once per house style from one quick run.
"""
import numpy as np
import pytest

from figtest import STYLES, cli_error, figure_problems, quick_run, rows
from sims import _io, generalization, heatmaps, xor
from sims._cli import Execution

MODULES = (generalization, heatmaps, xor)


def _outputs(tmp_path, name, suffixes=(".png", ".npz", ".json")):
    for suffix in suffixes:
        assert (tmp_path / f"{name}{suffix}").exists()
    found = _io.load(tmp_path / name)
    assert found["config"]["experiment"] == f"sims.{name}"
    return found


# ---------------------------------------------------------------------- generalization
def test_generalization_quick(tmp_path):
    assert generalization.main(["--quick", "--out", str(tmp_path)]) == 0
    found = _outputs(tmp_path, "generalization", (".png", ".npz", ".json", ".csv"))
    a = found["arrays"]
    assert list(a["sim_n_values"]) == [14, 140]
    assert len(rows(found["table"])) == 4
    for n in (14, 140):
        for arch in ("early", "late"):
            eg = a[f"sim_n{n}_{arch}_eg"]
            assert eg.shape == (3001,)
            # the exact Gram-state map reproduces the run, on the singular Σ of n = 14 < D as well
            np.testing.assert_allclose(a[f"pred_n{n}_{arch}_map_eg"], eg, atol=1e-12)
            np.testing.assert_allclose(a[f"pred_n{n}_{arch}_map_norm_a"], a[f"sim_n{n}_{arch}_norm_a"], atol=1e-12)
    assert a["pred_n14_rank"] == 14 and a["pred_n140_rank"] == 20          # Σ used as it is, no ridge
    assert a["pred_eg_ma_pop"] == pytest.approx(0.5 * 10 * 0.01)      # ½ W_B* Σ_B W_B*ᵀ at D = 20
    # n > D: one least-squares solution, early and late end at the same E_g
    assert a["sim_n140_late_eg"][-1] == pytest.approx(a["sim_n140_early_eg"][-1], rel=1e-3)


def test_generalization_overparameterised_paper_scale(tmp_path):
    """n = 70 < D = 100 at the paper's settings: the generalisation deficit of late fusion."""
    assert generalization.main(["--n-values", "70", "--no-flow", "--out", str(tmp_path)]) == 0
    by_arch = {r["arch"]: r for r in rows(_io.load(tmp_path / "generalization.csv"))}
    early, late = by_arch["early"], by_arch["late"]
    assert late["final_norm_a"] > late["final_norm_b"]          # permanent unimodal bias
    assert late["best_eg"] > early["best_eg"] and late["final_eg"] > early["final_eg"]
    assert late["n_local_minima"] >= 2
    assert late["map_max_dev_eg"] < 1e-12 and early["map_max_dev_eg"] < 1e-12     # singular Σ (rank 70), no ridge
    # the report's numbers (theory.md §6.8)
    assert (late["final_eg"], late["best_eg"], late["best_epoch"]) == (pytest.approx(1.2179, abs=1e-4),
                                                                       pytest.approx(0.5368, abs=1e-4), 175)
    assert (early["final_eg"], early["best_eg"], early["best_epoch"]) == (pytest.approx(0.6148, abs=1e-4),
                                                                          pytest.approx(0.3645, abs=1e-4), 179)
    a = _io.load(tmp_path / "generalization.npz")
    assert a["pred_eg_ma_pop"] == pytest.approx(0.25)
    assert "pred_n70_early_flow_eg" not in a                      # --no-flow skips the ODE


@pytest.mark.filterwarnings("ignore::RuntimeWarning")      # divergence, overflow: expected here
def test_generalization_diverged_run_is_an_error(tmp_path, capsys):
    assert generalization.main(["--quick", "--lr", "1.5", "--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "diverged" in out and "no usable run" in err and "Traceback" not in err
    assert not (tmp_path / "generalization.png").exists()
    table = rows(_io.load(tmp_path / "generalization.csv"))
    assert len(table) == 4 and {r["status"] for r in table} >= {"diverged"}   # kept, with their status
    assert all(np.isnan(r["final_eg"]) for r in table if r["status"] == "diverged")


def test_generalization_config_rules():
    with pytest.raises(ValueError, match="dim == 7"):
        generalization.Config(dim=7)
    with pytest.raises(ValueError, match="n_values"):
        generalization.Config(n_values=(70, 70))
    with pytest.raises(ValueError, match="init"):
        generalization.Config(init="balanced")
    assert generalization.Config(n_values=[70]).n_values == (70,)


# ---------------------------------------------------------------------- heatmaps
def test_heatmaps_quick(tmp_path):
    assert heatmaps.main(["--quick", "--out", str(tmp_path)]) == 0
    a = _outputs(tmp_path, "heatmaps")["arrays"]
    assert a["pred_time_ratio"].shape == a["pred_misattribution"].shape == (25, 25)


def test_heatmaps_paper_grid_landmarks(tmp_path):
    assert heatmaps.main(["--out", str(tmp_path)]) == 0
    a = _io.load(tmp_path / "heatmaps.npz")
    t, m = a["pred_time_ratio"], a["pred_misattribution"]
    assert t.shape == (100, 100)
    np.testing.assert_allclose(t, t[:, ::-1], rtol=1e-12)            # symmetric in ρ (signed form)
    np.testing.assert_allclose(m, -m[:, ::-1], atol=1e-15)           # antisymmetric in ρ
    np.testing.assert_allclose(t[0], 1.0)                            # r = 1
    assert np.max(np.abs(m)) == pytest.approx(0.92)
    for r, rho, exact, from_grid, table in a["pred_landmarks"]:
        assert from_grid == pytest.approx(table, abs=0.01)          # 9.0, 53.08, 20.53 of theory.md §8
        assert exact == pytest.approx(table, abs=0.005)


def test_heatmaps_trains_nothing_and_offers_no_workers(capsys):
    assert heatmaps.KIND == "theory" and heatmaps.run(heatmaps.Config()) == {}
    assert "--workers" in cli_error(heatmaps, ["--workers", "2"], capsys)


# ---------------------------------------------------------------------- xor
def test_xor_quick(tmp_path):
    assert xor.main(["--quick", "--out", str(tmp_path)]) == 0
    found = _outputs(tmp_path, "xor", (".png", ".npz", ".json", ".csv"))
    a = found["arrays"]
    assert list(a["sim_panel_sigma"]) == [1.0, 3.0]
    assert a["sim_panel0_early_units_b"].shape == (20, 2)
    np.testing.assert_array_equal(a["sim_panel0_late_units_a"], 0.0)   # late B units never see x_A
    assert a["sim_sweep_late_loss_rel"].shape == (2, 2)
    # late fusion learns the whole task with the four XOR directions
    np.testing.assert_array_equal(a["sim_sweep_late_learned"], True)
    np.testing.assert_array_equal(a["sim_sweep_late_n_dirs"], 4)
    table = rows(found["table"])
    assert len(table) == 8 and {"loss_rel", "learned_all", "n_directions", "status"} <= set(table[0])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")      # divergence, overflow: expected here
def test_xor_diverged_runs_keep_their_rows(tmp_path, capsys):
    argv = ["--quick", "--lr", "50", "--epochs", "50", "--workers", "1", "--out", str(tmp_path)]
    assert xor.main(argv) == 1                                    # nothing usable to draw
    out, err = capsys.readouterr()
    assert "8 run(s) not usable" in out and "Traceback" not in err
    table = rows(_io.load(tmp_path / "xor.csv"))
    assert len(table) == 8 and {r["status"] for r in table} == {"diverged"}
    assert all(np.isnan(r["loss_rel"]) and np.isnan(r["n_directions"]) for r in table)


def test_count_directions():
    units = np.array([[1.0, 1.0], [2.0, 2.1], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [1e-3, 0.0]])
    assert xor.count_directions(units) == 4              # the tiny unit is below 10 % of the max
    assert xor.count_directions(units[:2]) == 1
    assert xor.count_directions(np.zeros((3, 2))) == 0


def test_xor_config_rules():
    with pytest.raises(ValueError, match="n == 10"):
        xor.Config(n=10)
    with pytest.raises(ValueError, match="slope"):
        xor.Config(slope=1.0)                            # a linear net cannot learn XOR
    assert xor.Config(sweep_sigma=()).sweep_sigma == ()   # no sweep
    assert len(xor.configs(xor.Config(sweep_sigma=(), sigma_a=(1.0, 2.0)))) == 4


def test_xor_without_sweep_draws_no_sweep_row(tmp_path):
    cfg = xor.Config.quick(sweep_sigma=(), sigma_a=(2.0,), epochs=200)
    result = xor.run(cfg, Execution(workers=1, progress=False))
    assert "sweep_sigma" not in result and len(result["table"]) == 2
    fig = xor.plot(cfg, result, xor.predict(cfg, result))
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 3     # loss, early, late


# ---------------------------------------------------------------------- command line of all three
@pytest.mark.parametrize("module, argv", [
    (generalization, ["--dim", "7"]),
    (generalization, ["--n-values", "1"]),
    (generalization, ["--n-values", "70,x"]),
    (generalization, ["--lr", "inf"]),
    (generalization, ["--seed", "-1"]),
    (generalization, ["--noise", "-0.5"]),
    (generalization, ["--scale", "0"]),
    (heatmaps, ["--rho-max", "1"]),
    (heatmaps, ["--rho-min", "nan"]),
    (heatmaps, ["--ratio-min", "0.5"]),
    (heatmaps, ["--n-rho", "1"]),
    (heatmaps, ["--form", "abs"]),
    (xor, ["--n", "10"]),
    (xor, ["--n", "0"]),
    (xor, ["--sigma-a", "-1"]),
    (xor, ["--sweep-sigma", "1,inf"]),
    (xor, ["--lr", "inf"]),
    (xor, ["--seed", "-1"]),
    (xor, ["--repeats", "0"]),
    (xor, ["--learned-threshold", "1"]),
    (xor, ["--merge-angle", "180"]),
])
def test_bad_values_exit_with_a_usage_error(module, argv, tmp_path, capsys):
    err = cli_error(module, argv + ["--out", str(tmp_path)], capsys)
    assert argv[0] in err


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_abbreviations_are_rejected(module, tmp_path, capsys):
    assert "--qui" in cli_error(module, ["--qui", "--out", str(tmp_path)], capsys)


# ---------------------------------------------------------------------- figures
@pytest.fixture(scope="module")
def quick_runs():
    return {module.NAME: quick_run(module) for module in MODULES}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_figure_layout_and_fonts(module, style, quick_runs):
    """No overlapping or clipped text, no legend over data, TrueType fonts in the PDF."""
    assert figure_problems(module, *quick_runs[module.NAME], style) == []
