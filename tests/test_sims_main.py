"""Tests of ``python -m sims`` (the original code's flags mapped onto the modules) and of
``sims.single`` (one run of any fusion network).

Every command of the original README runs in its quick setting and writes its figure, arrays
and configuration; the translation of the original flags is checked case by case; a few
single runs check the output against the fixed points of THEORY.md §6.1 and the forward pass
against the training loss.
"""
from pathlib import Path

import numpy as np
import pytest

from sims import _common, single
from sims.__main__ import main, translate

#: the twelve commands of the original README (/work/shared/seed/README-reference.md)
README_COMMANDS = [
    "python main.py --mode early_fusion --plot_weight",
    "python main.py --mode late_fusion --plot_weight",
    "python main.py --mode early_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 70 "
    "--epoch 1200 --noise 0.5",
    "python main.py --mode early_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 700 "
    "--epoch 1200 --noise 0.5",
    "python main.py --mode late_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 70 "
    "--epoch 1200 --noise 0.5",
    "python main.py --mode late_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 700 "
    "--epoch 1200 --noise 0.5",
    "python main.py --mode late_fusion --plot_weight --epoch 40000 --sweep toy_sweep --repeat 5",
    "python main.py --mode late_fusion --plot_weight --data multi --lr 0.005 --epoch 20000 --sweep rand_sweep "
    "--repeat 50",
    "python main.py --mode deep_fusion --init 0.1 --plot_weight --sweep depth_single --epoch 7000",
    "python main.py --mode deep_fusion --init 0.1 --plot_weight --epoch 100000 --sweep rho_sweep --repeat 5",
    "python main.py --mode deep_fusion --init 0.1 --plot_weight --epoch 100000 --sweep ratio_sweep --repeat 5",
    "python main.py --mode deep_fusion --plot_weight --epoch 100000 --sweep init_sweep --repeat 5",
]
README = Path(__file__).resolve().parents[1] / ".." / "shared" / "seed" / "README-reference.md"
MODULE = ["early_fusion", "late_fusion"] + ["generalization"] * 4 + [
    "toy_sweep", "rand_sweep", "fusion_depth", "rho_sweep", "ratio_sweep", "init_sweep"]


def _argv(command):
    return command.split()[2:]


def _pairs(argv):
    """Option -> value of an argv list (flags without a value map to True)."""
    out, i = {}, 0
    while i < len(argv):
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[argv[i]] = argv[i + 1]
            i += 2
        else:
            out[argv[i]] = True
            i += 1
    return out


# ---------------------------------------------------------------------- the README's commands
def test_embedded_commands_match_the_readme():
    if not README.exists():
        pytest.skip(f"{README} not present; the embedded list is used")
    found = [line.strip() for line in README.read_text().splitlines() if line.strip().startswith("python main.py")]
    assert found == README_COMMANDS


@pytest.mark.parametrize("index", range(len(README_COMMANDS)))
def test_readme_command_runs_quick(index, tmp_path, capsys):
    command = README_COMMANDS[index]
    out = tmp_path / "out"
    assert main(_argv(command) + ["--quick", "--workers", "1", "--out", str(out)]) == 0
    module = MODULE[index]
    printed = capsys.readouterr().out
    assert f"-> python -m sims.{module} " in printed
    for suffix in (".png", ".npz", ".json"):
        assert (out / f"{module}{suffix}").exists()
    found = _common.load(out / module)
    assert found["config"]["experiment"] == module and len(found["arrays"]) > 0
    record = _common.load(out / "original_command.json")
    assert record["original"] == "python main.py " + " ".join(_argv(command)) + " --quick --workers 1 --out " + str(out)
    assert record["equivalent"].startswith(f"python -m sims.{module}")


def test_readme_translations_full_size():
    """The printed modern commands of the README (no --quick): the paper-scale options."""
    got = {c: translate(_argv(c)) for c in README_COMMANDS}
    assert [t.module for t in got.values()] == MODULE
    assert got[README_COMMANDS[0]].argv == [] and got[README_COMMANDS[1]].argv == []
    gen = _pairs(got[README_COMMANDS[2]].argv)
    assert gen == {"--n-values": "70", "--dim": "100", "--noise": "0.5", "--epochs": "1200",
                   "--out": str(Path("results", "generalization", "n70"))}
    toy = _pairs(got[README_COMMANDS[6]].argv)
    assert toy == {"--no-relu": True, "--epochs": "40000", "--repeats": "5"}       # --relu 1: linear only
    assert _pairs(got[README_COMMANDS[7]].argv) == {"--draws": "50", "--lr": "0.005", "--epochs": "20000"}
    depth = _pairs(got[README_COMMANDS[8]].argv)
    assert depth["--scale"] == "0.1" and depth["--epochs"] == "7000"
    init = _pairs(got[README_COMMANDS[11]].argv)
    assert "--scale" not in init and init["--repeats"] == "5"                  # init is the swept axis


