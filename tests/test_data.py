"""Data sets (theory.md §3): population statistics, empirical moments, shapes, checks.

Statistical checks use fixed seeds (deterministic) and bounds of 5 standard errors
computed from the population statistics, so a correct generator passes with margin and a
wrong variance, correlation or teacher (an O(1) change) fails by far.
"""
import numpy as np
import pytest

import linfusion as lf
from linfusion import data as D


def gaussian_moment_se(sigma, n):
    """Standard error of the sample mean of x_i x_j for x ~ N(0, Σ): √((Σ_ii Σ_jj + Σ_ij²)/n)."""
    d = np.diag(sigma)
    return np.sqrt((np.outer(d, d) + sigma ** 2) / n)


# ---------------------------------------------------------------------- toy
@pytest.mark.parametrize("rho,ratio", [(0.0, 2.0), (0.5, 3.0), (-0.9, 1.5), (0.3, 0.5)])
def test_toy_population_statistics(rho, ratio):
    ds = D.toy(rho=rho, ratio=ratio, n=100, rng=0)
    assert ds.name == "toy" and ds.in_dims == (1, 1) and ds.n_samples == 100 and ds.out_dim == 1
    assert np.allclose(ds.sigma, [[ratio ** 2, rho * ratio], [rho * ratio, 1.0]], rtol=1e-15, atol=0)
    assert np.array_equal(ds.w_star, [[1.0, 1.0]])
    assert ds.noise == 0.0
    # noiseless: y = x_A + x_B (W* = (1, 1)) exactly, up to the rounding of one sum
    assert np.max(np.abs(ds.y[:, 0] - ds.xs[0][:, 0] - ds.xs[1][:, 0])) <= 1e-14 * np.abs(ds.y).max()
    assert np.array_equal(ds.x, np.concatenate(ds.xs, axis=1))


