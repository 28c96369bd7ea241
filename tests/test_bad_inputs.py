"""A battery of bad inputs across the API and every command-line entry (issue 11).

Each case is one bad input; the test asserts the exception type (or, on the command line,
exit status 2 with no traceback) and that the message names the parameter. The cases are
distinct: a shape, a dtype, a non-finite value, a range, a path, a worker count, a scheduler
or a seed, given to one entry point. ``test_battery_size`` keeps the count honest.
"""
from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import linfusion as lf
import theory
from linfusion import analysis, data as D, sweep

NET = lf.FusionNet.late((1, 1), width=4)
TOY = D.toy(n=64, rng=0)
RUN = lf.train(NET, TOY, epochs=5, rng=0)


def _nan_x():
    x = np.ones((8, 1))
    x[3] = np.nan
    return x


# (id, callable, exception type, words the message must contain)
API = [
    # architecture
    ("in_dims empty", lambda: lf.FusionNet(()), ValueError, ["in_dims"]),
    ("in_dims zero", lambda: lf.FusionNet((1, 0)), ValueError, ["in_dims[1]"]),
    ("in_dims float", lambda: lf.FusionNet((1.5, 1)), TypeError, ["in_dims[0]"]),
    ("width zero", lambda: lf.FusionNet((1, 1), width=0), ValueError, ["width"]),
    ("fuse_depth > depth", lambda: lf.FusionNet((1, 1), depth=2, fuse_depth=3), ValueError, ["fuse_depth", "depth"]),
    ("slope > 1", lambda: lf.FusionNet((1, 1), slope=2.0), ValueError, ["slope"]),
    ("init scheme", lambda: NET.init("nope"), ValueError, ["scheme"]),
    ("init scale negative", lambda: NET.init("entry", -1.0), ValueError, ["scale"]),
    ("init rng", lambda: NET.init("entry", 1e-3, rng="seed"), TypeError, ["rng"]),
    ("forward wrong w", lambda: NET.forward(np.zeros(3), TOY.xs), ValueError, ["w"]),
    # data
    ("toy rho 1", lambda: D.toy(rho=1.0), ValueError, ["rho"]),
    ("toy ratio 0", lambda: D.toy(ratio=0.0), ValueError, ["ratio"]),
    ("toy n 0", lambda: D.toy(n=0), ValueError, ["n"]),
    ("toy noise inf", lambda: D.toy(noise=np.inf), ValueError, ["noise"]),
    ("toy rng negative", lambda: D.toy(rng=-1), ValueError, ["rng"]),
    ("multi odd dim", lambda: D.multi(dim=7), ValueError, ["dim"]),
    ("xor n not multiple of 4", lambda: D.xor_linear(n=10), ValueError, ["n"]),
    ("from_arrays complex", lambda: D.from_arrays([np.ones((4, 1)) * 1j, np.ones((4, 1))], np.ones(4)),
     TypeError, ["xs[0]"]),
    ("from_arrays rows", lambda: D.from_arrays([np.ones((4, 1)), np.ones((5, 1))], np.ones(4)), ValueError, ["xs[1]"]),
    ("from_arrays nan", lambda: D.from_arrays([_nan_x(), np.ones((8, 1))], np.ones(8)), ValueError, ["xs[0]"]),
    ("from_arrays strings", lambda: D.from_arrays([np.array([["a"]]), np.ones((1, 1))], np.ones(1)),
     TypeError, ["xs[0]"]),
    ("Dataset 3-d", lambda: D.Dataset((np.ones((2, 2, 2)), np.ones((2, 1))), np.ones((2, 1))), ValueError, ["xs[0]"]),
    ("Dataset huge", lambda: D.Dataset((np.full((4, 1), 1e160), np.ones((4, 1))), np.ones((4, 1))), ValueError,
     ["xs[0]"]),
    ("Moments asymmetric", lambda: D.Moments(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones((1, 2)), 1.0), ValueError,
     ["sxx"]),
    ("Moments negative syy", lambda: D.Moments(np.eye(2), np.ones((1, 2)), -1.0), ValueError, ["syy"]),
    # training
    ("train net type", lambda: lf.train("net", TOY), TypeError, ["net"]),
    ("train lr 0", lambda: lf.train(NET, TOY, lr=0.0), ValueError, ["lr"]),
    ("train lr inf", lambda: lf.train(NET, TOY, lr=np.inf), ValueError, ["lr"]),
    ("train lr bool", lambda: lf.train(NET, TOY, lr=True), TypeError, ["lr"]),
    ("train lr string", lambda: lf.train(NET, TOY, lr="0.1"), TypeError, ["lr"]),
    ("train lr per-run sequence", lambda: lf.train(NET, TOY, lr=[0.01, 5.0]), (TypeError, ValueError), ["lr"]),
    ("train epochs 0", lambda: lf.train(NET, TOY, epochs=0), ValueError, ["epochs"]),
    ("train epochs float", lambda: lf.train(NET, TOY, epochs=10.5), TypeError, ["epochs"]),
    ("train tol negative", lambda: lf.train(NET, TOY, tol=-1.0), ValueError, ["tol"]),
    ("train weight_decay nan", lambda: lf.train(NET, TOY, weight_decay=np.nan), ValueError, ["weight_decay"]),
    ("train record_every 0", lambda: lf.train(NET, TOY, record_every=0), ValueError, ["record_every"]),
    ("train loss", lambda: lf.train(NET, TOY, loss="hinge"), ValueError, ["loss"]),
    ("train path", lambda: lf.train(NET, TOY, path="gpu"), ValueError, ["path"]),
    ("train moment path on ReLU", lambda: lf.train(lf.FusionNet.late((1, 1), width=4, slope=0.0), TOY, path="moment"),
     ValueError, ["path"]),
    ("train w0 shape", lambda: lf.train(NET, TOY, w0=np.zeros(3)), ValueError, ["w0"]),
    ("train rng", lambda: lf.train(NET, TOY, rng=1.5), TypeError, ["rng"]),
    ("train data mismatch", lambda: lf.train(lf.FusionNet.late((2, 1), width=4), TOY), ValueError, ["in_dims"]),
    ("train dtype", lambda: lf.train(NET, TOY, dtype=np.int32), ValueError, ["dtype"]),
    ("train_many data shapes", lambda: lf.train_many(NET, [TOY, D.toy(n=32, rng=1)]), ValueError, ["shape"]),
    # measurements
    ("measure convention", lambda: analysis.measure(RUN, TOY, convention="nearest"), ValueError, ["convention"]),
    ("measure wa_uni string", lambda: analysis.measure(RUN, wa_uni="half", wb_star=1.0), ValueError, ["wa_uni"]),
    ("crossing_time shapes", lambda: analysis.crossing_time(np.arange(3.0), np.arange(4.0), 1.0), ValueError,
     ["values"]),
    ("crossing_time threshold nan", lambda: analysis.crossing_time(np.arange(3.0), np.arange(3.0), np.nan),
     ValueError, ["threshold"]),
    ("generalization_error shape", lambda: analysis.generalization_error(np.zeros((1, 3)), np.eye(2), np.zeros((1, 2))),
     ValueError, ["w_tot"]),
    # theory
    ("time_ratio_toy rho", lambda: theory.time_ratio_toy(rho=1.5, ratio=2.0), ValueError, ["rho"]),
    ("time_ratio dims", lambda: theory.time_ratio(np.eye(2), np.ones((1, 2)), (1, 2)), ValueError, ["dims"]),
    ("deep_time_ratio fuse_depth", lambda: theory.deep_time_ratio(4, 5, 2.0, 0.0, 0.1), ValueError, ["fuse_depth"]),
    ("gram_map lr", lambda: theory.gram_map(np.eye(2), np.ones((1, 2)), 3.0, (1, 1), np.arange(3.0), -0.1,
                                            [np.ones((2, 1))] * 2, [np.ones((1, 2))] * 2), ValueError, ["lr"]),
    ("predict data", lambda: theory.predict(RUN, D.toy(ratio=3.0, n=64, rng=5)), ValueError, ["data"]),
    ("diagnose rows", lambda: theory.diagnose([np.ones((5, 1)), np.ones((6, 1))], np.ones(5)), ValueError, ["xs[1]"]),
    # mitigation
    ("mitigation ogm nan", lambda: lf.Mitigation(ogm_alpha=float("nan")), ValueError, ["ogm_alpha"]),
    ("mitigation block name", lambda: lf.train(NET, TOY, epochs=1, mitigation=lf.Mitigation(lr_scales={"W9": 2.0})),
     ValueError, ["lr_scales", "W9"]),
    ("mitigation per-run count", lambda: lf.train_many(NET, [TOY, TOY], epochs=1, mitigation=[lf.Mitigation()] * 3),
     ValueError, ["mitigation"]),
    # sweeps
    ("grid empty axis", lambda: sweep.grid(rho=[]), ValueError, ["rho"]),
    ("sweep config key", lambda: sweep.run_sweep([{"rhoo": 0.1}], workers=1, progress=False), ValueError, ["rhoo"]),
    ("sweep config lr", lambda: sweep.run_sweep([{"lr": -1.0}], workers=1, progress=False), ValueError, ["lr"]),
    ("sweep workers 0", lambda: sweep.run_sweep([{}], workers=0, progress=False), ValueError, ["workers"]),
    ("sweep seed negative", lambda: sweep.run_sweep([{}], seed=-1, workers=1, progress=False), TypeError, ["seed"]),
    ("sweep errors", lambda: sweep.run_sweep([{}], errors="ignore", workers=1, progress=False), ValueError, ["errors"]),
    ("sweep scheduler scheme", lambda: sweep.run_sweep([{}], scheduler="udp://x:1", progress=False),
     (ValueError, ImportError), ["scheduler"]),
]


