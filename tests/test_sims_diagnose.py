"""sims.diagnose: data files (.npz, .csv) and bundled examples through Config/run/main, usage errors, figure.

The synthetic files hold three modalities of 1, 2 and 4 inputs (the last stored as 2×2 images)
with distinct strengths; the linear nets train on the moment path, so a confirmed diagnosis
takes a second or two. The scikit-learn examples are skipped when scikit-learn (the optional
extra ``linfusion[examples]``) is not installed.
"""
import csv
import json

import numpy as np
import pytest

from figtest import STYLES, cli_error, figure_problems
from sims import _io, diagnose


def synthetic(n=600, seed=0, classification=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    b = rng.standard_normal((n, 2)) + 0.3 * a[:, None]
    c = rng.standard_normal((n, 2, 2))
    y = 1.5 * a + 0.7 * b.sum(axis=1) + 0.25 * c.reshape(n, 4).sum(axis=1) + 0.3 * rng.standard_normal(n)
    if classification:
        y = np.where(y > 0, 1.0, -1.0)
    return {"a": a, "b": b, "c": c, "y": y}


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def write_csv(path, arrays, drop=None):
    cols = {"age": arrays["a"], "h1": arrays["b"][:, 0], "h2": arrays["b"][:, 1]}
    cols.update({f"p{j}": arrays["c"].reshape(len(arrays["y"]), 4)[:, j] for j in range(4)})
    cols["outcome"] = arrays["y"]
    if drop:
        cols.pop(drop)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(cols))
        for row in zip(*cols.values()):
            w.writerow([f"{v:.10g}" for v in row])
    return str(path)


CSV_MODALITIES = ["--modality", "demo=age", "--modality", "heart=h1,h2", "--modality", "image=p0,p1,p2,p3",
                  "--target", "outcome"]