# ---------------------------------------------------------------------- translation
def test_translate_rho_sweep():
    t = translate("--init 0.1 --epoch 100000 --sweep rho_sweep --repeat 5 --mode deep_fusion".split())
    assert t.module == "rho_sweep"
    pairs = _pairs(t.argv)
    assert {"--scale": "0.1", "--epochs": "100000", "--repeats": "5"}.items() <= pairs.items()
    assert "--rho" not in pairs and t.command.startswith("python -m sims.rho_sweep ")


@pytest.mark.parametrize("argv, module, expected", [
    ([], "single", {"--depth": "1"}),                                                    # shallow, L = 1
    ("--mode deep_fusion --depth 5 --fuse_depth 3 --init 0.05".split(), "single",
     {"--depth": "5", "--fuse-depth": "3", "--init": "layer", "--scale": "0.05"}),
    ("--mode late_fusion --relu 0".split(), "single", {"--slope": "0"}),               # ReLU toy
    ("--mode late_fusion --loss logistic".split(), "single", {"--loss": "logistic"}),
    ("--mode late_fusion --bias".split(), "single", {"--bias": True}),
    ("--mode early_fusion --reg 0.01 --rho 0.5".split(), "early_fusion", {"--weight-decay": "0.01", "--rho": "0.5"}),
    ("--mode late_fusion --ratio 0.5".split(), "single", {"--ratio": "0.5"}),            # B first: not figure 2
    ("--mode early_fusion --data multi --dataset_size 70".split(), "generalization",
     {"--n-values": "70", "--dim": "20", "--noise": "0"}),                               # the original's defaults
    ("--mode late_fusion --data xor --relu 0 --var_lin 4".split(), "xor",
     {"--slope": "0", "--sigma-a": "2", "--epochs": "1000", "--n": "8192"}),            # var_lin is a variance
    ("--mode early_fusion --data xor --relu 0 --vis_feat --vis_contour".split(), "single",
     {"--fuse-depth": "1", "--data": "xor", "--slope": "0", "--features": True, "--contour": True}),
    ("--mode late_fusion --data xor".split(), "single", {"--data": "xor"}),             # linear net on XOR
    ("--mode late_fusion --sweep toy_sweep --relu 0".split(), "toy_sweep", {"--no-linear": True}),
    ("--sweep xor_sweep --data xor --repeat 3".split(), "xor", {"--repeats": "3"}),
    ("--mode deep_fusion --sweep ratio_sweep --rho 0.3 --depth 3".split(), "ratio_sweep",
     {"--rho": "0.3", "--depth": "3", "--scale": "1e-09"}),
])
def test_translate_cases(argv, module, expected):
    t = translate(argv)
    assert t.module == module
    assert expected.items() <= _pairs(t.argv).items()


def test_xor_sweep_keeps_the_sweep_and_single_xor_drops_it():
    assert "--sweep-sigma" not in translate("--sweep xor_sweep --data xor".split()).argv
    argv = translate("--mode late_fusion --data xor --relu 0".split()).argv
    assert argv[argv.index("--sweep-sigma") + 1] == ""


def test_ignored_flags_get_a_note():
    t = translate("--mode late_fusion --sweep rand_sweep --data multi --rho 0.5 --plot_Eg".split())
    notes = " ".join(t.notes)
    assert "--rho" in notes and "ignored" in notes
    assert not translate("--mode late_fusion --plot_weight".split()).notes      # nothing ignored


def test_quick_replaces_the_size_flags():
    t = translate("--mode deep_fusion --init 0.1 --epoch 100000 --sweep rho_sweep --repeat 5 --quick".split())
    pairs = _pairs(t.argv)
    assert pairs["--quick"] is True and "--epochs" not in pairs and "--repeats" not in pairs
    assert pairs["--scale"] == "0.1" and any("--epoch" in n for n in t.notes)


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
    (["--rho", "1"], ["--rho", "(-1, 1)"]),
    (["--mode", "deep_fusion", "--fuse_depth", "5"], ["--fuse_depth 5"]),
    (["--mode", "early_fusion", "--sweep", "toy_sweep"], ["--mode late_fusion"]),
    (["--mode", "late_fusion", "--sweep", "toy_sweep", "--bias"], ["--bias", "not supported"]),
])
def test_bad_flags_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err


