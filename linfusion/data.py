"""The paper's data sets and the second moments of any data set.

Every generator returns a :class:`Dataset`: per-modality inputs, targets and, where
they exist, the population statistics (input second moment Σ, teacher weights W*,
label-noise std). **Modality A is modality 0**: the first-learned one, with the larger
input-output correlation (the larger variance on the toy data), whatever column order
the original code used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .validation import check_array, check_covariance, check_int, check_rng, check_scalar

__all__ = ["Dataset", "Moments", "toy", "multi", "random_stats", "xor_linear", "from_arrays", "moments"]


#: Largest |entry| of data whose second moments float64 can hold: sums of n squares must stay
#: below the largest float64 with a margin of 16 (so that Σxx, Σyx and <|y|²> are finite).
_FLOAT_MAX = float(np.finfo(np.float64).max)


def _magnitude_limit(n):
    """Largest |entry| whose n squares sum to a finite float64, with a margin of 16."""
    return float(np.sqrt(_FLOAT_MAX / (16.0 * max(int(n), 1))))


def _data_matrix(name, value, n=None):
    """A real, finite, C-contiguous float64 matrix of shape (n_samples, columns), else raise."""
    arr = check_array(name, value)
    if arr.ndim != 2:
        hint = "; make a column with x[:, None] (from_arrays does this)" if arr.ndim == 1 else ""
        raise ValueError(f"{name} has {arr.ndim} dimensions (shape {arr.shape}), must have 2 "
                         f"(n_samples, columns){hint}.")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has shape {arr.shape}, must have at least one column.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} samples, must have as many as y ({n}).")
    big = float(np.max(np.abs(arr))) if arr.size else 0.0
    limit = _magnitude_limit(arr.shape[0])
    if big > limit:
        raise ValueError(f"{name} has largest |entry| {big:.3g}, must be at most {limit:.3g} so that its "
                         f"second moments (sums of {arr.shape[0]} squares) are finite in float64; rescale it.")
    return arr


@dataclass(frozen=True, eq=False)
class Moments:
    """Uncentred *empirical* second moments of a data set (means over its samples).

    The constructor validates and converts its arguments, so moments built by hand are as
    safe as those of :func:`moments`. Compare :attr:`Dataset.sigma`, the *population*
    second moment of a generated data set (the distribution's, not the samples').

    Attributes
    ----------
    sxx : ndarray of shape (D, D)
        Σxx = <x xᵀ> over the samples: symmetric, positive semi-definite, finite.
    syx : ndarray of shape (out_dim, D)
        Σyx = <y xᵀ> over the samples; must lie in the row space of ``sxx`` (as for any
        real data set).
    syy : float
        <|y|²> over the samples (>= 0).
    """

    sxx: np.ndarray
    syx: np.ndarray
    syy: float

    def __post_init__(self):
        sxx = check_covariance("sxx", self.sxx, semidefinite=True)
        dim = sxx.shape[0]
        syx = check_array("syx", self.syx, ndim=2)
        if syx.shape[1] != dim or syx.shape[0] < 1:
            raise ValueError(f"syx has shape {syx.shape}, must have shape (out_dim, {dim}) to match sxx {sxx.shape}.")
        syy = check_scalar("syy", self.syy, lo=0.0)
        # Moments of real data have Σyx in the row space of Σxx (else no least-squares minimum).
        scale = float(np.max(np.abs(sxx)))
        if scale == 0.0:
            bad = bool(np.any(syx != 0.0))
        else:
            w = _solve_rows(sxx, syx)
            bad = np.abs(w @ (sxx / scale) - syx / scale).max() > 1e-6 * np.abs(syx / scale).max()
        if bad:
            raise ValueError("syx is not in the range of sxx, must be <y xᵀ> of the same data as sxx.")
        object.__setattr__(self, "sxx", sxx)
        object.__setattr__(self, "syx", syx)
        object.__setattr__(self, "syy", syy)

    @classmethod
    def _trusted(cls, sxx, syx, syy):
        """Moments computed from validated samples: valid by construction, so not re-checked."""
        mo = object.__new__(cls)
        object.__setattr__(mo, "sxx", sxx)
        object.__setattr__(mo, "syx", syx)
        object.__setattr__(mo, "syy", syy)
        return mo

    @property
    def in_dim(self):
        """Total input dimension D."""
        return self.sxx.shape[0]

    @property
    def out_dim(self):
        return self.syx.shape[0]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Per-modality inputs and targets, with population statistics where known.

    The constructor validates and converts (one check for every way data enter the
    toolkit): each ``xs[k]`` and ``y`` become real, finite, C-contiguous float64 matrices
    with the same number of rows; integer and boolean input is converted, complex or
    non-numeric input and 1-D arrays are errors (:func:`from_arrays` turns 1-D arrays into
    columns); every |entry| must be small enough that the second moments (sums of n
    squares) are finite in float64.

    Attributes
    ----------
    xs : tuple of ndarray of shape (n_samples, d_k)
        Inputs of each modality; ``xs[0]`` is modality A (first-learned).
    y : ndarray of shape (n_samples, out_dim)
        Targets.
    sigma : ndarray of shape (D, D) or None
        The *population* input second moment E[x xᵀ] of the distribution the samples were
        drawn from (positive definite), used for the generalisation error. The *empirical*
        one, <x xᵀ> over these samples, is ``moments().sxx``.
    w_star : ndarray of shape (out_dim, D) or None
        Teacher weights: y = W* x + noise.
    noise : float
        Label-noise standard deviation.
    name : str
        Which generator made it.
    params : dict
        The generator's arguments.
    """

    xs: tuple
    y: np.ndarray
    sigma: np.ndarray | None = None
    w_star: np.ndarray | None = None
    noise: float = 0.0
    name: str = "arrays"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        xs = self.xs
        if isinstance(xs, np.ndarray) or not isinstance(xs, (tuple, list)) or len(xs) == 0:
            raise TypeError(f"xs is a {type(xs).__name__}, must be a non-empty tuple of 2-D arrays, one per "
                            "modality (n_samples, d_k).")
        y = _data_matrix("y", self.y)
        if y.shape[0] < 1:
            raise ValueError("y has 0 samples, must have at least 1.")
        xs = tuple(_data_matrix(f"xs[{k}]", x, y.shape[0]) for k, x in enumerate(xs))
        dim = sum(x.shape[1] for x in xs)
        sigma = None if self.sigma is None else check_covariance("sigma", self.sigma, dim=dim)
        w_star = None
        if self.w_star is not None:
            w_star = check_array("w_star", np.atleast_2d(self.w_star), ndim=2, shape=(y.shape[1], dim))
        if not isinstance(self.name, str):
            raise TypeError(f"name == {self.name!r}, must be a str.")
        if not isinstance(self.params, dict):
            raise TypeError(f"params is a {type(self.params).__name__}, must be a dict.")
        object.__setattr__(self, "xs", xs)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "w_star", w_star)
        object.__setattr__(self, "noise", check_scalar("noise", self.noise, lo=0.0))

    @property
    def in_dims(self):
        """Input dimension of each modality."""
        return tuple(x.shape[1] for x in self.xs)

    @property
    def in_dim(self):
        """Total input dimension D."""
        return int(sum(self.in_dims))

    @property
    def n_samples(self):
        return self.y.shape[0]

    @property
    def out_dim(self):
        return self.y.shape[1]

    @property
    def x(self):
        """All modalities side by side, shape (n_samples, D) (a new array)."""
        return np.concatenate(self.xs, axis=1)

    def moments(self):
        """Empirical second moments over the samples, see :func:`moments`.

        Returns
        -------
        Moments
        """
        return _moments_of_arrays(self.x, self.y)


