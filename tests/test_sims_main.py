"""Tests of ``python -m sims`` (the original code's flags mapped onto the modules by the table of
sims._original) and of ``sims.single`` (one run of any fusion network).

Each command of the original README (kept as data in sims.original_commands) is checked
against what the original trains, read from its code (main.py, sweep.py, config.py, net.py):
the expected values are written here, not taken from the table under test. The translation
of other original flags is checked case by case; the mapping text of ``--help`` and
docs/original_commands.md are checked to be generated from the table.
"""
from pathlib import Path

import numpy as np
import pytest

from sims import _io, _original, _translate, original_commands, rand_sweep, toy_sweep
from sims.__main__ import build_parser, main, translate
from sims.original_commands import README_COMMANDS, flags

ROOT = Path(__file__).resolve().parents[1]
MODULE = ["early_fusion", "late_fusion"] + ["generalization"] * 4 + [
    "toy_sweep", "rand_sweep", "fusion_depth", "rho_sweep", "ratio_sweep", "init_sweep"]


def _scheme(settings):
    """The init scheme of a module's settings (the deep modules name it init_scheme until converted)."""
    return settings["init"] if "init" in settings else settings["init_scheme"]


def _scale(settings):
    """The init scale a module runs with (None: the library's default for the scheme)."""
    if settings["scale"] is not None:
        return settings["scale"]
    return 1e-9 if _scheme(settings) == "entry" else 0.1


# ---------------------------------------------------------------------- the README's commands
def test_the_twelve_commands_are_data():
    assert len(README_COMMANDS) == 12
    assert all(c.startswith("python main.py --mode ") for c in README_COMMANDS)
    assert [translate(flags(c)).module for c in README_COMMANDS] == MODULE


# the original's two-layer single runs: one net, SGD full batch, lr 0.04, 1000 epochs, 8192 toy samples,
# r = 2, rho = 0, init N(0, 1e-9^2) per weight (net.py _init_weights), width 100 (config.py defaults)
TWO_LAYER = dict(n=8192, epochs=1000, lr=0.04, width=100, rho=0.0, ratio=2.0, noise=0.0, weight_decay=0.0)


@pytest.mark.parametrize("index", [0, 1])
def test_readme_figure2(index):
    t = translate(flags(README_COMMANDS[index]))
    s = t.settings()
    assert {k: s[k] for k in TWO_LAYER} == TWO_LAYER
    assert (_scheme(s), _scale(s)) == ("entry", 1e-9)
    assert t.fields == {} and t.notes == []


@pytest.mark.parametrize("index, n", [(2, 70), (3, 700), (4, 70), (5, 700)])
def test_readme_generalization(index, n):
    """--data multi, D = 100, --dataset_size n, 1200 epochs, noise 0.5; lr 0.04, width 100, init 1e-9."""
    t = translate(flags(README_COMMANDS[index]))
    s = t.settings()
    assert tuple(s["n_values"]) == (n,)
    assert (s["dim"], s["noise"], s["epochs"], s["lr"], s["width"]) == (100, 0.5, 1200, 0.04, 100)
    assert (_scheme(s), _scale(s)) == ("entry", 1e-9)
    assert Path(t.out) == Path("results", "generalization", f"n{n}")


def test_readme_toy_sweep():
    """sweep.toy_sweep: r in [3, 2, 1.5, 1] x linspace(-0.9, 0.9, 9), for each point the linear net
    (relu = 1) and then the ReLU net (relu = 0), --repeat 5 runs each, each with a fresh gen_data
    draw of --dataset_size 8192 samples: 360 runs; stop at loss < 1e-4 (main.py), keep a run if its
    last loss < 1e-3, time_half read-out (sweep.sweep)."""
    t = translate(flags(README_COMMANDS[6]))
    cfg = t.config
    assert isinstance(cfg, toy_sweep.Config)
    pts = toy_sweep.points(cfg)
    assert len(pts) == 360
    assert sum(p["slope"] == 1.0 for p in pts) == 180 and sum(p["slope"] == 0.0 for p in pts) == 180
    assert {p["n"] for p in pts} == {8192}
    assert sorted({p["ratio"] for p in pts}) == [1.0, 1.5, 2.0, 3.0]
    np.testing.assert_allclose(sorted({p["rho"] for p in pts}), np.linspace(-0.9, 0.9, 9), atol=1e-15)
    for p in pts:
        assert (p["epochs"], p["lr"], p["init"], p["scale"], p["width"], p["tol"]) == (40000, 0.04, "entry", 1e-9,
                                                                                      100, 1e-4)
    assert (cfg.repeats, cfg.convention, cfg.drop_loss) == (5, "paper", 1e-3)
    # --relu has no effect on the original's toy_sweep: the same plan with --relu 0
    other = translate(flags(README_COMMANDS[6]) + ["--relu", "0"])
    assert other.config == cfg and any("--relu" in n for n in other.notes)