# ---------------------------------------------------------------------- runs
def test_npz_every_array_a_modality(tmp_path, capsys):
    path = write_npz(tmp_path / "data.npz", synthetic())
    assert diagnose.main(["--data", path, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Diagnosis of 3 modalities on 480 training samples, 120 held out" in out
    assert "learning order in the simulation: a → b → c (as predicted)" in out
    found = _io.load(tmp_path / "out" / "diagnose")
    rec = found["config"]["result"]
    assert rec["order"] == ["a", "b", "c"] and rec["names"] == ["a", "b", "c"]
    assert rec["dims"] == [1, 2, 4]
    assert "curve_progress" not in rec["late"]            # the curves go to the .npz
    a = found["arrays"]
    sim, pred = a["sim_t_epochs"], a["late_t_map_epochs"]
    np.testing.assert_allclose(sim, pred, rtol=0.03)                   # the map at lr: within 3 %
    np.testing.assert_allclose(a["sim_t_exact_epochs"], sim, rtol=1e-6)  # the run's own exact map
    np.testing.assert_allclose(a["late_t_closed_epochs"], sim, rtol=0.15)
    np.testing.assert_allclose(a["sim_depth_t_epochs"], a["depth_t_epochs"], rtol=1e-6)
    assert a["theory_progress"].shape == (a["theory_epochs"].size, 3)
    json.dumps(rec)


def test_npz_named_modalities_and_target(tmp_path, capsys):
    arrays = synthetic()
    arrays["label"] = arrays.pop("y")
    path = write_npz(tmp_path / "data.npz", arrays)
    argv = ["--data", path, "--modality", "first=a,b", "--modality", "image=c", "--target", "label", "--no-confirm",
            "--test-fraction", "0", "--out", str(tmp_path / "out")]
    assert diagnose.main(argv) == 0
    out = capsys.readouterr().out
    assert "Diagnosis of 2 modalities on 600 training samples: regression" in out
    assert "Confirmed" not in out
    rec = _io.load(tmp_path / "out" / "diagnose.json")["result"]
    assert rec["dims"] == [3, 4] and rec["held_out"] is None


def test_csv_modalities_and_the_command_round_trip(tmp_path, capsys):
    path = write_csv(tmp_path / "data.csv", synthetic())
    argv = ["--data", path, *CSV_MODALITIES, "--quick", "--out", str(tmp_path / "out")]
    assert diagnose.main(argv) == 0
    assert "demo → heart → image" in capsys.readouterr().out
    cfg = diagnose.Config.quick(data=path, modality=("demo=age", "heart=h1,h2", "image=p0,p1,p2,p3"),
                                target="outcome")
    cmd = cfg.command("sims.diagnose")
    assert "--modality demo=age --modality heart=h1,h2 --modality image=p0,p1,p2,p3" in cmd
    rec = _io.load(tmp_path / "out" / "diagnose.json")
    assert rec["config"]["modality"] == ["demo=age", "heart=h1,h2", "image=p0,p1,p2,p3"]


def test_classification_labels_use_the_logistic_loss(tmp_path, capsys):
    path = write_npz(tmp_path / "data.npz", synthetic(classification=True))
    assert diagnose.main(["--data", path, "--quick", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "classification (±1 labels, logistic loss)" in out
    assert "the moment theory is for the squared loss" in out
    assert "the depth-L networks are trained only for the squared loss" in out


def test_config_from_python_is_checked_like_the_command_line(tmp_path):
    path = write_npz(tmp_path / "data.npz", synthetic())
    cfg = diagnose.Config(data=path, confirm=False)
    result = diagnose.run(cfg)
    report = diagnose.predict(cfg, result)
    assert report.order == ("a", "b", "c") and report.confirmation is None
    with pytest.raises(ValueError, match="data and example: give exactly one"):
        diagnose.Config()


# ---------------------------------------------------------------------- usage errors, each named
@pytest.mark.parametrize("argv, needle", [
    ([], "give exactly one, --data FILE or --example"),
    (["--data", "nowhere.npz"], "--data: data == 'nowhere.npz', must be an existing file"),
    (["--example", "iris"], "--example: invalid choice: 'iris'"),
    (["--test-fraction", "0.95", "--example", "diabetes"], "--test-fraction"),
    (["--depth", "1", "--example", "diabetes"], "--depth"),
])
def test_usage_errors_without_files(argv, needle, tmp_path, capsys):
    err = cli_error(diagnose, argv + ["--out", str(tmp_path)], capsys)
    assert needle in err


def _bad_npz(tmp_path, change):
    arrays = synthetic()
    change(arrays)
    return write_npz(tmp_path / "bad.npz", arrays)


@pytest.mark.parametrize("change, extra, needle", [
    (lambda a: a.update(y=a["y"][:-1]), [], "xs[0] ('a') has 600 rows, must have as many as y (599)"),
    (lambda a: a.update(b=a["b"][:-3]), [], "xs[1] ('b') has 597 rows, must have as many as y (600)"),
    (lambda a: a.update(y=np.full(600, 2.0)), [], "y is constant"),
    (lambda a: a.update(c=np.repeat(a["c"][:, :1, :], 2, axis=1)), [],
     "xs[2] ('c') has a singular input covariance"),
    (lambda a: a.update(b=np.column_stack([a["b"][:, 0], a["a"]])), [], "singular joint input covariance"),
    (lambda a: a.pop("y"), [], "target == 'y': "),
    (lambda a: None, ["--modality", "x=a,nothing", "--modality", "z=c"], "has no array 'nothing'"),
    (lambda a: None, ["--modality", "x=a,y", "--modality", "z=c"], "'y' is the target, must not be an input"),
    (lambda a: None, ["--modality", "x"], "modality == 'x', must be NAME=col1,col2"),
    (lambda a: None, ["--modality", "x=a", "--modality", "x=b"], "modality names ['x'] more than once"),
    (lambda a: a.update(y=np.where(a["y"] > 0, 1.0, 0.0)), ["--task", "classification"],
     "must be exactly -1 and +1 for task 'classification'"),
])
def test_bad_npz_data_is_a_usage_error(change, extra, needle, tmp_path, capsys):
    path = _bad_npz(tmp_path, change)
    err = cli_error(diagnose, ["--data", path, *extra, "--out", str(tmp_path / "out")], capsys)
    assert err.count("--data") + err.count("--modality") + err.count("--target") >= 1
    assert needle in err
    assert not (tmp_path / "out" / "diagnose.png").exists()


def test_modality_without_signal_is_named(tmp_path, capsys):
    n = 400
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    arrays = {"good": np.sin(t) + 0.1 * np.cos(3 * t), "null": np.column_stack([np.cos(t), np.sin(2 * t)]),
              "y": np.sin(t)}
    path = write_npz(tmp_path / "d.npz", arrays)
    err = cli_error(diagnose, ["--data", path, "--test-fraction", "0", "--out", str(tmp_path)], capsys)
    assert "xs[1] ('null') has no signal" in err


@pytest.mark.parametrize("drop, extra, needle", [
    ("h2", [], "column 'h2' is not in"),
    ("outcome", [], "target == 'outcome': column not in"),
    (None, ["--target", "age"], "column 'age' is the target"),
])
def test_bad_csv_is_a_usage_error(drop, extra, needle, tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", synthetic(), drop=drop)
    argv = ["--data", path, *CSV_MODALITIES, *extra, "--out", str(tmp_path / "out")]
    assert needle in cli_error(diagnose, argv, capsys)


def test_csv_needs_modalities_target_and_numbers(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", synthetic())
    assert "a .csv needs --modality" in cli_error(diagnose, ["--data", path, "--out", str(tmp_path)], capsys)
    argv = ["--data", path, "--modality", "x=age", "--modality", "z=h1", "--out", str(tmp_path)]
    assert "a .csv needs --target COLUMN" in cli_error(diagnose, argv, capsys)
    text = (tmp_path / "d.csv").read_text().splitlines()
    text[3] = text[3].replace(text[3].split(",")[1], "n/a", 1)
    (tmp_path / "e.csv").write_text("\n".join(text) + "\n")
    argv = ["--data", str(tmp_path / "e.csv"), *CSV_MODALITIES, "--out", str(tmp_path)]
    assert "row 4, column 'h1' holds 'n/a', must be a number" in cli_error(diagnose, argv, capsys)
    text = (tmp_path / "d.csv").read_text().splitlines()
    text[5] = text[5] + ",1"
    (tmp_path / "f.csv").write_text("\n".join(text) + "\n")
    argv = ["--data", str(tmp_path / "f.csv"), *CSV_MODALITIES, "--out", str(tmp_path)]
    assert "row 6 has 9 fields, must have 8 like the header" in cli_error(diagnose, argv, capsys)


def test_example_options_do_not_mix(tmp_path, capsys):
    err = cli_error(diagnose, ["--example", "diabetes", "--target", "y", "--out", str(tmp_path)], capsys)
    assert "must be unset with --example" in err


def test_abbreviations_are_rejected(tmp_path, capsys):
    err = cli_error(diagnose, ["--qui", "--example", "diabetes", "--out", str(tmp_path)], capsys)
    assert "--qui" in err


# ---------------------------------------------------------------------- bundled examples (scikit-learn)
def test_examples_are_split_by_their_feature_groups():
    pytest.importorskip("sklearn")
    from sims import _datafile

    diab = _datafile.load_example("diabetes")
    assert diab.names == ("demographics", "body", "serum")
    assert diab.columns == (("age", "sex"), ("bmi", "bp"), ("s1", "s2", "s3", "s4", "s5", "s6"))
    assert [x.shape for x in diab.xs] == [(442, 2), (442, 2), (442, 6)] and diab.y.shape == (442,)
    dig = _datafile.load_example("digits")
    assert dig.names == ("left", "right") and [x.shape for x in dig.xs] == [(1797, 32), (1797, 32)]
    assert dig.columns[0][:5] == ("r0c0", "r0c1", "r0c2", "r0c3", "r1c0")
    assert set(np.unique(dig.y)) == {-1.0, 1.0}


def test_diabetes_example_without_confirmation(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert diagnose.main(["--example", "diabetes", "--no-confirm", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "learns serum → body → demographics" in out
    assert "Superficial preference: yes. serum is learned first, but body removes more loss on its own" in out


def test_digits_example_confirmed(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert diagnose.main(["--example", "digits", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "learns right → left" in out and "pixels constant on the training split dropped" in out
    a = _io.load(tmp_path / "diagnose.npz")
    np.testing.assert_allclose(a["sim_t_epochs"][0], a["late_t_map_epochs"][0], rtol=0.03)   # first time
    np.testing.assert_allclose(a["sim_t_epochs"], a["late_t_closed_epochs"], rtol=0.15)


# ---------------------------------------------------------------------- figure
@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("diag")
    out = {}
    for kind in ("regression", "classification"):
        path = write_npz(base / f"{kind}.npz", synthetic(classification=kind == "classification"))
        for confirm in (True, False):
            cfg = diagnose.Config.quick(data=path, confirm=confirm)
            result = diagnose.run(cfg)
            out[kind + ("" if confirm else "-unconfirmed")] = (cfg, result, diagnose.predict(cfg, result))
    return out


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("kind", ["regression", "classification", "regression-unconfirmed",
                                  "classification-unconfirmed"])
def test_figure_layout_and_fonts(kind, style, quick_runs):
    assert figure_problems(diagnose, *quick_runs[kind], style) == []


def test_a_diverging_learning_rate_is_reported(tmp_path, capsys):
    path = write_npz(tmp_path / "data.npz", synthetic())
    assert diagnose.main(["--data", path, "--lr", "3", "--out", str(tmp_path / "out")]) == 1
    out, err = capsys.readouterr()
    assert "Lower the learning rate: gradient descent at lr 3 diverges" in out
    assert "5 of 5 trained networks are not usable (diverged)" in out
    assert "no usable run" in err and "Traceback" not in err
    assert (tmp_path / "out" / "diagnose.npz").exists() and not (tmp_path / "out" / "diagnose.png").exists()