def from_arrays(xs, y, *, sigma=None, w_star=None, noise=0.0):
    """Wrap a user's own arrays as a :class:`Dataset`.

    The same checks as the :class:`Dataset` constructor, after turning 1-D arrays into
    single columns.

    Parameters
    ----------
    xs : sequence of array_like of shape (n_samples, d_k) or (n_samples,)
        Inputs per modality; by convention modality 0 is A, the first-learned one.
    y : array_like of shape (n_samples, out_dim) or (n_samples,)
    sigma : array_like of shape (D, D), optional
        Population second moment of the inputs (positive definite).
    w_star : array_like of shape (out_dim, D), optional
    noise : float

    Returns
    -------
    Dataset
    """
    if isinstance(xs, np.ndarray) or not hasattr(xs, "__len__") or len(xs) == 0:
        raise TypeError("xs must be a non-empty sequence of arrays, one per modality.")

    def column(v):
        return np.reshape(v, (-1, 1)) if np.ndim(v) == 1 else v
    return Dataset(tuple(column(x) for x in xs), column(y), sigma, w_star, noise)


def _moments_of_arrays(x, y):
    """Moments of validated arrays, without re-checking what holds by construction."""
    n = x.shape[0]
    return Moments._trusted(x.T @ x / n, y.T @ x / n, float(np.sum(y * y) / n))