def test_readme_rand_sweep():
    """sweep.rand_sweep: --data multi random covariances (D = 20, 8192 samples), linear late fusion,
    lr 0.005, 20000 epochs, redraw when lag_twolayer is outside [1, 20], draw until --repeat 50 runs
    have a last loss < 1e-3; prediction with empirical Σyx, population Σ_A, Σ_AB, norm form."""
    t = translate(flags(README_COMMANDS[7]))
    cfg = t.config
    assert isinstance(cfg, rand_sweep.Config)
    assert (cfg.draws, cfg.dim, cfg.n, cfg.lr, cfg.epochs, cfg.tol, cfg.width) == (50, 20, 8192, 0.005, 20000,
                                                                                    1e-4, 100)
    assert (cfg.init, cfg.scale_value, cfg.lo, cfg.hi, cfg.drop_loss) == ("entry", 1e-9, 1.0, 20.0, 1e-3)
    assert (cfg.stats, cfg.convention) == ("original", "paper")
    net, ds = rand_sweep.build_draw(rand_sweep.point(cfg, 0), None)
    assert (net.slope, net.bias, net.width, net.depth, net.fuse_depth) == (1.0, False, 100, 2, 2)
    assert ds.in_dims == (10, 10) and ds.n_samples == 8192 and ds.noise == 0.0


# the original's deep runs: --init is each layer's norm scale (net.py deep_fusion), depth 4, width 100,
# lr 0.04, 8192 toy samples at r = 2, rho = 0, sweeps stop at loss < 1e-4 and keep a last loss < 1e-3
DEEP = dict(depth=4, width=100, lr=0.04, n=8192, noise=0.0)


@pytest.mark.parametrize("index, epochs, scale, repeats", [(8, 7000, 0.1, None), (9, 100000, 0.1, 5),
                                                            (10, 100000, 0.1, 5), (11, 100000, None, 5)])
def test_readme_deep(index, epochs, scale, repeats):
    t = translate(flags(README_COMMANDS[index]))
    s = t.settings()
    assert {k: s[k] for k in DEEP} == DEEP
    assert s["epochs"] == epochs and s["tol"] == 1e-4 and _scheme(s) == "layer"
    if scale is not None:                       # init_sweep sweeps the scale
        assert _scale(s) == scale
    if repeats is not None:
        assert s["repeats"] == repeats and s["drop_loss"] == 1e-3
    assert s["convention"] == "paper"
    swept = {9: "rho", 10: "ratio"}.get(index)
    for name, value in (("rho", 0.0), ("ratio", 2.0)):
        if name != swept:
            assert s[name] == value


@pytest.mark.parametrize("index", range(len(README_COMMANDS)))
def test_readme_command_runs_quick(index, tmp_path, capsys):
    command = README_COMMANDS[index]
    out = tmp_path / "out"
    assert main(flags(command) + ["--quick", "--workers", "1", "--out", str(out)]) == 0
    module = MODULE[index]
    printed = capsys.readouterr().out
    assert f"-> python -m sims.{module} " in printed
    for suffix in (".png", ".npz", ".json"):
        assert (out / f"{module}{suffix}").exists()
    found = _io.load(out / module)
    assert found["config"]["experiment"].endswith(module) and len(found["arrays"]) > 0
    record = _io.load(out / "original_command.json")
    assert record["original"] == "python main.py " + " ".join(flags(command)) + " --quick --workers 1 --out " + str(out)
    assert record["equivalent"].startswith(f"python -m sims.{module}")


# ---------------------------------------------------------------------- generated text
def test_help_mapping_is_generated_from_the_table():
    assert build_parser().epilog == _translate.mapping_text()
    text = _translate.mapping_text()
    for route in _original.ROUTES:
        assert f"sims.{route.module} (figure {route.figure})" in text
    assert "--mode fission" in text and "linear only" not in text and "relu-n" not in text


def test_docs_are_generated():
    doc = (ROOT / "docs" / "original_commands.md").read_text()
    assert doc == original_commands.markdown(), "regenerate: python -m sims.original_commands > docs/original_commands.md"
    for command in README_COMMANDS:
        assert f"`{command}`" in doc


