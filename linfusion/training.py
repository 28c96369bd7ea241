"""Full-batch gradient descent on fusion networks: one run, or a batch in parallel.

Loss (squared): L = ½ <|y − ŷ|²>, the mean over samples with the ½ of THEORY.md §2, so
τ = 1/lr epochs. Weight decay λ adds λ·w to every parameter's gradient. Records at epochs
k = 0, record_every, 2·record_every, ... and at the last epoch are taken *before* the
update of that epoch: record k holds the weights after k updates.

Four exact paths, chosen automatically (``path='auto'``):

- ``'moment'``: linear network (slope 1), no bias, squared loss. Gradient descent sees the
  data only through Σxx, Σyx, <|y|²>, so an epoch costs the same for 10 or 10⁶ samples.
- ``'gram'``: two-layer linear nets when the final weights are not needed
  (``final_weights=False``): the exact map of (W_tot, W¹ᵀW¹, W²W²ᵀ) per modality, at a cost
  independent of the width; ``TrainResult.w`` is then None.
- ``'feature'``: late-fusion leaky-ReLU nets without bias whose modalities are scalars,
  squared loss: exact gradients from the moments of the features relu(±x_k).
- ``'sample'``: everything else (leaky ReLU, biases, exponential and logistic losses), in
  float64 or (``dtype=np.float32``) float32.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _engine
from .architecture import FusionNet
from .data import Dataset, Moments
from .validation import check_array, check_choice, check_covariance, check_int, check_scalar

__all__ = ["TrainResult", "train", "train_many", "loss_and_grad", "stability_bound", "LOSSES"]

LOSSES = tuple(_engine.LOSS_CODES)


@dataclass(frozen=True)
class TrainResult:
    """The recorded trajectory and final state of one training run.

    Attributes
    ----------
    epochs : ndarray of int of shape (n_rec,)
        Epoch of each record (number of updates before it).
    loss : ndarray of shape (n_rec,)
        Training loss (with the ½ for the squared loss).
    w_tot : list of ndarray of shape (n_rec, out_dim, d_k)
        End-to-end weights of each modality (product along its path; for ReLU nets
        bookkeeping only).
    eg : ndarray of shape (n_rec,) or None
        Generalisation error ½ (W_tot − W*) Σ (W_tot − W*)ᵀ with the population Σ and W*,
        when the data set has them.
    w : ndarray of shape (n_params,) or None
        Final weights (None on the Gram path, which has none).
    w0 : ndarray of shape (n_params,)
        Initial weights.
    status : str
        'completed' (all epochs), 'converged' (loss < tol) or 'diverged' (non-finite loss).
    message : str
        Human-readable summary; for a diverged run it names the epoch and a learning rate.
    lr : float
    path : str
        'moment', 'gram', 'feature' or 'sample'.
    net : FusionNet
    """

    epochs: np.ndarray
    loss: np.ndarray
    w_tot: list
    eg: np.ndarray | None
    w: np.ndarray | None
    w0: np.ndarray
    status: str
    message: str
    lr: float
    path: str
    net: FusionNet = field(repr=False)

    @property
    def diverged(self):
        """True when the loss became non-finite."""
        return self.status == "diverged"

    @property
    def final_epoch(self):
        return int(self.epochs[-1])

    @property
    def w_tot_all(self):
        """End-to-end weights of all modalities side by side, shape (n_rec, out_dim, D)."""
        return np.concatenate(self.w_tot, axis=2)


# ---------------------------------------------------------------------- helpers
def _check_net(net):
    if not isinstance(net, FusionNet):
        raise TypeError(f"net is a {type(net).__name__}, must be a FusionNet.")
    return net


def _check_data(net, data, name="data"):
    if isinstance(data, Moments):
        sxx = check_covariance(f"{name}.sxx", data.sxx, dim=net.in_dim, semidefinite=True)
        syx = check_array(f"{name}.syx", np.atleast_2d(data.syx), ndim=2, shape=(net.out_dim, net.in_dim))
        mo = Moments(sxx, syx, check_scalar(f"{name}.syy", data.syy, lo=0.0))
        # Moments of real data have Σyx in the row space of Σxx; others have no minimum.
        if np.abs(_least_squares(mo)[0] @ sxx - syx).max() > 1e-6 * (np.abs(syx).max() + 1e-300):
            raise ValueError(f"{name}.syx is not in the range of {name}.sxx, must be <y xᵀ> of the same data.")
        return mo
    if not isinstance(data, Dataset):
        raise TypeError(f"{name} is a {type(data).__name__}, must be a Dataset (see linfusion.data) or Moments.")
    if data.in_dims != net.in_dims:
        raise ValueError(f"{name}.in_dims == {data.in_dims}, must equal net.in_dims ({net.in_dims}).")
    if data.out_dim != net.out_dim:
        raise ValueError(f"{name}.out_dim == {data.out_dim}, must equal net.out_dim ({net.out_dim}).")
    for k, x in enumerate(data.xs):
        if x.shape[0] != data.y.shape[0]:
            raise ValueError(f"{name}.xs[{k}] has {x.shape[0]} samples, must have as many as y ({data.y.shape[0]}).")
        check_array(f"{name}.xs[{k}]", x, ndim=2)
    check_array(f"{name}.y", data.y, ndim=2)
    return data


def _moments_of(data):
    return data if isinstance(data, Moments) else data.moments()


def _least_squares(mo):
    """W_ls = Σyx Σxx⁺ (minimum norm) and its loss L_min = ½(<y²> − tr(W_ls Σyxᵀ)) >= 0.

    The loss is clipped at 0: a noiseless fit's L_min is a rounding residue of either sign.
    """
    w_ls = np.linalg.lstsq(mo.sxx, mo.syx.T, rcond=None)[0].T
    return w_ls, max(0.0, 0.5 * (mo.syy - float(np.sum(w_ls * mo.syx))))


def stability_bound(net, data):
    """Largest learning rate that gradient descent tolerates near the solution (estimate).

    For a depth-L linear network at a balanced least-squares solution W_ls the loss
    curvature is at most L·‖W_ls‖^(2−2/L)·λ_max(Σxx), so lr < 2 / (L λ_max ‖W_ls‖^(2−2/L)).
    The bound is exact for L = 1 and conservative for late fusion (paths share ‖W_ls‖).

    Parameters
    ----------
    net : FusionNet
    data : Dataset or Moments

    Returns
    -------
    float
    """
    _check_net(net)
    mo = _moments_of(_check_data(net, data))
    return _bound(net.depth, mo, _least_squares(mo)[0])


def _bound(depth, mo, w_ls):
    """:func:`stability_bound` from the moments and the least-squares solution."""
    lam = float(np.linalg.eigvalsh(mo.sxx)[-1])
    if lam <= 0.0:
        return np.inf
    s = float(np.linalg.norm(w_ls))
    return 2.0 / (depth * lam * max(s, 1e-12) ** (2.0 - 2.0 / depth))


def _choose_path(net, loss, path, final_weights=True):
    check_choice("path", path, ("auto",) + _engine.PATHS)
    linear = net.slope == 1.0 and not net.bias and loss == "mse"
    if path == "moment" and not linear:
        raise ValueError(f"path == 'moment', must be 'sample' or 'auto' for this net (slope {net.slope}, "
                         f"bias {net.bias}, loss {loss!r}): the moment path needs a linear net, no bias and "
                         "loss 'mse'.")
    if path == "gram" and not _engine.gram_applies(net, loss):
        raise ValueError(f"path == 'gram', must be 'moment', 'sample' or 'auto' for this net (depth {net.depth}, "
                         f"slope {net.slope}, bias {net.bias}, loss {loss!r}): the Gram path needs a two-layer "
                         "linear net, no bias and loss 'mse'.")
    if path == "feature" and not _engine.feature_applies(net, loss):
        raise ValueError(f"path == 'feature', must be 'sample' or 'auto' for this net (in_dims {net.in_dims}, "
                         f"depth {net.depth}, fuse_depth {net.fuse_depth}, bias {net.bias}, loss {loss!r}): the "
                         "feature path needs late fusion (fuse_depth == depth >= 2), scalar modalities, no bias "
                         "and loss 'mse'.")
    if path == "auto":
        if linear:
            return "gram" if not final_weights and _engine.gram_applies(net, loss) else "moment"
        return "feature" if _engine.feature_applies(net, loss) else "sample"
    return path


def _initial_weights(net, init, scale, rng, align):
    check_choice("init", init, ("entry", "layer", "balanced"))
    if scale is None:
        scale = 1e-9 if init == "entry" else 0.1
    return net.init(init, scale, rng, align=align)


def _per_run(name, value, R, **rule):
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or arr.shape[0] not in (1, R):
        raise ValueError(f"{name} has shape {np.shape(value)}, must be a scalar or have {R} entries (one per run).")
    for v in arr:
        check_scalar(name, float(v), **rule)
    return np.ascontiguousarray(np.broadcast_to(arr, (R,)))


def _spawn(rng, R):
    """R independent children of a seed, SeedSequence or Generator."""
    if isinstance(rng, (np.random.SeedSequence, np.random.Generator)):
        return list(rng.spawn(R))
    return list(np.random.SeedSequence(rng).spawn(R))


# ---------------------------------------------------------------------- public API
def loss_and_grad(net, data, w, *, loss="mse", path="auto"):
    """Loss and its gradient at weights ``w`` (one exact evaluation, no update).

    Parameters
    ----------
    net : FusionNet
    data : Dataset or Moments
    w : ndarray of shape (n_params,)
    loss : {'mse', 'exponential', 'logistic'}
    path : {'auto', 'moment', 'feature', 'sample'}

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_params,)
        Without weight decay.
    """
    _check_net(net)
    check_choice("loss", loss, LOSSES)
    data = _check_data(net, data)
    w = check_array("w", w, ndim=1, shape=(net.n_params,))
    path = _choose_path(net, loss, path)
    if path == "gram":
        raise ValueError("path == 'gram', must be 'auto', 'moment', 'feature' or 'sample' for loss_and_grad: "
                         "the Gram path has no weights.")
    if isinstance(data, Moments) and path in ("sample", "feature"):
        raise ValueError(f"data is Moments, must be a Dataset for the {path} path.")
    if path == "moment":
        mo = _moments_of(data)
        return _engine.loss_grad(net, path, w, moments=mo, fit=_least_squares(mo))
    return _engine.loss_grad(net, path, w, data=data, loss=loss)


def train(net, data, *, lr=0.04, epochs=1000, init="entry", scale=None, rng=None, w0=None,
          loss="mse", weight_decay=0.0, record_every=1, tol=0.0, path="auto", align=None,
          final_weights=True, dtype=np.float64):
    """Train one network by full-batch gradient descent.

    Parameters
    ----------
    net : FusionNet
    data : Dataset or Moments
        Moments suffice on the moment path.
    lr : float
        Learning rate (> 0); τ = 1/lr epochs.
    epochs : int
        Maximum number of updates (>= 1).
    init : {'entry', 'layer', 'balanced'}
        Initialisation scheme, see :meth:`FusionNet.init`.
    scale : float, optional
        Initialisation scale; default 1e-9 for 'entry' (the paper's two-layer nets) and
        0.1 for 'layer' and 'balanced' (the paper's deep nets).
    rng : int, Generator or SeedSequence, optional
        Randomness of the initial weights.
    w0 : ndarray of shape (n_params,), optional
        Initial weights; overrides init, scale and rng.
    loss : {'mse', 'exponential', 'logistic'}
    weight_decay : float
        λ >= 0; adds λ·w to the gradient.
    record_every : int
        Record every this many epochs (the last epoch is always recorded).
    tol : float
        Stop once the loss falls below tol (0: never).
    path : {'auto', 'moment', 'gram', 'feature', 'sample'}
    align : ndarray of shape (out_dim, D), optional
        Direction for ``init='balanced'``; default the least-squares solution Σyx Σxx⁻¹.
    final_weights : bool
        Whether the final weights are needed; False lets ``path='auto'`` take the Gram path
        (two-layer linear nets), whose result has ``w = None``.
    dtype : {numpy.float64, numpy.float32}
        Arithmetic of the sample path; the moment, Gram and feature paths always work in
        float64 (their cost does not depend on the number of samples).

    Returns
    -------
    TrainResult
    """
    results = train_many(net, [data], lr=lr, epochs=epochs, init=init, scale=scale,
                         rng=[rng], w0=None if w0 is None else np.atleast_2d(w0), loss=loss,
                         weight_decay=weight_decay, record_every=record_every, tol=tol, path=path,
                         align=align, final_weights=final_weights, dtype=dtype, _single=True)
    return results[0]


def train_many(net, data, *, lr=0.04, epochs=1000, init="entry", scale=None, rng=None, w0=None,
               loss="mse", weight_decay=0.0, record_every=1, tol=0.0, path="auto", align=None,
               n_runs=None, final_weights=True, dtype=np.float64, _single=False):
    """Train R networks of one architecture together, in one parallel kernel.

    Run r gives exactly (bit for bit) what :func:`train` gives with the same data, initial
    weights and hyper-parameters.

    Parameters
    ----------
    net : FusionNet
    data : Dataset, Moments, or sequence of R of them (equal shapes)
    lr, weight_decay : float or sequence of R floats
    rng : sequence of R seeds / Generators, or one seed, optional
        One seed is split into R children with ``np.random.SeedSequence``; a sequence gives
        run r the initial weights ``train(..., rng=rng[r])`` would draw.
    w0 : ndarray of shape (R, n_params), optional
        Initial weights; overrides init, scale and rng.
    n_runs : int, optional
        R when it cannot be inferred from data, lr, rng or w0.
    Other parameters as in :func:`train`.

    Returns
    -------
    list of TrainResult
    """
    _check_net(net)
    check_choice("loss", loss, LOSSES)
    epochs = check_int("epochs", epochs, lo=1)
    record_every = check_int("record_every", record_every, lo=1)
    tol = check_scalar("tol", tol, lo=0.0)
    datas = list(data) if isinstance(data, (list, tuple)) else [data]
    if not datas:
        raise ValueError("data is empty, must hold at least one Dataset.")
    datas = [_check_data(net, d, f"data[{i}]" if len(datas) > 1 else "data") for i, d in enumerate(datas)]
    rngs = list(rng) if isinstance(rng, (list, tuple)) else None
    if w0 is not None:
        w0 = check_array("w0", np.atleast_2d(w0), ndim=2, shape=(None, net.n_params))
    sizes = {len(datas)} | ({len(rngs)} if rngs else set()) | ({w0.shape[0]} if w0 is not None else set())
    sizes |= {np.size(lr)} | {np.size(weight_decay)} | ({n_runs} if n_runs else set())
    sizes.discard(1)
    if len(sizes) > 1:
        raise ValueError(f"the numbers of runs implied by data, lr, weight_decay, rng, w0 and n_runs differ "
                         f"({sorted(sizes)}), must agree (or be 1).")
    R = sizes.pop() if sizes else 1
    lrs = _per_run("lr", lr, R, lo=0.0, lo_open=True)
    wds = _per_run("weight_decay", weight_decay, R, lo=0.0)
    path = _choose_path(net, loss, path, final_weights)
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype == {dtype.name!r}, must be float64 or float32.")
    if path in ("sample", "feature") and any(isinstance(d, Moments) for d in datas):
        raise ValueError(f"data is Moments, must be a Dataset on the {path} path "
                         f"(slope {net.slope}, bias {net.bias}, loss {loss!r}).")
    shapes = {(d.sxx.shape if isinstance(d, Moments) else (d.n_samples,) + d.in_dims) for d in datas}
    if len(shapes) > 1:
        raise ValueError(f"data sets have different shapes {sorted(shapes)}, must all be equal in one batch.")
    mos = [_moments_of(d) for d in datas]
    fits = [_least_squares(m) for m in mos]          # (W_ls, L_min) per data set

    def of_run(items, r):
        return items[r if len(items) > 1 else 0]
    # initial weights
    if w0 is not None:
        W = w0.copy()
        if W.shape[0] == 1 and R > 1:
            W = np.repeat(W, R, axis=0)
    else:
        if rngs is None:
            rngs = _spawn(rng, R)
        elif len(rngs) == 1 and R > 1:
            rngs = _spawn(rngs[0], R)
        W = np.stack([_initial_weights(net, init, scale, rngs[i],
                                       of_run(fits, i)[0] if align is None else align) for i in range(R)])
    W0 = W.copy()
    bounds = [_bound(net.depth, m, f[0]) for m, f in zip(mos, fits)]
    if loss == "mse":
        bound = min(bounds)
        if lrs.max() > bound:
            warnings.warn(f"lr == {lrs.max():g} is above the stability bound {bound:.3g} estimated from the "
                          f"data's moments (2 / (L λ_max(Σxx) ‖W_ls‖^(2-2/L))); training may diverge.",
                          RuntimeWarning, stacklevel=2 if not _single else 3)
    D, n_out = net.in_dim, net.out_dim
    has_pop = np.array([isinstance(d, Dataset) and d.sigma is not None and d.w_star is not None
                        for d in datas])
    sigma = np.stack([d.sigma if p else np.zeros((D, D)) for d, p in zip(datas, has_pop)])
    w_star = np.stack([d.w_star if p else np.zeros((n_out, D)) for d, p in zip(datas, has_pop)])
    rec = _engine.fit(net, path, W, moments=mos, fits=fits, datas=datas, lrs=lrs, wds=wds, loss=loss,
                      epochs=epochs, record_every=record_every, tol=tol, has_pop=has_pop, sigma=sigma,
                      w_star=w_star, dtype=dtype)
    results = []
    for r in range(R):
        m = int(rec.n_rec[r])
        st = _engine.STATUS_NAMES[int(rec.status[r])]
        ep = rec.epoch[r, :m].copy()
        wt = rec.w_tot[r, :m]
        if st == "diverged":
            msg = (f"diverged: the loss became non-finite at epoch {ep[-1]} with lr = {lrs[r]:g}; "
                   f"try lr <= {0.5 * of_run(bounds, r):.3g} "
                   "(half the stability bound from the data's moments).")
            warnings.warn(msg, RuntimeWarning, stacklevel=2 if not _single else 3)
        elif st == "converged":
            msg = f"converged: loss {rec.loss[r, m - 1]:.3g} < tol {tol:g} at epoch {ep[-1]}."
        else:
            msg = f"completed {epochs} epochs; final loss {rec.loss[r, m - 1]:.6g}."
        results.append(TrainResult(
            epochs=ep, loss=rec.loss[r, :m].copy(),
            w_tot=[wt[:, :, sl].copy() for sl in net.in_slices],
            eg=rec.eg[r, :m].copy() if of_run(has_pop, r) else None,
            w=None if path == "gram" else W[r].copy(), w0=W0[r], status=st, message=msg, lr=float(lrs[r]),
            path=path, net=net))
    return results
