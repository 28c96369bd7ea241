"""sims.many_modalities (theory.md §10 item 17): K = 3 and 4 modalities, late and intermediate fusion.

The default run (n = 8192, width 100, four linear nets on the moment path) takes about two
seconds; it is checked against the exact maps from each run's own weights, the K-modality
closed form (late fusion) and the chain's gradient-flow ODE (intermediate fusion).
"""
import numpy as np
import pytest

import figtest
from figtest import STYLES, cli_error, figure_problems, quick_run
from sims import _io, many_modalities
from theory.fixed_points import late_fixed_point


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("many")
    assert many_modalities.main(["--out", str(out)]) == 0
    return out


def test_times_against_the_predictions(default_run):
    found = _io.load(default_run / "many_modalities")
    rows = figtest.rows(found["table"])
    assert len(rows) == 2 * 3 + 2 * 4
    for r in rows:
        assert r["status"] == "completed"
        # the exact map from the run's own initial weights is the run's gradient descent
        assert r["t_map_epochs"] == pytest.approx(r["t_sim_epochs"], rel=1e-6)
        # the closed form (late, leading order) within 15 %, the chain's flow ODE (lr -> 0) within 3 %
        tol = 0.15 if r["fusion"] == "late" else 0.03
        assert r["t_predicted_epochs"] == pytest.approx(r["t_sim_epochs"], rel=tol)
    rec = found["config"]["result"]
    for k in (3, 4):
        for kind in ("late", "intermediate"):
            p = rec[f"k{k}_{kind}"]
            assert p["order"] == list(range(1, k + 1))            # the strongest modality first
            t = np.array(p["t_sim_epochs"])
            assert np.all(np.diff(t) > 0)                         # one after another: a staircase


def test_the_staircase_sits_at_the_fixed_points(default_run):
    a = _io.load(default_run / "many_modalities.npz")
    for k in (3, 4):
        sigma, w = many_modalities.population(k)
        ep, loss = a[f"k{k}_late_epochs"], a[f"k{k}_late_loss_rel"]
        rec = _io.load(default_run / "many_modalities.json")["result"][f"k{k}_late"]
        t = np.array(rec["t_sim_epochs"])
        for j in range(k - 1):
            mid = int(np.argmin(np.abs(ep - 0.5 * (t[j] + t[j + 1]))))
            # population level of M_S, S the first j + 1 modalities (finite samples: a few %)
            syx, syy = w @ sigma, float(w @ sigma @ w)
            level = late_fixed_point(sigma, syx, syy, (1,) * k, tuple(range(j + 1))).loss / (0.5 * syy)
            assert loss[mid] == pytest.approx(level, rel=0.06, abs=0.01)


def test_configuration_errors(tmp_path, capsys):
    assert "--fuse-depth" in cli_error(many_modalities, ["--fuse-depth", "4", "--out", str(tmp_path)], capsys)
    assert "--scale" in cli_error(many_modalities, ["--scale", "1", "--out", str(tmp_path)], capsys)
    assert "--qui" in cli_error(many_modalities, ["--qui", "--out", str(tmp_path)], capsys)
    with pytest.raises(ValueError, match=r"fuse_depth == 3, must be < depth \(3\)"):
        many_modalities.Config(depth=3, fuse_depth=3)


@pytest.fixture(scope="module")
def quick():
    return quick_run(many_modalities)


@pytest.mark.parametrize("style", STYLES)
def test_figure_layout_and_fonts(style, quick):
    assert figure_problems(many_modalities, *quick, style) == []
