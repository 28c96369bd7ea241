"""Fusion classifiers trained by mini-batch SGD with softmax cross-entropy (noisy two-modality MNIST).

One family, :class:`ClassifierNet`, parametrised by ``kind``:

- ``'dense'`` (the original's FCN): per-modality encoders of ``width`` units (layers
  1 .. L_f − 1), the fusion layer on the concatenation of the encoders' outputs (the flat
  images when L_f = 1), shared layers up to depth L, the last one with ``classes`` units;
  a ReLU after every layer but the last.
- ``'conv'`` (the original's CNN): the same layers as 3×3 convolutions with ``width``
  channels (stride 1, no padding), the fusion convolution on the channel concatenation, a
  ReLU after every convolution, 2×2 max pooling (odd sizes floored), then a linear layer to
  ``classes``.

Every layer has a bias; the output is a log-softmax trained with the mean cross-entropy.
All parameters live in one flat vector whose blocks (:attr:`ClassifierNet.layout`) are
named and shaped as in the original PyTorch modules (``encodeA_1.weight`` (out, in) or
(out, in, 3, 3), ``fuse.bias``, ``decode_2.weight``, ``fc.weight`` (classes, C·H·W)), so a
state dict copies one to one. The fusion weight is one block whose columns (input
channels) are modality A's then B's.

The engine (:mod:`linfusion._classify_engine`) runs on NumPy with the time in BLAS
matrix products; convolutions are im2col products in channels-last layout.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import mnist as _mnist
from .validation import check_choice, check_int, check_rng, check_scalar

__all__ = ["ClassifierNet", "KINDS", "INITS", "EVALS", "ClassifyResult", "train_classifier", "learning_rate"]

KINDS = ("dense", "conv")
INITS = ("torch",)
EVALS = ("both", "a", "b")


@dataclass(frozen=True)
class Block:
    """One parameter block: its name, place in the flat vector, shape, layer and kind."""

    name: str
    offset: int
    shape: tuple
    layer: int
    modality: int    # -1: shared
    bias: bool
    fan_in: int

    @property
    def size(self):
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class ClassifierNet:
    """A fusion classifier of depth L fused at layer L_f (dense or convolutional).

    Parameters
    ----------
    kind : {'dense', 'conv'}
    image : tuple of int
        (H, W) of each modality's image (a dense net sees it flattened).
    channels : int
        Input channels per modality.
    n_modalities : int
        Number of modalities (each an image of the same size).
    width : int
        Hidden units (dense) or channels (conv) of every hidden layer.
    depth : int
        L: number of dense layers, or of convolutions (the conv net adds its linear head).
    fuse_depth : int
        L_f in 1 .. L.
    classes : int
    """

    kind: str = "dense"
    image: tuple = (28, 28)
    channels: int = 1
    n_modalities: int = 2
    width: int = 500
    depth: int = 4
    fuse_depth: int = 2
    classes: int = 10
    layout: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        check_choice("kind", self.kind, KINDS)
        try:
            image = tuple(int(check_int(f"image[{i}]", v, lo=1)) for i, v in enumerate(self.image))
        except TypeError:
            raise TypeError(f"image == {self.image!r}, must be a pair of positive integers (H, W).") from None
        if len(image) != 2:
            raise ValueError(f"image == {self.image!r}, must be a pair (H, W).")
        object.__setattr__(self, "image", image)
        for name, lo in (("channels", 1), ("n_modalities", 1), ("width", 1), ("depth", 1), ("classes", 2)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo=lo))
        check_int("fuse_depth", self.fuse_depth, lo=1, hi=self.depth, hi_name="depth")
        if self.kind == "conv":
            h, w = image[0] - 2 * self.depth, image[1] - 2 * self.depth
            if h < 2 or w < 2:
                raise ValueError(f"depth == {self.depth} with image == {image}: {self.depth} valid 3×3 convolutions "
                                 f"leave {h}×{w} pixels, must leave at least 2×2 for the 2×2 pooling.")
        object.__setattr__(self, "layout", self._build_layout())

    # ------------------------------------------------------------------ structure
    @property
    def letters(self):
        return [chr(ord("A") + k) for k in range(self.n_modalities)]

    @property
    def in_dim(self):
        """Inputs per modality at layer 1 (pixels × channels for dense, channels for conv)."""
        return self.channels * self.image[0] * self.image[1] if self.kind == "dense" else self.channels

    def spatial(self, layer):
        """(H, W) of the output of convolution ``layer`` (conv nets)."""
        return self.image[0] - 2 * layer, self.image[1] - 2 * layer

    @property
    def pooled(self):
        """(H, W) after the 2×2 pooling (conv nets)."""
        h, w = self.spatial(self.depth)
        return h // 2, w // 2

    def layer_names(self):
        """Names of the layers in forward order: (name, layer, modality)."""
        out = []
        for layer in range(1, self.fuse_depth):
            out += [(f"encode{m}_{layer}", layer, k) for k, m in enumerate(self.letters)]
        out.append(("fuse", self.fuse_depth, -1))
        out += [(f"decode_{layer - 1}", layer, -1) for layer in range(self.fuse_depth + 1, self.depth + 1)]
        if self.kind == "conv":
            out.append(("fc", self.depth + 1, -1))
        return out

    def _build_layout(self):
        blocks, offset = [], 0
        taps = 9 if self.kind == "conv" else 1
        for name, layer, k in self.layer_names():
            if name == "fc":
                rows, cols, taps_here = self.classes, self.width * self.pooled[0] * self.pooled[1], 1
            else:
                per = self.in_dim if layer == 1 else self.width
                cols = per * (self.n_modalities if name == "fuse" else 1)
                last = self.kind == "dense" and layer == self.depth
                rows, taps_here = (self.classes if last else self.width), taps
            shape = (rows, cols, 3, 3) if taps_here == 9 else (rows, cols)
            fan_in = cols * taps_here
            blocks.append(Block(f"{name}.weight", offset, shape, layer, k, False, fan_in))
            offset += blocks[-1].size
            blocks.append(Block(f"{name}.bias", offset, (rows,), layer, k, True, fan_in))
            offset += rows
        return tuple(blocks)

    @property
    def n_params(self):
        last = self.layout[-1]
        return last.offset + last.size

    def unpack(self, w):
        """Name -> view of the flat parameter vector ``w`` in the block's shape."""
        return {b.name: w[b.offset:b.offset + b.size].reshape(b.shape) for b in self.layout}

    def init(self, scheme="torch", rng=None, dtype=np.float32):
        """Initial parameters: 'torch' is PyTorch's default, U(−1/√fan_in, 1/√fan_in) for weights and biases.

        (``kaiming_uniform_(a=√5)`` has bound gain·√(3/fan_in) with gain = √(2/(1 + 5)), i.e.
        1/√fan_in; biases take the same bound.)
        """
        check_choice("scheme", scheme, INITS)
        rng = np.random.default_rng(check_rng("rng", rng))
        w = np.empty(self.n_params, dtype=dtype)
        for b in self.layout:
            bound = 1.0 / math.sqrt(b.fan_in)
            w[b.offset:b.offset + b.size] = rng.uniform(-bound, bound, b.size)
        return w

    def flops(self, n):
        """Multiply-add flops (2·m·n·k per product) of one forward pass over ``n`` samples."""
        total = 0
        for b in self.layout:
            if b.bias:
                continue
            if b.name.startswith("fc"):
                positions = 1
            elif self.kind == "conv":
                h, w = self.spatial(b.layer)
                positions = h * w
            else:
                positions = 1
            total += 2 * n * positions * b.size
        return total