# ---------------------------------------------------------------------- sims.single
def _run_single(tmp_path, argv):
    assert single.main(argv + ["--out", str(tmp_path)]) == 0
    for suffix in (".png", ".npz", ".json"):
        assert (tmp_path / f"single{suffix}").exists()
    return _common.load(tmp_path / "single")


def test_single_late_fusion_meets_its_fixed_points(tmp_path):
    """Linear late fusion (figure 2's run, quick size): plateau at L(M_A), end at M_*, ratio near theory."""
    found = _run_single(tmp_path, ["--quick"])
    a = found["arrays"]
    assert list(a["pred_points"]) == ["M_0", "M_A", "M_B", "M_*"]
    assert a["sim_plateau_loss"] == pytest.approx(a["pred_level_loss"][1], rel=0.02)
    assert a["sim_loss"][-1] < 1e-8 and a["sim_w_a"][-1] == pytest.approx(a["pred_level_w_a"][-1], abs=1e-4)
    # finite init and discrete steps put the simulation a few % under the flow formula (THEORY §9.3)
    assert a["sim_ratio"] == pytest.approx(a["pred_time_ratio"], rel=0.1)
    assert found["config"]["config"]["fuse_depth"] == 2


def test_single_shallow_and_deep(tmp_path):
    a = _run_single(tmp_path / "shallow", ["--quick", "--depth", "1"])["arrays"]
    assert list(a["pred_points"]) == ["M_0", "M_*"] and a["sim_loss"][-1] < 1e-8
    a = _run_single(tmp_path / "deep", ["--quick", "--depth", "4", "--fuse-depth", "2", "--init", "layer",
                                        "--scale", "0.1", "--epochs", "3000"])["arrays"]
    assert a["sim_loss"][-1] < 1e-6 and np.isfinite(a["sim_ratio"]) and a["sim_ratio"] < a["pred_time_ratio"] + 0.5


def test_single_relu_and_logistic(tmp_path):
    a = _run_single(tmp_path / "relu", ["--quick", "--slope", "0", "--epochs", "600", "--features",
                                        "--contour"])["arrays"]
    assert "pred_points" not in a                        # no fixed-point levels for a ReLU net
    assert a["sim_w_a"].max() > 1.5                      # W_tot bookkeeping -> ≈ 2x (THEORY §6.9)
    assert a["sim_units"].shape == (40, 2) and a["sim_plane_out"].shape == (81, 81)
    a = _run_single(tmp_path / "logistic", ["--quick", "--loss", "logistic", "--scale", "0.1",
                                            "--epochs", "300"])["arrays"]
    assert a["sim_loss"][-1] < a["sim_loss"][0] and "sim_eg" not in a


def test_single_xor_features(tmp_path):
    a = _run_single(tmp_path, ["--quick", "--data", "xor", "--slope", "0", "--fuse-depth", "1", "--scale", "1e-3",
                               "--epochs", "300", "--features", "--contour"])["arrays"]
    assert a["sim_units"].shape == (20, 2) and a["sim_unit_color"].shape == (20,)


@pytest.mark.parametrize("extra", [["--slope", "0", "--bias"],
                                   ["--depth", "3", "--fuse-depth", "2", "--slope", "0.2", "--bias", "--init",
                                    "layer", "--scale", "0.3"]])
def test_network_output_reproduces_the_training_loss(extra):
    args = single.parse(["--quick", "--epochs", "200"] + extra)
    sim = single.run(args)
    ds = single.dataset(args)
    y_hat = single.network_output(single.network(args, ds), sim["w"], ds.xs)
    assert 0.5 * np.mean((ds.y - y_hat) ** 2) == pytest.approx(sim["loss"][-1], rel=1e-10)


@pytest.mark.parametrize("argv", [["--fuse-depth", "3"], ["--data", "multi", "--dim", "7"],
                                  ["--data", "xor", "--n", "10"], ["--depth", "1", "--features"],
                                  ["--data", "multi", "--contour"], ["--rho", "1"]])
def test_single_impossible_settings(argv, tmp_path):
    with pytest.raises(SystemExit) as exc:
        single.main(argv + ["--out", str(tmp_path)])
    assert exc.value.code == 2
