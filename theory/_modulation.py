"""The OGM-GE modulation coefficient as a function of the state (private core).

Shared by the exact maps (:mod:`theory.dynamics.maps`, at every step) and the public
functions of :mod:`theory.mitigation`. For regression, modality k's score is the loss
reduction its contribution alone achieves,

    s_k = Σ_yx,k W_kᵀ − ½ W_k Σ_kk W_kᵀ   ( = L(0) − L(W with only block k) ),

the dominant modality d is the one with the largest score (the lowest index on ties),
its discrepancy ratio is rho = s_d / mean_{j≠d} s_j (for K = 2 simply s_d / s_other),
and its branch's learning rates are multiplied by 1 − tanh(α rho) when rho > 1; every
other coefficient is 1. Edge cases (scores can be <= 0 for regression, unlike the
softmax scores of the original): when the others' mean is <= 0 and s_d > 0 the ratio is
+inf (coefficient 1 − tanh(∞) = 0 for α > 0: the dominant branch is frozen until another
modality contributes); when s_d <= 0 nothing is modulated; α = 0 never modulates.
"""
from __future__ import annotations

import math

import numpy as np


def _coefficients(scores, alpha):
    """Coefficients (list of K floats) from the scores (sequence of K floats)."""
    n_mod = len(scores)
    coef = [1.0] * n_mod
    if alpha == 0.0:
        return coef
    d = max(range(n_mod), key=lambda k: (scores[k], -k))
    s_d = scores[d]
    if not s_d > 0.0:
        return coef
    rest = sum(scores[j] for j in range(n_mod) if j != d) / (n_mod - 1)
    rho = s_d / rest if rest > 0.0 else math.inf
    if rho > 1.0:
        coef[d] = 1.0 - math.tanh(alpha * rho)
    return coef


def _scores(sigma, syx, slices, w):
    """s_k for end-to-end weights ``w`` (D,) with scalar output; ndarray of shape (K,)."""
    return np.array([float(syx[s] @ w[s] - 0.5 * (w[s] @ sigma[s, s] @ w[s])) for s in slices])


def _kappa(sigma, syx, slices, alpha):
    """The per-step coefficient function of the maps: W (D,) -> coefficients (K,)."""
    n_in = sigma.shape[0]
    block = np.zeros((n_in, n_in))
    member = np.zeros((len(slices), n_in))
    for k, s in enumerate(slices):
        block[s, s] = sigma[s, s]
        member[k, s] = 1.0
    syx = np.asarray(syx, dtype=float)

    def kappa(w):
        s = member @ (w * (syx - 0.5 * (w @ block)))
        return np.array(_coefficients(s.tolist(), alpha))

    return kappa