# --------------------------------------------------------------------------- training
@dataclass
class ClassifyResult:
    """A stochastic training run of a classifier.

    Attributes
    ----------
    epochs : ndarray (n_epochs + 1,)
        0 .. n_epochs.
    train_loss : ndarray (n_epochs + 1,)
        Mean cross-entropy over the batches of each epoch (entry 0: the first batch at
        initialisation); NaN after divergence.
    first_batch_loss : ndarray (n_epochs + 1,)
        The loss of each epoch's first batch (the original's record; entry 0 = entry 1).
    lr : ndarray (n_epochs,)
        Learning rate of each epoch.
    eval_epochs : ndarray (n_eval,)
        Epochs at which the test set was evaluated (0, every ``eval_every``, the last).
    accuracy : dict
        Evaluation name ('both', 'a', 'b') -> test accuracy at ``eval_epochs``.
    test_loss : dict
        Evaluation name -> mean test cross-entropy at ``eval_epochs``.
    status : str
        'completed' or 'diverged' (non-finite loss; later entries are NaN).
    message : str
    w : ndarray
        Final parameters (at divergence: those before the step that diverged).
    seconds : float
        Training wall time (evaluations included).
    """

    epochs: np.ndarray
    train_loss: np.ndarray
    first_batch_loss: np.ndarray
    lr: np.ndarray
    eval_epochs: np.ndarray
    accuracy: dict
    test_loss: dict
    status: str
    message: str
    w: np.ndarray
    seconds: float

    @property
    def usable(self):
        return self.status == "completed"