def test_toy_empirical_moments_converge_to_population():
    rho, ratio, n = 0.5, 2.0, 200_000
    ds = D.toy(rho=rho, ratio=ratio, n=n, rng=1)
    sigma = ds.sigma
    mo = ds.moments()
    se = gaussian_moment_se(sigma, n)
    assert np.all(np.abs(mo.sxx - sigma) < 5 * se)
    # population Σyx = W* Σ = (r² + ρr, 1 + ρr) and <y²> = r² + 1 + 2ρr (theory.md §3a)
    syx_pop = np.array([[ratio ** 2 + rho * ratio, 1 + rho * ratio]])
    syy_pop = ratio ** 2 + 1 + 2 * rho * ratio
    # y is a linear combination of x with variance syy_pop: the same Gaussian SE formula applies
    se_syx = np.sqrt((syy_pop * np.diag(sigma) + syx_pop[0] ** 2) / n)
    assert np.all(np.abs(mo.syx - syx_pop) < 5 * se_syx)
    assert abs(mo.syy - syy_pop) < 5 * np.sqrt(2 * syy_pop ** 2 / n)
    # and the error shrinks like 1/√n: 100x fewer samples are clearly worse on this seed family
    errs_small = [np.abs(D.toy(rho=rho, ratio=ratio, n=n // 100, rng=s).moments().sxx - sigma).max()
                  for s in range(10)]
    assert np.abs(mo.sxx - sigma).max() < np.median(errs_small)


def test_toy_noise_and_teacher():
    ds = D.toy(rho=0.2, ratio=2.0, n=100_000, noise=0.5, w_star=(0.375, 1.0), rng=2)
    assert np.array_equal(ds.w_star, [[0.375, 1.0]]) and ds.noise == 0.5
    resid = ds.y[:, 0] - ds.x @ ds.w_star[0]
    # residual variance 0.25 estimated from 1e5 samples: relative sd √(2/n) = 0.45 %, 3 % is > 6 sd
    assert np.var(resid) == pytest.approx(0.25, rel=0.03)
    assert abs(np.mean(resid * ds.xs[0][:, 0])) < 5 * 0.5 * 2.0 / np.sqrt(100_000)   # noise ⟂ inputs
    assert ds.params == dict(rho=0.2, ratio=2.0, n=100_000, noise=0.5, w_star=[0.375, 1.0])


def test_toy_rng_reproducible():
    a, b, c = D.toy(n=50, rng=3), D.toy(n=50, rng=3), D.toy(n=50, rng=4)
    assert np.array_equal(a.y, b.y) and not np.array_equal(a.y, c.y)
    g = np.random.default_rng(3)
    assert np.array_equal(D.toy(n=50, rng=g).y, a.y)


def test_toy_errors():
    with pytest.raises(ValueError, match=r"^rho == 1\.0, must be < 1\.0\.$"):
        D.toy(rho=1.0)
    with pytest.raises(ValueError, match=r"^rho == -1\.0, must be > -1\.0\.$"):
        D.toy(rho=-1.0)
    with pytest.raises(ValueError, match=r"^rho == 1\.5, must be < 1"):
        D.toy(rho=1.5)
    with pytest.raises(ValueError, match=r"^rho == nan, must be finite"):
        D.toy(rho=float("nan"))
    with pytest.raises(ValueError, match=r"^ratio == 0(\.0)?, must be > 0"):
        D.toy(ratio=0)
    with pytest.raises(ValueError, match=r"^ratio == -2\.0, must be > 0"):
        D.toy(ratio=-2.0)
    with pytest.raises(ValueError, match=r"^n == 0, must be >= 1"):
        D.toy(n=0)
    with pytest.raises(ValueError, match=r"^noise == -0\.1, must be >= 0"):
        D.toy(noise=-0.1)
    with pytest.raises(ValueError, match=r"^w_star has shape \(1, 3\), must have shape \(1, 2\)"):
        D.toy(w_star=(1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match=r"^rho == '0', must be a real number"):
        D.toy(rho="0")


# ---------------------------------------------------------------------- multi
@pytest.mark.parametrize("n", [700, 70])
def test_multi(n):
    ds = D.multi(n=n, rng=5)
    assert ds.in_dims == (50, 50) and ds.n_samples == n and ds.out_dim == 1
    assert np.array_equal(ds.sigma, np.diag(np.r_[np.full(50, 3.0), np.ones(50)]))
    assert np.array_equal(ds.w_star, np.full((1, 100), 0.1)) and ds.noise == 0.5
    # pooled variance of each half over n·50 entries: relative sd √(2/(50 n)) <= 2.4 %; 15 % > 6 sd
    assert np.var(ds.xs[0]) == pytest.approx(3.0, rel=0.15)
    assert np.var(ds.xs[1]) == pytest.approx(1.0, rel=0.15)
    resid = ds.y[:, 0] - ds.x @ ds.w_star[0]
    # noise variance 0.25 from n samples: relative sd √(2/n) = 17 % at n = 70; 6 sd bound
    assert np.var(resid) == pytest.approx(0.25, rel=6 * np.sqrt(2 / n))
    # A is learned first: its Σyx per coordinate is 0.3 against 0.1 (theory.md §3b)
    mo = ds.moments()
    assert np.mean(mo.syx[0, :50]) > np.mean(mo.syx[0, 50:])


def test_multi_errors():
    with pytest.raises(ValueError, match=r"^dim == 99, must be even"):
        D.multi(dim=99)
    with pytest.raises(ValueError, match=r"^dim == 0, must be >= 2"):
        D.multi(dim=0)


# ---------------------------------------------------------------------- random statistics
def test_random_stats():
    ds = D.random_stats(dim=6, n=100_000, rng=7)
    assert ds.in_dims == (3, 3) and ds.n_samples == 100_000
    s = ds.sigma
    assert s.shape == (6, 6) and np.array_equal(s, s.T) and np.linalg.eigvalsh(s).min() > 0
    assert ds.w_star.shape == (1, 6) and np.all(np.abs(ds.w_star) < 1)
    assert ds.noise == 0.0
    assert np.max(np.abs(ds.y[:, 0] - ds.x @ ds.w_star[0])) <= 1e-12 * np.abs(ds.y).max()   # noiseless
    mo = ds.moments()
    assert np.all(np.abs(mo.sxx - s) < 5 * gaussian_moment_se(s, 100_000))
    again = D.random_stats(dim=6, n=10, rng=7)
    assert np.array_equal(again.sigma, D.random_stats(dim=6, n=10, rng=7).sigma)
    assert not np.array_equal(again.sigma, D.random_stats(dim=6, n=10, rng=8).sigma)
    with pytest.raises(ValueError, match=r"^dim == 5, must be even"):
        D.random_stats(dim=5)


def test_random_stats_scale_is_two_to_one():
    """Σ ~ InverseWishart(df = D + 2, Ψ = diag(2 I, I)) (theory.md §3c).

    Ψ^(-1/2) Σ Ψ^(-1/2) ~ IW(df, I), whose law is invariant under permutations, so
    log(σ_A²/σ_B²) − log 2 is symmetric about 0 and the median log ratio is log 2 = 0.69.
    (Moments are no use: with df = D + 2 the entries have infinite variance.) Over 400
    draws the sample median has standard error ≈ 0.06 (bootstrap; spread of the log ratio
    ≈ 1.1): the bounds [0.35, 1.05] are ≈ 6 SE away, and Ψ = I (median 0) or Ψ = diag(4 I, I)
    (median 1.39) fail.
    """
    logs = []
    for s in range(400):
        sig = D.random_stats(dim=2, n=1, rng=s).sigma
        logs.append(np.log(sig[0, 0] / sig[1, 1]))
    assert 0.35 < np.median(logs) < 1.05


# ---------------------------------------------------------------------- XOR + linear
@pytest.mark.parametrize("sigma_a", [1.0, 3.0])
def test_xor_linear(sigma_a):
    n = 8192
    ds = D.xor_linear(sigma_a=sigma_a, n=n, rng=9)
    assert ds.in_dims == (1, 2) and ds.n_samples == n
    xa, xb, y = ds.xs[0][:, 0], ds.xs[1], ds.y[:, 0]
    corners, counts = np.unique(xb, axis=0, return_counts=True)
    assert corners.tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]] and counts.tolist() == [n // 4] * 4
    xor = xb[:, 0] * xb[:, 1]
    assert np.array_equal(y, xa - xor)
    # the XOR part has zero linear correlation with x_B exactly (balanced corners) ...
    assert np.all(np.mean(xor[:, None] * xb, axis=0) == 0)
    # ... and with x_A in expectation: |<xor·x_A>| within 5 standard errors σ_A/√n
    assert abs(np.mean(xor * xa)) < 5 * sigma_a / np.sqrt(n)
    # so Σyx_B ≈ 0 and Σyx_A ≈ σ_A²: B is invisible to a linear model
    mo = ds.moments()
    assert np.all(np.abs(mo.syx[0, 1:]) < 5 * sigma_a / np.sqrt(n))
    assert mo.syx[0, 0] == pytest.approx(sigma_a ** 2, rel=5 * np.sqrt(2 / n))
    assert np.array_equal(ds.sigma, np.diag([sigma_a ** 2, 1.0, 1.0]))
    assert ds.w_star is None
    assert abs(np.std(xa) / sigma_a - 1) < 5 / np.sqrt(2 * n)


def test_xor_linear_errors():
    with pytest.raises(ValueError, match=r"^n == 10, must be a multiple of 4"):
        D.xor_linear(n=10)
    with pytest.raises(ValueError, match=r"^sigma_a == 0\.0, must be > 0"):
        D.xor_linear(sigma_a=0.0)


# ---------------------------------------------------------------------- user arrays
def test_from_arrays_and_moments_of_user_arrays():
    rng = np.random.default_rng(10)
    xa, xb = rng.standard_normal(20), rng.standard_normal((20, 3))
    y = rng.standard_normal(20)
    ds = D.from_arrays([xa, xb], y)
    assert ds.in_dims == (1, 3) and ds.y.shape == (20, 1) and ds.name == "arrays"
    assert ds.sigma is None and ds.w_star is None
    x = np.column_stack([xa, xb])
    mo = D.moments([xa, xb], y)
    assert np.allclose(mo.sxx, x.T @ x / 20, rtol=1e-14, atol=0)
    assert np.allclose(mo.syx, (y @ x / 20)[None, :], rtol=1e-14, atol=0)
    assert mo.syy == pytest.approx(np.mean(y ** 2), rel=1e-14)
    # one (n, D) array is one modality; out_dim 2: <|y|²> sums the outputs
    y2 = rng.standard_normal((20, 2))
    mo2 = D.moments(x, y2)
    assert mo2.sxx.shape == (4, 4) and mo2.syx.shape == (2, 4)
    assert mo2.syy == pytest.approx(np.mean(np.sum(y2 ** 2, axis=1)), rel=1e-14)
    # a Dataset's moments() are those of its arrays
    assert np.array_equal(ds.moments().sxx, mo.sxx)
    # it trains like any other data set
    res = lf.train(lf.FusionNet((1, 3), 1, 4), ds, epochs=3, rng=0)
    assert res.eg is None and res.status == "completed"
    full = D.from_arrays([xa, xb], y, sigma=np.eye(4), w_star=np.zeros(4), noise=0.1)
    assert full.w_star.shape == (1, 4) and full.noise == 0.1
    assert lf.train(lf.FusionNet((1, 3), 1, 4), full, epochs=3, rng=0).eg is not None


def test_from_arrays_errors():
    x = np.zeros((10, 2))
    y = np.zeros(10)
    with pytest.raises(ValueError, match=r"^xs\[1\] has 9 samples, must have as many as y \(10\)"):
        D.from_arrays([x, np.zeros((9, 1))], y)
    with pytest.raises(ValueError, match=r"^xs\[0\] has 10 samples, must have as many as y \(11\)"):
        D.from_arrays([x], np.zeros(11))
    bad = x.copy()
    bad[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"^xs\[0\] has 1 non-finite entries, must be all finite"):
        D.from_arrays([bad], y)
    with pytest.raises(ValueError, match=r"^y has 2 non-finite entries"):
        D.from_arrays([x], np.r_[np.nan, np.nan, np.zeros(8)])
    with pytest.raises(ValueError, match=r"^xs\[0\] has 3 dimensions \(shape \(10, 2, 1\)\), must have 2"):
        D.from_arrays([np.zeros((10, 2, 1))], y)
    with pytest.raises(ValueError, match=r"^y has 3 dimensions"):
        D.from_arrays([x], np.zeros((10, 1, 1)))
    with pytest.raises(TypeError, match=r"^xs must be a non-empty sequence"):
        D.from_arrays(x, y)
    with pytest.raises(TypeError, match=r"^xs must be a non-empty sequence"):
        D.from_arrays([], y)
    with pytest.raises(TypeError, match=r"^xs\[0\] could not be converted"):
        D.from_arrays([np.array([["a", "b"]] * 10)], y)
    with pytest.raises(ValueError, match=r"^sigma has smallest eigenvalue -1, must be positive definite"):
        D.from_arrays([x], y, sigma=np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"^sigma has shape \(3, 3\), must have shape \(2, 2\)"):
        D.from_arrays([x], y, sigma=np.eye(3))
    with pytest.raises(ValueError, match=r"^w_star has shape \(1, 3\), must have shape \(1, 2\)"):
        D.from_arrays([x], y, w_star=np.zeros(3))
    with pytest.raises(ValueError, match=r"^noise == -1\.0, must be >= 0"):
        D.from_arrays([x], y, noise=-1.0)
    with pytest.raises(ValueError, match=r"^xs\[1\] has 9 samples"):
        D.moments([x, np.zeros((9, 1))], y)


# ---------------------------------------------------------------------- one validation for every entry (issue 11.4)
def test_dataset_constructor_converts():
    """int, float32 and Fortran-ordered input become C-contiguous float64 (no recompilation downstream)."""
    rng = np.random.default_rng(0)
    xa = rng.integers(-3, 4, size=(20, 1))
    xb = np.asfortranarray(rng.standard_normal((20, 2)).astype(np.float32))
    ds = D.Dataset([xa, xb], rng.integers(0, 2, size=(20, 1)))
    assert isinstance(ds.xs, tuple)
    for a in ds.xs + (ds.y,):
        assert a.dtype == np.float64 and a.flags.c_contiguous
    assert np.array_equal(ds.xs[0], xa) and np.array_equal(ds.xs[1], xb.astype(np.float64))
    assert ds.in_dims == (1, 2) and ds.in_dim == 3


@pytest.mark.parametrize("build,exc,message", [
    (lambda x, y: D.Dataset((x[:, 0], x), y), ValueError,
     r"^xs\[0\] has 1 dimensions \(shape \(16,\)\), must have 2 \(n_samples, columns\); make a column"),
    (lambda x, y: D.Dataset((x,), y[:, 0]), ValueError, r"^y has 1 dimensions \(shape \(16,\)\), must have 2"),
    (lambda x, y: D.Dataset((x + 1j * x,), y), TypeError, r"^xs\[0\] has complex dtype complex128, must be real"),
    (lambda x, y: D.Dataset((x,), y.astype(complex)), TypeError, r"^y has complex dtype"),
    (lambda x, y: D.Dataset((x.astype(str),), y), TypeError, r"^xs\[0\] could not be converted"),
    (lambda x, y: D.Dataset(x, y), TypeError, r"^xs is a ndarray, must be a non-empty tuple of 2-D arrays"),
    (lambda x, y: D.Dataset((), y), TypeError, r"^xs is a tuple, must be a non-empty tuple"),
    (lambda x, y: D.Dataset((x, x[:-1]), y), ValueError, r"^xs\[1\] has 15 samples, must have as many as y \(16\)"),
    (lambda x, y: D.Dataset((x,), y[:0]), ValueError, r"^y has 0 samples, must have at least 1"),
    (lambda x, y: D.Dataset((x[:, :0],), y), ValueError, r"^xs\[0\] has shape \(16, 0\), must have at least one column"),
    (lambda x, y: D.Dataset((x,), y, sigma=np.eye(3)), ValueError, r"^sigma has shape \(3, 3\), must have shape \(2, 2\)"),
    (lambda x, y: D.Dataset((x,), y, w_star=np.ones(3)), ValueError, r"^w_star has shape \(1, 3\), must have shape \(1, 2\)"),
    (lambda x, y: D.Dataset((x,), y, noise=np.inf), ValueError, r"^noise == inf, must be finite"),
    (lambda x, y: D.Dataset((x,), y, name=3), TypeError, r"^name == 3, must be a str"),
    (lambda x, y: D.Dataset((x * 1e160,), y), ValueError,
     r"^xs\[0\] has largest \|entry\| .*e\+160, must be at most .* so that its second moments .* are finite"),
    (lambda x, y: D.Dataset((x,), y * 1e155), ValueError, r"^y has largest \|entry\|"),
])
def test_dataset_constructor_errors(build, exc, message):
    x = np.random.default_rng(1).standard_normal((16, 2))
    with pytest.raises(exc, match=message):
        build(x, x[:, :1] + x[:, 1:])


def test_from_arrays_complex_is_an_error_not_a_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match=r"^xs\[0\] has complex dtype"):
            D.from_arrays([np.ones(4) * (1 + 1j)], np.ones(4))


def test_huge_inputs_fail_clearly_before_linear_algebra():
    """|x| ~ 1e160 overflowed the moments and ended in LAPACK's LinAlgError; now a ValueError at once."""
    ds = D.toy(n=64, rng=0)
    with pytest.raises(ValueError, match=r"^xs\[0\] has largest \|entry\|"):
        D.from_arrays([ds.xs[0] * 1e160, ds.xs[1]], ds.y)
    # just inside the limit the data are accepted and their moments are finite
    n = 64
    limit = np.sqrt(np.finfo(float).max / (16 * n))
    x = np.full((n, 1), 0.99 * limit)
    mo = D.from_arrays([x, np.ones((n, 1))], np.ones(n)).moments()
    assert np.all(np.isfinite(mo.sxx)) and np.all(np.isfinite(mo.syx))


def test_moments_constructor_validates():
    good = D.Moments(np.eye(2), np.ones((1, 2)), 3.0)
    assert good.sxx.flags.c_contiguous and good.in_dim == 2 and good.out_dim == 1 and good.syy == 3.0
    assert D.Moments(np.eye(2, dtype=int), [[1, 0]], 1).sxx.dtype == np.float64
    with pytest.raises(ValueError, match=r"^sxx has shape \(2, 3\), must be square"):
        D.Moments(np.ones((2, 3)), np.ones((1, 3)), 1.0)
    with pytest.raises(ValueError, match=r"^sxx is not symmetric"):
        D.Moments(np.array([[1.0, 0.5], [0.0, 1.0]]), np.ones((1, 2)), 1.0)
    with pytest.raises(ValueError, match=r"^sxx has smallest eigenvalue -1, must be positive semi-definite"):
        D.Moments(np.diag([1.0, -1.0]), np.ones((1, 2)), 1.0)
    with pytest.raises(ValueError, match=r"^syx has 1 dimensions \(shape \(2,\)\), must have 2"):
        D.Moments(np.eye(2), np.ones(2), 1.0)
    with pytest.raises(ValueError, match=r"^syx has shape \(1, 3\), must have shape \(out_dim, 2\)"):
        D.Moments(np.eye(2), np.ones((1, 3)), 1.0)
    with pytest.raises(ValueError, match=r"^syy == -1\.0, must be >= 0"):
        D.Moments(np.eye(2), np.ones((1, 2)), -1.0)
    with pytest.raises(ValueError, match=r"^syx is not in the range of sxx"):
        D.Moments(np.diag([1.0, 0.0]), np.ones((1, 2)), 1.0)
    with pytest.raises(TypeError, match=r"^sxx has complex dtype"):
        D.Moments(np.eye(2) + 0j, np.ones((1, 2)), 1.0)
    with pytest.raises(ValueError, match=r"^syx has 1 non-finite entries"):
        D.Moments(np.eye(2), [[1.0, np.nan]], 1.0)
    # moments of any magnitude float64 holds: the range check does not overflow inside LAPACK
    big = D.Moments(np.diag([1e300, 1e299]), [[1e300, 0.0]], 1e300)
    assert big.sxx[0, 0] == 1e300


def test_sigma_is_population_and_sxx_is_empirical():
    """The names stay; what they mean is documented: Dataset.sigma is the distribution's E[x xᵀ],
    Moments.sxx the samples' mean <x xᵀ>."""
    ds = D.toy(rho=0.5, ratio=2.0, n=50, rng=3)
    assert np.array_equal(ds.sigma, [[4.0, 1.0], [1.0, 1.0]])
    assert np.allclose(ds.moments().sxx, ds.x.T @ ds.x / 50, rtol=1e-14, atol=0)
    assert not np.allclose(ds.moments().sxx, ds.sigma, rtol=0.01)
    assert "population" in D.Dataset.__doc__ and "empirical" in D.Moments.__doc__
