"""Smoke and science tests of sims.generalization, sims.heatmaps and sims.xor (THEORY.md §10
figures 13, 4-5 and 14).

The generalisation runs are linear (moment path) and cheap even at paper scale, so one test
runs the over-parameterised case n = 70 at the paper's D = 100 and checks the facts of
THEORY.md §6.8; the XOR test uses the quick setting (ReLU nets, sample path).
"""
import numpy as np
import pytest

from sims import _common, generalization, heatmaps, xor


def _outputs(tmp_path, name, suffixes=(".png", ".npz", ".json")):
    for suffix in suffixes:
        assert (tmp_path / f"{name}{suffix}").exists()
    found = _common.load(tmp_path / name)
    assert found["config"]["experiment"] == name
    return found


# ---------------------------------------------------------------------- generalization
def test_generalization_quick(tmp_path):
    assert generalization.main(["--quick", "--out", str(tmp_path)]) == 0
    found = _outputs(tmp_path, "generalization", (".png", ".npz", ".json", ".csv"))
    a = found["arrays"]
    assert list(a["sim_n_values"]) == [14, 140]
    assert len(found["table"]) == 4
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
    rows = {r["arch"]: r for r in _common.load(tmp_path / "generalization.csv")}
    early, late = rows["early"], rows["late"]
    assert late["final_norm_a"] > late["final_norm_b"]          # permanent unimodal bias
    assert late["best_eg"] > early["best_eg"] and late["final_eg"] > early["final_eg"]
    assert late["n_local_minima"] >= 2
    assert late["map_max_dev_eg"] < 1e-12 and early["map_max_dev_eg"] < 1e-12     # singular Σ (rank 70), no ridge
    # the report's numbers (THEORY.md §6.8)
    assert (late["final_eg"], late["best_eg"], late["best_epoch"]) == (pytest.approx(1.2179, abs=1e-4),
                                                                       pytest.approx(0.5368, abs=1e-4), 175)
    assert (early["final_eg"], early["best_eg"], early["best_epoch"]) == (pytest.approx(0.6148, abs=1e-4),
                                                                          pytest.approx(0.3645, abs=1e-4), 179)
    a = _common.load(tmp_path / "generalization.npz")
    assert a["pred_eg_ma_pop"] == pytest.approx(0.25)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")      # divergence, overflow: expected here
def test_generalization_diverged_run_is_an_error(tmp_path, capsys):
    assert generalization.main(["--quick", "--lr", "1.5", "--out", str(tmp_path)]) == 1
    assert "diverged" in capsys.readouterr().err
    assert not (tmp_path / "generalization.png").exists()


def test_generalization_bad_dim():
    with pytest.raises(SystemExit) as exc:
        generalization.main(["--dim", "7"])
    assert exc.value.code == 2


# ---------------------------------------------------------------------- heatmaps
def test_heatmaps_quick(tmp_path):
    assert heatmaps.main(["--quick", "--out", str(tmp_path)]) == 0
    a = _outputs(tmp_path, "heatmaps")["arrays"]
    assert a["pred_time_ratio"].shape == a["pred_misattribution"].shape == (25, 25)


def test_heatmaps_paper_grid_landmarks(tmp_path):
    assert heatmaps.main(["--out", str(tmp_path)]) == 0
    a = _common.load(tmp_path / "heatmaps.npz")
    t, m = a["pred_time_ratio"], a["pred_misattribution"]
    assert t.shape == (100, 100)
    np.testing.assert_allclose(t, t[:, ::-1], rtol=1e-12)            # symmetric in ρ (signed form)
    np.testing.assert_allclose(m, -m[:, ::-1], atol=1e-15)           # antisymmetric in ρ
    np.testing.assert_allclose(t[0], 1.0)                            # r = 1
    assert np.max(np.abs(m)) == pytest.approx(0.92)
    for r, rho, exact, from_grid, table in a["pred_landmarks"]:
        assert from_grid == pytest.approx(table, abs=0.01)          # 9.0, 53.08, 20.53 of THEORY §8
        assert exact == pytest.approx(table, abs=0.005)


def test_heatmaps_bad_rho():
    with pytest.raises(SystemExit) as exc:
        heatmaps.main(["--rho-max", "1"])
    assert exc.value.code == 2


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
    assert len(found["table"]) == 8 and {"loss_rel", "learned_all", "n_directions"} <= set(found["table"][0])


def test_count_directions():
    units = np.array([[1.0, 1.0], [2.0, 2.1], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [1e-3, 0.0]])
    assert xor.count_directions(units) == 4              # the tiny unit is below 10 % of the max
    assert xor.count_directions(units[:2]) == 1
    assert xor.count_directions(np.zeros((3, 2))) == 0


def test_xor_bad_n():
    with pytest.raises(SystemExit) as exc:
        xor.main(["--n", "10"])
    assert exc.value.code == 2