@pytest.mark.parametrize("call, kind, words", [c[1:] for c in API], ids=[c[0] for c in API])
def test_api_bad_input(call, kind, words):
    with pytest.raises(kind) as exc:
        call()
    for w in words:
        assert w in str(exc.value), str(exc.value)


def _cli(module, argv, tmp_path):
    """Run ``python -m sims.<module> argv``; (exit status, stderr)."""
    from sims import _cli
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            status = _cli.main(module, argv + ["--out", str(tmp_path / "out")] if "--out" not in argv else argv)
        except SystemExit as exc:
            status = exc.code
    return status, err.getvalue()


def _file(tmp_path):
    p = tmp_path / "a_file"
    p.write_text("x")
    return str(p)


CLI = [
    ("late_fusion", ["--rho", "1"], ["--rho"]),
    ("late_fusion", ["--lr", "inf"], ["--lr"]),
    ("late_fusion", ["--lr", "nan"], ["--lr"]),
    ("late_fusion", ["--scale", "-1"], ["--scale"]),
    ("late_fusion", ["--seed", "-1"], ["--seed"]),
    ("late_fusion", ["--n", "x"], ["--n"]),
    ("late_fusion", ["--qui"], ["--qui"]),
    ("late_fusion", ["--format", "jpg"], ["--format"]),
    ("late_fusion", ["--workers", "0"], ["--workers"]),
    ("late_fusion", ["--out", "FILE"], ["--out"]),
    ("late_fusion", ["--out", "FILE/below"], ["--out"]),
    ("early_fusion", ["--epochs", "0"], ["--epochs"]),
    ("phase_portrait", ["--grid", "1"], ["--grid"]),
    ("superficial", ["--w-ratio", "-1"], ["--w-ratio"]),
    ("heatmaps", ["--n-rho", "0"], ["--n-rho"]),
    ("generalization", ["--noise", "-0.5"], ["--noise"]),
    ("single", ["--depth", "2", "--fuse-depth", "3"], ["--fuse-depth"]),
    ("xor", ["--slope", "2"], ["--slope"]),
    ("toy_sweep", ["--repeats", "0"], ["--repeats"]),
    ("toy_sweep", ["--cache", "FILE"], ["--cache"]),
    ("toy_sweep", ["--scheduler", "udp://nowhere:1"], ["--scheduler"]),
    ("rand_sweep", ["--draws", "0"], ["--draws"]),
    ("fusion_depth", ["--depth", "0"], ["--depth"]),
    ("rho_sweep", ["--values=-1.5,0"], ["--values"]),
    ("ratio_sweep", ["--width", "0"], ["--width"]),
    ("init_sweep", ["--values", "0,0.1"], ["--values"]),
    ("many_modalities", ["--lr", "-1"], ["--lr"]),
    ("diagnose", ["--data", "NOPE.npz"], ["--data"]),
    ("mitigation", ["--dropout", "0.5,1.0"], ["--dropout"]),
]


