"""The theory's prediction for one training run, in one call, shaped like the run.

:func:`predict` takes a run of :func:`linfusion.train` (a :class:`linfusion.TrainResult`)
and the data it was trained on, and iterates the exact gradient-descent map of that network
from the run's own initial weights at the run's learning rate (theory.md §6.10):

- two-layer linear nets (late fusion with K >= 2 modalities, or early fusion; any input
  dimensions, any width): the Gram-state map (:func:`theory.dynamics.gram_map`);
- linear nets of any depth and fusion layer with one scalar input per modality whose
  initial weights form an aligned rank-one chain (``init='balanced'``, or width 1): the
  scalar-chain map (:func:`theory.dynamics.chain_map`) from the run's actual layer scalars.

Both reproduce the network's full-batch gradient descent to rounding, so the prediction
overlays the run exactly: same epochs as ``run.epochs``, ``w_tot`` blocks per modality of
shape (n_rec, 1, d_k) like the run's, the loss and, for data with population statistics,
the generalisation error ``eg``. Anything else (ReLU or biases, other losses, several
outputs, deep nets with vector inputs or unaligned weights) raises a ValueError that says
what is supported.

A run trained with a ``linfusion.Mitigation`` (theory.md §11) is predicted with its remedies:
its per-block rates and OGM-GE strength go to the map, and expected dropout and auxiliary
losses become the modified moments of :mod:`theory.mitigation` (the data's population
statistics still give ``eg``). Schedules and sampled dropout have no exact map here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion.validation import check_choice

from ._checks import _check_wd
from .dynamics import Trajectory, chain_map, gram_map
from .mitigation import auxiliary_moments, dropout_moments

__all__ = ["Prediction", "predict"]

# A layer block counts as rank one along the chain's directions when its residual is below
# this fraction of its norm (the 'balanced' init builds exact outer products: ~1e-16).
_ALIGN_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Prediction:
    """The exact map's trajectory of a run, with the run's field names and shapes.

    Attributes
    ----------
    epochs : ndarray of int of shape (n_rec,)
        The run's record epochs.
    loss : ndarray of shape (n_rec,)
        Training loss ½ syy − W Σ_yxᵀ + ½ W Σ Wᵀ (the run's, with the ½).
    w_tot : list of ndarray of shape (n_rec, 1, d_k)
        End-to-end weights of each modality, as ``run.w_tot``.
    eg : ndarray of shape (n_rec,) or None
        Generalisation error with the data's population Σ and W* (None without them).
    lr : float
    method : str
        'gram_map' or 'chain_map'.
    trajectory : Trajectory
        The full record (crossing epochs, thresholds, chain scalars).
    """

    epochs: np.ndarray
    loss: np.ndarray
    w_tot: list
    eg: np.ndarray | None
    lr: float
    method: str
    trajectory: Trajectory

    @property
    def t_cross(self):
        """Per modality the crossing epoch of its threshold (NaN if not crossed), tuple of float."""
        return self.trajectory.t_cross

    @property
    def t_a(self):
        """Crossing epoch of A (NaN if not crossed)."""
        return self.trajectory.t_a

    @property
    def t_b(self):
        """Crossing epoch of B (NaN if not crossed)."""
        return self.trajectory.t_b

    @property
    def ratio(self):
        """t_B/t_A (NaN if either is missing)."""
        return self.trajectory.ratio

    @property
    def w_tot_all(self):
        """End-to-end weights of all modalities side by side, shape (n_rec, 1, D)."""
        return np.concatenate(self.w_tot, axis=2)

    def __repr__(self):
        return (f"Prediction(method={self.method!r}, lr={self.lr:g}, epochs={int(self.epochs[0])}.."
                f"{int(self.epochs[-1])} ({self.epochs.size} records), t_a={self.t_a:.6g}, "
                f"t_b={self.t_b:.6g}, final loss={self.loss[-1]:.6g})")


def _moments_of(data):
    """(Σ, Σyx, syy, Σ_pop or None, W* or None) of a Dataset or Moments."""
    if hasattr(data, "moments") and hasattr(data, "xs"):
        mo = data.moments()
        pop = (data.sigma, data.w_star) if data.sigma is not None and data.w_star is not None else (None, None)
    elif all(hasattr(data, a) for a in ("sxx", "syx", "syy")):
        mo, pop = data, (None, None)
    else:
        raise TypeError(f"data is a {type(data).__name__}, must be the run's linfusion.data.Dataset "
                        "or its Moments.")
    return mo.sxx, np.atleast_2d(mo.syx), mo.syy, pop[0], pop[1]


def _remedies(run, net, data, sigma, syx, syy, lr_scales, ogm_alpha):
    """The moments and map arguments of a run's ``linfusion.Mitigation`` (theory.md §11); explicit
    ``lr_scales`` / ``ogm_alpha`` win. Moments already modified (``run.moments`` passed as data) are kept."""
    mit = getattr(run, "mitigation", None)
    if mit is None:
        return sigma, syx, syy, lr_scales, ogm_alpha
    if mit.schedule or mit.samples_dropout:
        raise ValueError(f"run.mitigation == {mit!r}, must have no schedule (pretrain, alternate) and no sampled "
                         "dropout for predict: they have no exact map.")
    if lr_scales is None and mit.lr_scales:
        lr_scales = dict(mit.lr_scales)
    if ogm_alpha is None and mit.ogm_alpha > 0.0:
        ogm_alpha = mit.ogm_alpha
    if mit.modifies_moments and not (hasattr(data, "sxx") and np.array_equal(data.sxx, getattr(run.moments, "sxx", None))):
        dims = net.in_dims
        if mit.dropout_kind == "expected" and np.any(np.asarray(mit.dropout) != 0.0):
            p = np.broadcast_to(np.asarray(mit.dropout, dtype=float), (len(dims),))
            sigma, syx, syy = dropout_moments(sigma, syx, syy, dims, p, mit.dropout_rescale)
        if np.any(np.asarray(mit.aux_weight) != 0.0):
            lam = np.broadcast_to(np.asarray(mit.aux_weight, dtype=float), (len(dims),))
            sigma, syx, syy = auxiliary_moments(sigma, syx, syy, dims, lam)
    return sigma, syx, syy, lr_scales, ogm_alpha


def _check_run(run):
    for attr in ("net", "w0", "epochs", "lr", "loss"):
        if not hasattr(run, attr):
            raise TypeError(f"run is a {type(run).__name__} without .{attr}, must be a linfusion.TrainResult.")
    return run.net


_SUPPORTED = ("predict supports linear nets without biases and with one output: two-layer late fusion "
              "(K >= 2 modalities) or early fusion with any input dimensions, and nets of any depth with "
              "one scalar input per modality whose initial weights form an aligned rank-one chain "
              "(init='balanced', or width 1)")


def _check_net(net):
    if net.slope != 1.0 or net.bias:
        raise ValueError(f"run.net has slope {net.slope} and bias {net.bias}, must be linear (slope 1) "
                         f"without biases: {_SUPPORTED}.")
    if net.out_dim != 1:
        raise ValueError(f"run.net has out_dim {net.out_dim}, must be 1: {_SUPPORTED}.")
    if net.n_modalities < 2:
        raise ValueError(f"run.net has {net.n_modalities} modality, must have at least 2: {_SUPPORTED}.")


def _chain_scalars(net, w0):
    """(pre (K, L_f), post (L − L_f,)) of an aligned rank-one chain, else raise.

    Top-down from the scalar output v_L = 1: every block W_l must be a_l v_l v_{l−1}ᵀ, with
    a_l = ‖W_lᵀ v_l‖ > 0 and v_{l−1} = W_lᵀ v_l / a_l; the sign of a modality's scalar input
    direction v_0 = ±1 goes to its first scalar (the chain map's convention).
    """
    u = net.unpack(w0)

    def peel(block, out_dir, where):
        x = block.T @ out_dir
        a = float(np.linalg.norm(x))
        nrm = float(np.linalg.norm(block))
        if a == 0.0 or np.linalg.norm(block - a * np.outer(out_dir, x / a)) > _ALIGN_TOL * nrm:
            raise ValueError(f"run.w0's block {where} is not rank one along the chain's directions, must be "
                             f"for a net of depth {net.depth} with fusion layer {net.fuse_depth} "
                             f"(the scalar-chain map): {_SUPPORTED}.")
        return a, x / a

    top = np.ones(1)
    post = []
    for layer in range(net.depth, net.fuse_depth, -1):
        a, top = peel(u[f"W{layer}"], top, f"W{layer}")
        post.insert(0, a)
    pre = np.empty((net.n_modalities, net.fuse_depth))
    for k in range(net.n_modalities):
        d = top
        for layer in range(net.fuse_depth, 0, -1):
            pre[k, layer - 1], d = peel(u[f"W{layer}_{k}"], d, f"W{layer}_{k}")
        pre[k, 0] *= d[0]
    return pre, np.array(post)


def predict(run, data, *, weight_decay=0.0, lr_scales=None, ogm_alpha=None, crossing=None):
    """The exact map's trajectory of a run, on the run's epochs, from its own initial weights.

    Parameters
    ----------
    run : linfusion.TrainResult
        A run of a supported network (module docstring), trained with the squared loss.
    data : linfusion.data.Dataset or linfusion.data.Moments
        The data the run was trained on (its moments drive the map; a Dataset's population
        Σ and W* give ``eg``). The run's first recorded loss is checked against the
        squared loss of its initial weights on these moments (relative 1e-8), which
        catches other data or another loss.
    weight_decay : float
        The run's weight decay λ >= 0 (a TrainResult does not record it).
    lr_scales : dict, optional
        The run's per-block learning-rate scales, keyed by block name (see
        :func:`theory.dynamics.gram_map` and :func:`theory.dynamics.chain_map`).
    ogm_alpha : float, optional
        The run's OGM-GE modulation strength (two-layer late fusion only).
    crossing : {'projection', 'norm'}, optional
        How a modality's crossing is read (:class:`theory.dynamics.Trajectory`). Default:
        'projection' when every modality is one scalar input (the signed weight, as
        :func:`linfusion.analysis.modality_signal`), 'norm' otherwise.

    Returns
    -------
    Prediction

    Raises
    ------
    TypeError
        ``run`` or ``data`` is not what is described here.
    ValueError
        The network is not supported, or the data or loss do not match the run.
    RuntimeError
        The map diverges (the run's learning rate is above the stability bound).
    """
    net = _check_run(run)
    _check_net(net)
    weight_decay = _check_wd(weight_decay)
    sigma, syx, syy, sigma_pop, w_star = _moments_of(data)
    sigma, syx, syy, lr_scales, ogm_alpha = _remedies(run, net, data, sigma, syx, syy, lr_scales, ogm_alpha)
    if sigma.shape != (net.in_dim, net.in_dim) or syx.shape != (1, net.in_dim):
        raise ValueError(f"data has moments of shapes {sigma.shape} and {syx.shape}, must be "
                         f"({net.in_dim}, {net.in_dim}) and (1, {net.in_dim}) for run.net (in_dims {net.in_dims}).")
    scalar_inputs = all(d == 1 for d in net.in_dims)
    if crossing is None:
        crossing = "projection" if scalar_inputs else "norm"
    check_choice("crossing", crossing, ("projection", "norm"))
    w0 = np.asarray(run.w0, dtype=float)
    w_init = np.concatenate(net.w_tot(w0), axis=1)[0]
    loss0 = float(0.5 * syy - w_init @ syx[0] + 0.5 * w_init @ sigma @ w_init)
    if abs(loss0 - float(run.loss[0])) > 1e-8 * max(abs(loss0), abs(float(syy)), 1e-300):
        raise ValueError(f"run.loss[0] == {float(run.loss[0])!r}, must equal the squared loss of run.w0 on data "
                         f"({loss0!r}): predict needs the data the run was trained on and loss 'mse'.")
    epochs = np.asarray(run.epochs)
    dims = net.in_dims
    common = dict(weight_decay=weight_decay, lr_scales=lr_scales, sigma_pop=sigma_pop, w_star=w_star,
                  crossing=crossing)
    u = net.unpack(w0)
    if net.depth == 2:
        if net.fuse_depth == 2:
            w1 = [u[f"W1_{k}"] for k in range(net.n_modalities)]
            w2 = [u[f"W2_{k}"] for k in range(net.n_modalities)]
            fusion = "late"
        else:
            w1 = np.hstack([u[f"W1_{k}"] for k in range(net.n_modalities)])
            w2 = u["W2"]
            fusion = "early"
        traj = gram_map(sigma, syx, syy, dims, epochs, run.lr, w1, w2, fusion=fusion, ogm_alpha=ogm_alpha,
                        **common)
    elif scalar_inputs:
        if ogm_alpha is not None:
            raise ValueError(f"ogm_alpha == {ogm_alpha!r}, must be None for a net of depth {net.depth}: the "
                             "modulated map is the two-layer late-fusion one.")
        if weight_decay != 0.0:
            raise ValueError(f"weight_decay == {weight_decay!r}, must be 0 for a net of depth {net.depth}: "
                             "the chain map has no weight decay.")
        pre, post = _chain_scalars(net, w0)
        common.pop("weight_decay")
        traj = chain_map(sigma, syx, syy, net.depth, net.fuse_depth, epochs, run.lr, layer_scales=(pre, post),
                         **common)
    else:
        raise ValueError(f"run.net has depth {net.depth} with in_dims {net.in_dims}, must have depth 2 or "
                         f"one scalar input per modality: {_SUPPORTED}.")
    blocks = [traj.block(k)[:, None, :] for k in range(net.n_modalities)]
    return Prediction(epochs=epochs.copy(), loss=traj.loss, w_tot=blocks, eg=traj.e_g, lr=float(run.lr),
                      method=traj.method, trajectory=traj)
