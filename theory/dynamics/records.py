"""Records returned by the reduced dynamics: trajectories, effective seeds, batched crossings.

Convention of the whole package: a time that is not reached within the epochs run (a
modality not crossing its threshold) is NaN, never None; so are the ratios built from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion.validation import check_int

from .._checks import _slices

__all__ = ["Trajectory", "Seed", "ChainCrossings"]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A predicted training trajectory on an epoch grid, ready to overlay on a simulation.

    Attributes
    ----------
    epochs : ndarray of shape (n,)
        Epoch grid (t/τ = lr · epoch).
    lr : float
        Learning rate; τ = 1/lr epochs.
    dims : tuple of int
        Input dimension of each modality.
    w_tot : ndarray of shape (n, D)
        End-to-end weights at each epoch (scalar output).
    loss : ndarray of shape (n,)
        Training loss ½ syy − W Σ_yxᵀ + ½ W Σ Wᵀ.
    e_g : ndarray of shape (n,) or None
        Generalisation error ½ (W − W*) Σ_pop (W − W*)ᵀ, when ``sigma_pop`` and ``w_star``
        were given (:func:`linfusion.analysis.generalization_error`).
    t_cross : tuple of float
        Per modality, the epoch of the first upward crossing of its threshold
        (:func:`linfusion.analysis.crossing_time` on the map's per-epoch record, event
        location for flows); NaN if it does not cross within the grid, or if its threshold
        is 0 (a modality that is never learned).
    thresholds : tuple of float
        Per modality, half its value at the fixed point where it is learned.
    crossing : str
        'norm' (‖W_X‖ is compared) or 'projection' (W_X projected on that value's direction).
    method : str
        'flow', 'chain_flow', 'rank_one_map', 'chain_map' or 'gram_map'.
    scales : ndarray of shape (n, n_scales) or None
        Scalar-chain state: for 'chain_flow' the columns u_1..u_K then v (no v when
        L_f = L); for 'chain_map' every layer scalar, modality by modality (layers 1..L_f),
        then the shared layers L_f+1..L. None for the other methods.
    """

    epochs: np.ndarray
    lr: float
    dims: tuple
    w_tot: np.ndarray
    loss: np.ndarray
    e_g: np.ndarray | None
    t_cross: tuple
    thresholds: tuple
    crossing: str
    method: str
    scales: np.ndarray | None = None

    @property
    def t_tau(self):
        """Time in units of τ, ndarray of shape (n,)."""
        return self.lr * self.epochs

    @property
    def t_a(self):
        """Crossing epoch of modality A (0), NaN if not crossed."""
        return self.t_cross[0]

    @property
    def t_b(self):
        """Crossing epoch of modality B (1), NaN if not crossed."""
        return self.t_cross[1]

    @property
    def t_a_tau(self):
        """t_A/τ, NaN if not crossed."""
        return self.t_a * self.lr

    @property
    def t_b_tau(self):
        """t_B/τ, NaN if not crossed."""
        return self.t_b * self.lr

    @property
    def ratio(self):
        """t_B/t_A; NaN if either crossing is missing or t_A is 0."""
        if not (np.isfinite(self.t_a) and np.isfinite(self.t_b)) or self.t_a == 0:
            return np.nan
        return self.t_b / self.t_a

    def block(self, k):
        """W^tot of modality ``k`` over time, ndarray of shape (n, d_k)."""
        k = check_int("k", k, lo=0, hi=len(self.dims) - 1)
        return self.w_tot[:, _slices(self.dims)[k]]

    @property
    def w_norms(self):
        """‖W_X^tot‖ of every modality over time, ndarray of shape (n, K)."""
        return np.stack([np.linalg.norm(self.block(k), axis=1) for k in range(len(self.dims))], axis=1)


@dataclass(frozen=True, eq=False)
class Seed:
    """Effective balanced rank-one initial condition of an actual two-layer network.

    Attributes
    ----------
    s : ndarray of shape (K,) (late fusion) or (1,) (early fusion)
        Effective seeds s_X(0) = ‖a(0) + b(0)‖²/4 = ‖W_X^tot(0)‖ of the growing mode.
    w_init : ndarray of shape (D,)
        The equivalent initial end-to-end weights s_X · d̂_X.
    """

    s: np.ndarray
    w_init: np.ndarray


@dataclass(frozen=True, eq=False)
class ChainCrossings:
    """Crossing epochs of a batch of scalar chains (:func:`chain_map_many`).

    Attributes
    ----------
    t_cross : ndarray of shape (R, K)
        Per chain and modality, the epoch of the first upward crossing of its threshold
        (linearly interpolated, the rule of :func:`linfusion.analysis.crossing_time`); NaN
        if not within the epochs run, or if the threshold is 0.
    thresholds : ndarray of shape (R, K)
        The thresholds used.
    diverged : ndarray of shape (R,)
        True where W_tot became non-finite (lr above the stability bound).
    n_epochs : int
        Epochs iterated (all chains run together until the stop rule holds).
    """

    t_cross: np.ndarray
    thresholds: np.ndarray
    diverged: np.ndarray
    n_epochs: int

    @property
    def t_a(self):
        """Crossing epochs of modality A (0), ndarray of shape (R,)."""
        return self.t_cross[:, 0]

    @property
    def t_b(self):
        """Crossing epochs of modality B (1), ndarray of shape (R,)."""
        return self.t_cross[:, 1]

    @property
    def ratio(self):
        """t_B/t_A per chain, ndarray of shape (R,) (NaN where either is missing or t_A is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.t_a != 0, self.t_b / self.t_a, np.nan)