@pytest.mark.parametrize("module, argv, words", CLI, ids=[f"{m} {' '.join(a)}" for m, a, _ in CLI])
def test_cli_bad_input(module, argv, words, tmp_path):
    f = _file(tmp_path)
    argv = [a.replace("FILE", f) for a in argv]
    status, err = _cli(module, argv, tmp_path)
    assert status == 2, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err
    assert not os.path.exists(tmp_path / "out" / f"{module}.png")      # nothing ran


def test_original_flags_bad_input(capsys):
    from sims.__main__ import main
    for argv, word in ((["--mode", "fission"], "fission"), (["--epoch", "0"], "--epoch"),
                       (["--rho", "2"], "--rho"), (["--sweep", "nope"], "--sweep")):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code
        assert status == 2, argv
        assert word in capsys.readouterr().err


def test_battery_size():
    """At least 60 distinct bad inputs across the API and the command line (issue 11)."""
    assert len(API) + len(CLI) + 4 >= 60


def test_modules_run_under_cprofile_and_runpy(tmp_path):
    """``python -m cProfile -m sims.<module>`` and ``runpy`` run the module as ``__main__`` (issue 11.10)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(tmp_path / "prof"), "-m", "sims.heatmaps",
                          "--quick", "--out", str(tmp_path / "a")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "a" / "heatmaps.png").exists() and (tmp_path / "prof").exists()
    code = ("import runpy, sys; sys.argv = ['heatmaps', '--quick', '--out', sys.argv[1]]; "
            "runpy.run_module('sims.heatmaps', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "b" / "heatmaps.png").exists()