# ---------------------------------------------------------------------- translation
@pytest.mark.parametrize("argv, module, expected", [
    ([], "single", {"depth": 1, "fuse_depth": 1}),                                    # shallow, L = 1
    ("--mode deep_fusion --depth 5 --fuse_depth 3 --init 0.05".split(), "single",
     {"depth": 5, "fuse_depth": 3, "init": "layer", "scale": 0.05}),
    ("--mode late_fusion --relu 0".split(), "single", {"slope": 0.0}),                 # ReLU toy
    ("--mode late_fusion --loss logistic".split(), "single", {"loss": "logistic"}),
    ("--mode late_fusion --bias".split(), "single", {"bias": True}),
    ("--mode early_fusion --reg 0.01 --rho 0.5".split(), "early_fusion", {"weight_decay": 0.01, "rho": 0.5}),
    ("--mode late_fusion --ratio 0.5".split(), "single", {"ratio": 0.5}),               # B first: not figure 2
    ("--mode early_fusion --data multi --dataset_size 70".split(), "generalization",
     {"n_values": (70,), "dim": 20, "noise": 0.0}),                                    # the original's defaults
    ("--mode late_fusion --data xor --relu 0 --var_lin 4".split(), "xor",
     {"slope": 0.0, "sigma_a": (2.0,), "sweep_sigma": ()}),                            # var_lin is a variance
    ("--mode early_fusion --data xor --relu 0 --vis_feat --vis_contour".split(), "single",
     {"fuse_depth": 1, "data": "xor", "slope": 0.0, "features": True, "contour": True}),
    ("--mode late_fusion --data xor".split(), "single", {"data": "xor"}),              # linear net on XOR
    ("--sweep xor_sweep --data xor --repeat 3".split(), "xor", {"repeats": 3}),
    ("--mode deep_fusion --sweep ratio_sweep --rho 0.3 --depth 3".split(), "ratio_sweep",
     {"rho": 0.3, "depth": 3, "scale": 1e-9, "convention": "paper"}),
    ("--mode late_fusion --sweep toy_sweep --dataset_size 2048".split(), "toy_sweep", {"n": 2048}),
    ("--mode late_fusion --sweep rand_sweep --repeat 7 --in_dim 8".split(), "rand_sweep",
     {"draws": 7, "dim": 8, "stats": "original"}),
])
def test_translate_cases(argv, module, expected):
    t = translate(argv)
    assert t.module == module
    assert {k: t.fields.get(k) for k in expected} == expected


def test_translate_keeps_the_original_defaults_where_they_differ():
    """The original's --epoch 1000 and --repeat 1 are passed to a sweep whose own defaults differ."""
    t = translate("--mode late_fusion --sweep toy_sweep".split())
    assert (t.config.epochs, t.config.repeats, len(toy_sweep.points(t.config))) == (1000, 1, 72)


def test_xor_sweep_keeps_the_sweep_and_single_xor_drops_it():
    assert "sweep_sigma" not in translate("--sweep xor_sweep --data xor".split()).fields
    assert translate("--mode late_fusion --data xor --relu 0".split()).fields["sweep_sigma"] == ()


def test_ignored_flags_get_a_note():
    t = translate("--mode late_fusion --sweep rand_sweep --data multi --rho 0.5 --plot_Eg".split())
    notes = " ".join(t.notes)
    assert "--rho" in notes and "--plot_Eg" in notes and "ignored" in notes
    assert not translate("--mode late_fusion --plot_weight".split()).notes      # nothing ignored


def test_quick_replaces_the_size_flags():
    t = translate("--mode deep_fusion --init 0.1 --epoch 100000 --sweep rho_sweep --repeat 5 --quick".split())
    assert "--quick" in t.argv and "epochs" not in t.fields and "repeats" not in t.fields
    assert t.fields["scale"] == 0.1 and any("--epoch" in n for n in t.notes)
    t = translate(flags(README_COMMANDS[6]) + ["--quick"])
    assert t.config == toy_sweep.Config.quick()


def test_output_options_are_passed_on():
    t = translate("--mode late_fusion --sweep toy_sweep --seed 3 --workers 2 --force --format pdf --style paper "
                  "--out x".split())
    assert t.fields["seed"] == 3 and t.config.seed == 3
    assert t.argv[-9:] == ["--out", "x", "--format", "pdf", "--style", "paper", "--workers", "2", "--force"]
    t = translate("--mode late_fusion --force".split())
    assert "--force" not in t.argv and any("--force" in n for n in t.notes)


# ---------------------------------------------------------------------- errors
def test_fission_is_refused(capsys):
    assert main(["--mode", "fission"]) == 2
    err = capsys.readouterr().err
    assert "--mode fission" in err and "not supported" in err


@pytest.mark.parametrize("argv, words", [
    (["--mode", "middle_fusion"], ["invalid choice", "'late_fusion'", "'deep_fusion'"]),
    (["--sweep", "depth_sweep"], ["invalid choice", "'rho_sweep'"]),
    (["--data", "mnist"], ["invalid choice", "'xor'"]),
    (["--activation", "relu"], ["unrecognized arguments"]),
    (["--epo", "10"], ["unrecognized arguments"]),                      # no abbreviations
    (["--mode", "late_fusion", "--rho", "1"], ["--rho", "rho == 1.0", "< 1"]),
    (["--mode", "late_fusion", "--sweep", "toy_sweep", "--repeat", "0"], ["--repeat", "repeats == 0"]),
    (["--mode", "late_fusion", "--sweep", "rand_sweep", "--in_dim", "7"], ["dim == 7", "even"]),
    (["--mode", "early_fusion", "--sweep", "toy_sweep"], ["--mode late_fusion"]),
    (["--mode", "late_fusion", "--sweep", "toy_sweep", "--bias"], ["--bias", "not supported"]),
    (["--mode", "late_fusion", "--sweep", "rand_sweep", "--relu", "0"], ["--relu 0", "not supported"]),
    (["--mode", "fission", "--sweep", "toy_sweep"], ["--mode fission", "not supported"]),
])
def test_bad_flags_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        translate(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