def learning_rate(lr, epoch, gamma=1.0, step=1):
    """The learning rate of epoch ``epoch`` (0-based): lr · gamma^⌊epoch/step⌋ (PyTorch's StepLR)."""
    return lr * gamma ** (epoch // step)


def _check_data(digits, net):
    for part in ("x_train", "x_test"):
        x = getattr(digits, part)
        if x.ndim != 3 or tuple(x.shape[1:]) != net.image:
            raise ValueError(f"data.{part} has shape {x.shape}, must be (n, {net.image[0]}, {net.image[1]}) for "
                             f"the network's image {net.image}.")
    for part in ("y_train", "y_test"):
        y = getattr(digits, part)
        if y.size and (y.min() < 0 or y.max() >= net.classes):
            raise ValueError(f"data.{part} has labels in [{y.min()}, {y.max()}], must lie in [0, {net.classes}).")
    if net.n_modalities != 2 or net.channels != 1:
        raise ValueError(f"n_modalities == {net.n_modalities} and channels == {net.channels}: the two-modality "
                         "MNIST data needs 2 modalities of 1 channel.")


def train_classifier(net, data, *, lr=0.04, gamma=0.996, step=1, epochs=200, batch=1000, test_batch=1000,
                     eval_every=1, evals=EVALS, seed=0, dtype=np.float32, corruption="original", p_a=0.8,
                     p_ab=0.2, w0=None, progress=None):
    """Train a fusion classifier on two-modality MNIST by mini-batch SGD with cross-entropy.

    Each epoch shuffles the training set (seeded), corrupts every batch afresh
    (:func:`linfusion.mnist.corrupt`), and takes one SGD step per batch (the last batch may
    be smaller); the learning rate of epoch e is ``lr · gamma^⌊e/step⌋``. The test set is
    evaluated before the first epoch, every ``eval_every`` epochs and after the last:
    'both' feeds a fresh corruption of both modalities, 'a' the clean image as A and zeros
    as B, 'b' zeros as A and the clean image as B (the original's unimodal accuracies).

    Parameters
    ----------
    net : ClassifierNet
    data : linfusion.mnist.Digits
    lr, gamma : float
        Learning rate (> 0) and its decay factor per ``step`` epochs (0 < gamma <= 1).
    step, epochs, batch, test_batch, eval_every : int
    evals : tuple of {'both', 'a', 'b'}
    seed : int
        Master seed: initial weights, shuffling, training and test corruption are four
        independent streams of ``np.random.SeedSequence(seed)``.
    dtype : numpy float32 or float64
    corruption : {'original', 'intended'}
    p_a, p_ab : float
        Probabilities of the original's Bernoulli draws a and b.
    w0 : ndarray, optional
        Initial parameters (default: PyTorch's default initialisation from ``seed``).
    progress : callable, optional
        Called as ``progress(epoch)`` after each epoch.

    Returns
    -------
    ClassifyResult
    """
    from ._classify_engine import Engine

    if not isinstance(net, ClassifierNet):
        raise TypeError(f"net == {net!r}, must be a ClassifierNet.")
    lr = check_scalar("lr", lr, lo=0.0, lo_open=True)
    gamma = check_scalar("gamma", gamma, lo=0.0, hi=1.0, lo_open=True)
    step = check_int("step", step, lo=1)
    epochs = check_int("epochs", epochs, lo=1)
    batch = check_int("batch", batch, lo=1)
    test_batch = check_int("test_batch", test_batch, lo=1)
    eval_every = check_int("eval_every", eval_every, lo=1)
    seed = check_int("seed", seed, lo=0)
    if isinstance(evals, str) or not all(e in EVALS for e in evals) or not evals:
        raise ValueError(f"evals == {evals!r}, must be a non-empty tuple among {', '.join(EVALS)}.")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype == {dtype}, must be float32 or float64.")
    check_choice("corruption", corruption, _mnist.CORRUPTIONS)
    p_a = check_scalar("p_a", p_a, lo=0.0, hi=1.0)
    p_ab = check_scalar("p_ab", p_ab, lo=0.0, hi=1.0)
    if not isinstance(data, _mnist.Digits):
        raise TypeError(f"data == {type(data).__name__}, must be linfusion.mnist.Digits (see linfusion.mnist.load).")
    _check_data(data, net)
    init_ss, shuffle_ss, train_ss, test_ss = np.random.SeedSequence(seed).spawn(4)
    if w0 is None:
        w0 = net.init("torch", init_ss, dtype=dtype)
    else:
        w0 = np.asarray(w0)
        if w0.shape != (net.n_params,):
            raise ValueError(f"w0 has shape {w0.shape}, must be ({net.n_params},) for this network.")
        if not np.all(np.isfinite(w0)):
            raise ValueError("w0 has non-finite entries, must be all finite.")
    engine = Engine(net, dtype, w0)
    shuffle_rng, train_rng, test_rng = (np.random.default_rng(s) for s in (shuffle_ss, train_ss, test_ss))
    x_train, x_test = data.x_train.astype(dtype, copy=False), data.x_test.astype(dtype, copy=False)
    n = x_train.shape[0]
    kw = dict(corruption=corruption, p_a=p_a, p_ab=p_ab)

    eval_at = sorted(set(range(0, epochs + 1, eval_every)) | {epochs})
    acc = {e: np.full(len(eval_at), np.nan) for e in evals}
    tloss = {e: np.full(len(eval_at), np.nan) for e in evals}
    train_loss = np.full(epochs + 1, np.nan)
    first = np.full(epochs + 1, np.nan)
    rates = np.array([learning_rate(lr, e, gamma, step) for e in range(epochs)])
    status, message = "completed", f"trained {epochs} epochs"
    started = time.perf_counter()

    def evaluate(i):
        for name in evals:
            correct, total = 0, 0.0
            for s in range(0, x_test.shape[0], test_batch):
                xb, yb = x_test[s:s + test_batch], data.y_test[s:s + test_batch]
                if name == "both":
                    xs = _mnist.corrupt(xb, test_rng, **kw)
                else:
                    zero = np.zeros_like(xb)
                    xs = (xb, zero) if name == "a" else (zero, xb)
                logits = engine.forward(xs, keep=False)
                loss, _ = engine.cross_entropy(logits, yb, grad=False)
                total += loss * len(yb)
                correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
            acc[name][i] = correct / x_test.shape[0]
            tloss[name][i] = total / x_test.shape[0]

    j = 0
    if eval_at[0] == 0:
        evaluate(0)
        j = 1
    for epoch in range(epochs):
        order = shuffle_rng.permutation(n)
        losses = []
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            xs = _mnist.corrupt(x_train[idx], train_rng, **kw)
            loss = engine.step(xs, data.y_train[idx], rates[epoch])
            if not math.isfinite(loss):
                status = "diverged"
                message = f"non-finite loss in epoch {epoch + 1} at lr {rates[epoch]:.4g}"
                break
            losses.append(loss)
        if status == "diverged":
            break
        train_loss[epoch + 1] = float(np.mean(losses))
        first[epoch + 1] = losses[0]
        if epoch == 0:
            first[0] = train_loss[0] = losses[0]
        if j < len(eval_at) and eval_at[j] == epoch + 1:
            evaluate(j)
            j += 1
        if progress is not None:
            progress(epoch + 1)
    return ClassifyResult(np.arange(epochs + 1), train_loss, first, rates, np.array(eval_at), acc, tloss, status,
                          message, engine.w.copy(), time.perf_counter() - started)