def moments(xs, y):
    """Uncentred empirical second moments of a data set, including a user's own arrays.

    Parameters
    ----------
    xs : sequence of ndarray of shape (n_samples, d_k), or one ndarray (n_samples, D)
    y : ndarray of shape (n_samples, out_dim) or (n_samples,)

    Returns
    -------
    Moments
    """
    if isinstance(xs, np.ndarray):
        xs = (xs,)
    ds = from_arrays(xs, y)
    return _moments_of_arrays(ds.x, ds.y)


def _solve_rows(a, b):
    """Minimum-norm W with W a = b (a symmetric positive semi-definite, b of shape (m, D)).

    ``np.linalg.lstsq``; matrices with entries beyond 1e±100 are rescaled first so that
    LAPACK's internal norms stay finite (same solution).
    """
    s = float(np.max(np.abs(a))) if a.size else 0.0
    if s == 0.0:
        return np.zeros(b.shape)
    if 1e-100 <= s <= 1e100:
        return np.linalg.lstsq(a, b.T, rcond=None)[0].T
    t = float(np.max(np.abs(b))) or 1.0
    return np.linalg.lstsq(a / s, b.T / t, rcond=None)[0].T * (t / s)


def _split(x, dims):
    edges = np.cumsum((0,) + tuple(dims))
    return tuple(np.ascontiguousarray(x[:, a:b]) for a, b in zip(edges[:-1], edges[1:]))


def _gaussian(rng, sigma, n):
    return rng.standard_normal((n, sigma.shape[0])) @ np.linalg.cholesky(sigma).T


def toy(rho=0.0, ratio=2.0, n=8192, noise=0.0, w_star=(1.0, 1.0), rng=None):
    """The toy two-modality data of theory.md §3a.

    (x_A, x_B) ~ N(0, [[r², ρr], [ρr, 1]]) with r = ``ratio`` = σ_A/σ_B, and
    y = w_A* x_A + w_B* x_B + N(0, noise²). Modality A (``xs[0]``) is the
    larger-variance, first-learned one when ``ratio`` > 1.

    Parameters
    ----------
    rho : float
        Correlation, -1 < rho < 1.
    ratio : float
        σ_A/σ_B > 0 (σ_B = 1).
    n : int
        Number of samples.
    noise : float
        Label-noise standard deviation.
    w_star : tuple of 2 float
        Teacher weights (w_A*, w_B*).
    rng : int, Generator or SeedSequence, optional
    """
    rho = check_scalar("rho", rho, lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
    ratio = check_scalar("ratio", ratio, lo=0.0, lo_open=True)
    n = check_int("n", n, lo=1)
    noise = check_scalar("noise", noise, lo=0.0)
    w_star = check_array("w_star", np.atleast_2d(w_star), ndim=2, shape=(1, 2))
    rng = np.random.default_rng(check_rng("rng", rng))
    sigma = np.array([[ratio * ratio, rho * ratio], [rho * ratio, 1.0]])
    x = _gaussian(rng, sigma, n)
    y = x @ w_star.T + noise * rng.standard_normal((n, 1))
    params = dict(rho=rho, ratio=ratio, n=n, noise=noise, w_star=w_star.ravel().tolist())
    return Dataset(_split(x, (1, 1)), y, sigma, w_star, noise, "toy", params)


def multi(dim=100, n=700, noise=0.5, rng=None):
    """The under/over-parameterised data of theory.md §3b.

    x_A is the first half of the coordinates with variance 3 (modality A, learned first),
    x_B the second half with variance 1; no cross-covariance; W* = 0.1 everywhere;
    y = W* x + N(0, noise²).

    Parameters
    ----------
    dim : int
        Total input dimension D (even, >= 2).
    n : int
        Number of samples (70: over-, 700: under-parameterised at D = 100).
    noise : float
        Label-noise standard deviation.
    rng : int, Generator or SeedSequence, optional
    """
    dim = check_int("dim", dim, lo=2)
    if dim % 2:
        raise ValueError(f"dim == {dim}, must be even (two halves, one per modality).")
    n = check_int("n", n, lo=1)
    noise = check_scalar("noise", noise, lo=0.0)
    rng = np.random.default_rng(check_rng("rng", rng))
    half = dim // 2
    var = np.concatenate([np.full(half, 3.0), np.ones(half)])
    x = rng.standard_normal((n, dim)) * np.sqrt(var)
    w_star = np.full((1, dim), 0.1)
    y = x @ w_star.T + noise * rng.standard_normal((n, 1))
    return Dataset(_split(x, (half, half)), y, np.diag(var), w_star, noise, "multi",
                   dict(dim=dim, n=n, noise=noise))


def random_stats(dim=20, n=8192, rng=None):
    """Random-statistics data of theory.md §3c.

    Σ ~ InverseWishart(df = D + 2, scale = diag(2 I, I)) (mean exactly the scale), W* ~
    U(-1, 1)^D, noiseless. Modality A is the first half (the scale-2 block): it is the
    first-learned one in most draws; sims keep a draw only when the predicted time ratio
    lies in [1, 20], which also makes A first.

    Parameters
    ----------
    dim : int
        Total input dimension D (even, >= 2).
    n : int
        Number of samples.
    rng : int, Generator or SeedSequence, optional
    """
    from scipy.stats import invwishart

    dim = check_int("dim", dim, lo=2)
    if dim % 2:
        raise ValueError(f"dim == {dim}, must be even (two halves, one per modality).")
    n = check_int("n", n, lo=1)
    rng = np.random.default_rng(check_rng("rng", rng))
    half = dim // 2
    scale = np.diag(np.concatenate([np.full(half, 2.0), np.ones(half)]))
    sigma = np.atleast_2d(invwishart.rvs(df=dim + 2, scale=scale, random_state=rng))
    sigma = 0.5 * (sigma + sigma.T)
    w_star = rng.uniform(-1.0, 1.0, size=(1, dim))
    x = _gaussian(rng, sigma, n)
    y = x @ w_star.T
    return Dataset(_split(x, (half, half)), y, sigma, w_star, 0.0, "random_stats", dict(dim=dim, n=n))


def xor_linear(sigma_a=1.0, n=8192, rng=None):
    """XOR + linear data of theory.md §3d (heterogeneous, nonlinear).

    x_B ∈ {(±1, ±1)}, each corner n/4 times; x_A ~ N(0, sigma_a²) (scalar);
    y = x_A − x_B1 x_B2. Modality A (``xs[0]``) is the linear one, as the paper names
    them. The XOR part has zero linear correlation with every input, so ``w_star`` is
    None (no linear teacher); ``sigma`` is the population input second moment.

    Parameters
    ----------
    sigma_a : float
        Standard deviation of the linear modality (> 0); recorded as given.
    n : int
        Number of samples, a multiple of 4.
    rng : int, Generator or SeedSequence, optional
    """
    sigma_a = check_scalar("sigma_a", sigma_a, lo=0.0, lo_open=True)
    n = check_int("n", n, lo=4)
    if n % 4:
        raise ValueError(f"n == {n}, must be a multiple of 4 (each XOR corner n/4 times).")
    rng = np.random.default_rng(check_rng("rng", rng))
    corners = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    x_b = np.repeat(corners, n // 4, axis=0)
    x_a = sigma_a * rng.standard_normal((n, 1))
    y = x_a - (x_b[:, :1] * x_b[:, 1:])
    sigma = np.diag([sigma_a ** 2, 1.0, 1.0])
    return Dataset((x_a, x_b), y, sigma, None, 0.0, "xor_linear", dict(sigma_a=sigma_a, n=n))
