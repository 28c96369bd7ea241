"""Full-batch gradient descent on fusion networks: one run, or a batch in parallel.

Loss (squared): L = ½ <|y − ŷ|²>, the mean over samples with the ½ of theory.md §2, so
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
  squared loss: exact gradients from the moments of the features relu(±x_k) (theory.md §6.11).
- ``'sample'``: everything else (leaky ReLU, biases, exponential and logistic losses), in
  float64 or (``dtype=np.float32``) float32.

Outcome of a run (:attr:`TrainResult.status`), decided in this order:

- ``'diverged'``: the loss became non-finite, or rose above ``blowup`` × max(L(0), ½<|y|²>)
  (L(0) the loss at the initial weights, ½<|y|²> that of the zero predictor; default
  ``blowup`` = 1e6). The message names the epoch and a learning rate that is stable from
  the run's own initial weights (found by halving, see :func:`train`).
- ``'converged'``: the loss fell below ``tol``.
- ``'stalled'``: no learning although the data carry signal (Σyx ≠ 0, or <y> ≠ 0 for a net
  with biases, or y ≠ 0 for the classification losses): no update changed any weight
  (the gradient underflowed to exactly 0, or w0 is an exact critical point such as
  all-zero weights), or every recorded end-to-end weight is exactly 0 while the loss never
  changed (the products of the layers underflow float64).
- ``'completed'``: all epochs ran.

A run is *usable* (:attr:`TrainResult.usable`) when it completed or converged; the
measurements of :mod:`linfusion.analysis` return NaN, with a reason, for the others.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import _engine
from . import mitigation as _mit
from ._result import STATUSES, TrainResult
from .architecture import INIT_SCHEMES, FusionNet
from .data import Dataset, Moments, _solve_rows
from .validation import check_array, check_choice, check_int, check_rng, check_scalar

__all__ = ["TrainResult", "train", "train_many", "loss_and_grad", "stability_bound", "LOSSES", "STATUSES",
           "BLOWUP"]

LOSSES = tuple(_engine.LOSS_CODES)
#: default divergence factor: a loss above BLOWUP × max(L(0), ½<|y|²>) counts as diverged
BLOWUP = 1e6
_MAX_HALVINGS = 12          # learning-rate probes after a divergence
_PROBE_BUDGET = 4           # ... using at most this many times the run's epochs in all


# ---------------------------------------------------------------------- checks
def _check_net(net):
    if not isinstance(net, FusionNet):
        raise TypeError(f"net is a {type(net).__name__}, must be a FusionNet.")
    return net


def _check_data(net, data, name="data"):
    """The data set, checked against the net (Dataset and Moments validate themselves)."""
    if isinstance(data, Moments):
        D = net.in_dim
        if data.sxx.shape != (D, D):
            raise ValueError(f"{name}.sxx has shape {data.sxx.shape}, must have shape ({D}, {D}).")
        if data.syx.shape != (net.out_dim, D):
            raise ValueError(f"{name}.syx has shape {data.syx.shape}, must have shape ({net.out_dim}, {D}).")
        return data
    if not isinstance(data, Dataset):
        raise TypeError(f"{name} is a {type(data).__name__}, must be a Dataset (see linfusion.data) or Moments.")
    if data.in_dims != net.in_dims:
        raise ValueError(f"{name}.in_dims == {data.in_dims}, must equal net.in_dims ({net.in_dims}).")
    if data.out_dim != net.out_dim:
        raise ValueError(f"{name}.out_dim == {data.out_dim}, must equal net.out_dim ({net.out_dim}).")
    return data


def _one(name, value, **rule):
    """One real number (train trains one run: sequences are refused)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (list, tuple, np.ndarray)):
        raise TypeError(f"{name} == {value!r}, must be one real number: train trains one run "
                        "(train_many takes one value per run).")
    return check_scalar(name, value, **rule)


def _per_run(name, value, R, **rule):
    """R checked floats from one value or a sequence of 1 or R values."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (list, tuple, np.ndarray)):
        if np.ndim(value) != 1 or len(value) not in (1, R):
            raise ValueError(f"{name} has shape {np.shape(value)}, must be a scalar or have {R} entries "
                             "(one per run).")
        vals = [check_scalar(f"{name}[{i}]", v, **rule) for i, v in enumerate(value)]
    else:
        vals = [check_scalar(name, value, **rule)]
    return np.ascontiguousarray(np.broadcast_to(np.array(vals, dtype=float), (R,)))


def _n_values(value):
    """How many runs a per-run argument implies (1 for a scalar)."""
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0):
        return len(value)
    return 1


def _moments_of(data):
    return data if isinstance(data, Moments) else data.moments()


def _least_squares(mo):
    """W_ls = Σyx Σxx⁺ (minimum norm) and its loss L_min = ½(<y²> − tr(W_ls Σyxᵀ)) >= 0.

    The loss is clipped at 0: a noiseless fit's L_min is a rounding residue of either sign.
    """
    w_ls = _solve_rows(mo.sxx, mo.syx)
    return w_ls, max(0.0, 0.5 * (mo.syy - float(np.sum(w_ls * mo.syx))))


def stability_bound(net, data):
    """Largest learning rate that gradient descent tolerates near the solution (estimate).

    For a depth-L linear network at a balanced least-squares solution W_ls the loss
    curvature is at most L·‖W_ls‖^(2−2/L)·λ_max(Σxx), so lr < 2 / (L λ_max ‖W_ls‖^(2−2/L)).
    The bound is exact for L = 1 (linear regression: GD converges iff lr < 2/λ_max); for
    deeper nets it is an estimate (conservative for late fusion, whose paths share
    ‖W_ls‖), and says nothing about the first steps from large initial weights. It costs
    an eigenvalue decomposition of Σxx (D × D).

    Parameters
    ----------
    net : FusionNet
    data : Dataset or Moments

    Returns
    -------
    float
        ``inf`` when Σxx = 0.
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


def _choose_path(net, loss, path, final_weights=True, mits=()):
    check_choice("path", path, ("auto",) + _engine.PATHS)
    linear = net.slope == 1.0 and not net.bias and loss == "mse"
    if any(m is not None for m in mits) and path == "auto":   # the paths that apply remedies
        return "moment" if linear and not any(m is not None and m.samples_dropout for m in mits) else "sample"
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
    check_choice("init", init, INIT_SCHEMES)
    return net.init(init, scale, rng, align=align)


def _spawn(rng, R):
    """R independent children of a seed, SeedSequence or Generator."""
    if isinstance(rng, (np.random.SeedSequence, np.random.Generator)):
        return list(rng.spawn(R))
    if isinstance(rng, np.random.BitGenerator):
        return list(np.random.Generator(rng).spawn(R))
    return list(np.random.SeedSequence(rng).spawn(R))


# ---------------------------------------------------------------------- the engine call
def _run(net, path, W, *, mos, fits, datas, lrs, wds, loss, epochs, record_every, tol, has_pop, sigma,
         w_star, blowup, dtype=np.float64, scales=None, ogm=None, drop=None, phases=None):
    """Train the runs of W (R, P) in place on ``path``; the raw :class:`_engine.Records`."""
    return _engine.fit(net, path, W, moments=mos, fits=fits, datas=datas, lrs=lrs, wds=wds, loss=loss,
                       epochs=epochs, record_every=record_every, tol=tol, has_pop=has_pop, sigma=sigma,
                       w_star=w_star, blowup=blowup, dtype=dtype, scales=scales, ogm=ogm, drop=drop, phases=phases)


# ---------------------------------------------------------------------- outcome
def _round_down(x):
    """x rounded down to 3 significant digits (advice must not round up past a stable rate)."""
    m = 10.0 ** (math.floor(math.log10(x)) - 2)
    return math.floor(x / m) * m


def _syy(data):
    """<|y|²> of a data set."""
    if isinstance(data, Moments):
        return float(data.syy)
    return float(np.sum(data.y * data.y) / data.n_samples)


def _has_signal(net, data, mo, loss):
    """Whether the data give gradient descent something to learn (see the module docstring)."""
    if loss != "mse":
        y = data.y if isinstance(data, Dataset) else None
        return True if y is None else bool(np.any(y != 0.0))
    syx = mo.syx if mo is not None else (data.syx if isinstance(data, Moments) else data.y.T @ data.x)
    if np.any(syx != 0.0):
        return True
    return bool(net.bias and isinstance(data, Dataset) and np.any(data.y.sum(axis=0) != 0.0))


def _stall_message(net, data, kind, k, w0):
    if kind == "no_update":
        what = (f"no update changed any weight in {k} epochs although the data carry signal: the gradient "
                "underflowed to exactly 0, or w0 is an exact critical point (e.g. all-zero weights or dead "
                "ReLUs)")
    else:
        what = (f"the end-to-end weights stayed exactly 0 and the loss never changed in {k} epochs although "
                "the data carry signal: the products of the layers underflow float64")
    hints = []
    nz = np.abs(w0[w0 != 0.0])
    if nz.size and net.depth * math.log10(float(nz.max())) < -290.0:
        hints.append(f"the initial weights (largest |w0| = {float(nz.max()):.3g}) are too small for depth "
                     f"{net.depth}: use a larger init scale")
    if isinstance(data, Dataset):
        big = max(float(np.max(np.abs(x))) if x.size else 0.0 for x in data.xs)
        if 0.0 < big < 1e-150:
            hints.append(f"the inputs (largest |x| = {big:.3g}) are so small that their squares underflow "
                         "float64: rescale them")
    return "stalled: " + what + (" (" + "; ".join(hints) + ")" if hints else "") + "."


def _advise(net, path, data, mo, fit, w0, lr, wd, loss, epochs, k_div, tol, blowup, mitigation=None):
    """A learning rate that is stable from ``w0``, as a phrase ('try lr <= x (...)'); never inf or NaN.

    Halve lr (starting no higher than half the estimated bound near the solution, when the
    moments are at hand) until the same run, from the same w0, keeps its loss finite and
    non-increasing (to rounding) for twice the training time (lr × epochs) the diverged run
    lasted, or for all ``epochs``.
    """
    start, why = lr / 2.0, "halved from lr"
    if loss == "mse" and mo is not None:
        b = _bound(net.depth, mo, fit[0])
        if np.isfinite(b) and b / 2.0 < start:
            start, why = b / 2.0, "from half the stability estimate near the solution, halved"
    try_lr, spent = start, 0
    D, n_out = net.in_dim, net.out_dim
    for _ in range(_MAX_HALVINGS):
        T = int(min(epochs, math.ceil(2.0 * (k_div + 1) * lr / try_lr)))
        if spent + T > _PROBE_BUDGET * epochs:
            break
        spent += T
        W = w0[None, :].copy()
        rec = _run(net, path, W, mos=None if mo is None else [mo], fits=None if fit is None else [fit],
                   datas=[data], lrs=np.array([try_lr]), wds=np.array([wd]), loss=loss, epochs=T,
                   record_every=max(1, T // 256), tol=tol, has_pop=np.array([False]),
                   sigma=np.zeros((1, D, D)), w_star=np.zeros((1, n_out, D)), blowup=blowup,
                   **_mit.kernel_args(mitigation, net))     # the same remedies as the diverged run
        m = int(rec.n_rec[0])
        lo = rec.loss[0, :m]
        # stable: finite, and the loss never rises between records beyond rounding (a rate that
        # merely oscillates at the edge of stability does not train)
        if (_engine.STATUS_NAMES[int(rec.status[0])] != "diverged" and np.all(np.isfinite(lo))
                and np.all(lo[1:] <= lo[:-1] * (1.0 + 1e-6) + 1e-12 * lo[0])):
            return (f"try lr <= {_round_down(try_lr):.3g} ({why} until the run from the same w0 decreased its "
                    f"loss steadily for {T} epochs)")
        try_lr /= 2.0
    return (f"no learning rate down to {_round_down(2.0 * try_lr):.3g} kept the run from the same w0 stable; "
            "use smaller initial weights, then a learning rate below that")


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
          loss="mse", weight_decay=0.0, record_every=1, tol=0.0, path="auto", align=None, blowup=BLOWUP,
          final_weights=True, dtype=np.float64, mitigation=None):
    """Train one network by full-batch gradient descent.

    Parameters
    ----------
    net : FusionNet
    data : Dataset or Moments
        One data set; moments suffice on the moment path.
    lr : float
        Learning rate (> 0, finite, one number); τ = 1/lr epochs.
    epochs : int
        Maximum number of updates (>= 1).
    init : {'entry', 'layer', 'balanced'}
        Initialisation scheme, see :meth:`FusionNet.init`.
    scale : float, optional
        Initialisation scale; default :func:`linfusion.architecture.default_scale`: 1e-9 for
        'entry' (the paper's two-layer nets) and 0.1 for 'layer' and 'balanced' (its deep nets).
    rng : int, Generator or SeedSequence, optional
        Randomness of the initial weights.
    w0 : ndarray of shape (n_params,), optional
        Initial weights; overrides init, scale and rng.
    loss : {'mse', 'exponential', 'logistic'}
    weight_decay : float
        λ >= 0 (one number); adds λ·w to the gradient.
    record_every : int
        Record every this many epochs (the last epoch is always recorded).
    tol : float
        Stop once the loss falls below tol (0: never).
    path : {'auto', 'moment', 'gram', 'feature', 'sample'}
    align : ndarray of shape (out_dim, D), optional
        Direction for ``init='balanced'``; default the least-squares solution Σyx Σxx⁻¹.
    blowup : float
        Divergence factor (> 1): the run counts as diverged once its loss exceeds
        ``blowup`` × max(L(0), ½<|y|²>), or is not finite.
    final_weights : bool
        Whether the final weights are needed; False lets ``path='auto'`` take the Gram path
        (two-layer linear nets), whose result has ``w = None``.
    dtype : {numpy.float64, numpy.float32}
        Arithmetic of the sample path; the moment, Gram and feature paths always work in
        float64 (their cost does not depend on the number of samples).
    mitigation : Mitigation, optional
        Remedies against unimodal bias (per-block learning rates, OGM-GE, expected
        dropout, auxiliary losses; :mod:`linfusion.mitigation`). With one, ``path='auto'``
        takes the moment path (linear nets) or the sample path.

    Returns
    -------
    TrainResult
        Its ``status`` is 'completed', 'converged', 'diverged' or 'stalled' (rules in
        :mod:`linfusion.training`); a diverged or stalled run also raises a RuntimeWarning
        with its message. After a divergence the message advises ``lr <= x``: the largest
        of lr/2, lr/4, ... (starting no higher than half :func:`stability_bound` when the
        moments are at hand) with which the same run, from the same w0, keeps its loss finite
        and non-increasing for twice the training time the diverged run lasted, or for all
        epochs.

    Warns
    -----
    RuntimeWarning
        Before training, for a one-layer linear net (L = 1, moment path) with
        lr >= 2/λ_max(Σxx), where gradient descent cannot converge; deeper nets have no
        tight bound, so their divergence is reported from the run itself.
    """
    _check_net(net)
    if isinstance(data, (list, tuple)):
        raise TypeError(f"data is a {type(data).__name__}, must be one Dataset or Moments: train trains one "
                        "run (train_many takes one data set per run).")
    lr = _one("lr", lr, lo=0.0, lo_open=True)
    weight_decay = _one("weight_decay", weight_decay, lo=0.0)
    check_rng("rng", rng)
    if w0 is not None:
        w0 = check_array("w0", w0, ndim=1, shape=(net.n_params,))[None, :]
    if mitigation is not None and not isinstance(mitigation, _mit.Mitigation):
        raise TypeError(f"mitigation is a {type(mitigation).__name__}, must be one Mitigation or None: train "
                        "trains one run (train_many takes one per run).")
    results = train_many(net, [data], lr=lr, epochs=epochs, init=init, scale=scale, rng=[rng], w0=w0,
                         loss=loss, weight_decay=weight_decay, record_every=record_every, tol=tol, path=path,
                         align=align, blowup=blowup, final_weights=final_weights, dtype=dtype,
                         mitigation=mitigation, _single=True)
    return results[0]


def train_many(net, data, *, lr=0.04, epochs=1000, init="entry", scale=None, rng=None, w0=None,
               loss="mse", weight_decay=0.0, record_every=1, tol=0.0, path="auto", align=None,
               n_runs=None, blowup=BLOWUP, final_weights=True, dtype=np.float64, mitigation=None, _single=False):
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
        R when it cannot be inferred from data, lr, rng, w0 or mitigation.
    mitigation : Mitigation or sequence of R of them (None entries: none), optional
    Other parameters as in :func:`train`.

    Returns
    -------
    list of TrainResult
    """
    _check_net(net)
    check_choice("loss", loss, LOSSES)
    check_choice("init", init, ("entry", "layer", "balanced"))
    epochs = check_int("epochs", epochs, lo=1)
    record_every = check_int("record_every", record_every, lo=1)
    tol = check_scalar("tol", tol, lo=0.0)
    blowup = check_scalar("blowup", blowup, lo=1.0, lo_open=True)
    scale = check_scalar("scale", scale, lo=0.0, lo_open=True, allow_none=True)
    n_runs = check_int("n_runs", n_runs, lo=1, allow_none=True)
    datas = list(data) if isinstance(data, (list, tuple)) else [data]
    if not datas:
        raise ValueError("data is empty, must hold at least one Dataset.")
    datas = [_check_data(net, d, f"data[{i}]" if len(datas) > 1 else "data") for i, d in enumerate(datas)]
    if isinstance(rng, (list, tuple)):
        if not rng:
            raise ValueError("rng is an empty sequence, must hold one seed per run.")
        rngs = [check_rng("rng" if _single else f"rng[{i}]", r) for i, r in enumerate(rng)]
    else:
        rngs = None
        check_rng("rng", rng)
    if w0 is not None:
        w0 = check_array("w0", np.atleast_2d(w0), ndim=2, shape=(None, net.n_params))
    sizes = {len(datas)} | ({len(rngs)} if rngs else set()) | ({w0.shape[0]} if w0 is not None else set())
    sizes |= {_n_values(lr), _n_values(weight_decay), _mit.n_runs(mitigation)} | ({n_runs} if n_runs else set())
    sizes.discard(1)
    if len(sizes) > 1:
        raise ValueError(f"the numbers of runs implied by data, lr, weight_decay, rng, w0, mitigation and n_runs differ "
                         f"({sorted(sizes)}), must agree (or be 1).")
    R = sizes.pop() if sizes else 1
    lrs = _per_run("lr", lr, R, lo=0.0, lo_open=True)
    wds = _per_run("weight_decay", weight_decay, R, lo=0.0)
    mits = _mit.per_run(mitigation, R)
    path = _choose_path(net, loss, path, final_weights, mits)
    for m in {id(m): m for m in mits if m is not None}.values():
        m.check(net, path)
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype == {dtype.name!r}, must be float64 or float32.")
    if path in ("sample", "feature") and any(isinstance(d, Moments) for d in datas):
        raise ValueError(f"data is Moments, must be a Dataset on the {path} path "
                         f"(slope {net.slope}, bias {net.bias}, loss {loss!r}).")
    shapes = {(d.sxx.shape if isinstance(d, Moments) else (d.n_samples,) + d.in_dims) for d in datas}
    if len(shapes) > 1:
        raise ValueError(f"data sets have different shapes {sorted(shapes)}, must all be equal in one batch.")
    # Moments and least-squares fits only where they are used: the moment path, and the
    # default direction of the balanced initialisation.
    need_fit = path == "moment" or (w0 is None and init == "balanced" and align is None)
    mos = [_moments_of(d) for d in datas] if need_fit else None
    if any(m is not None and m.modifies_moments for m in mits):     # moment path: one data set per run
        datas = [datas[r if len(datas) > 1 else 0] for r in range(R)]
        mos = [m.moments(mos[r if len(mos) > 1 else 0], net) if m else mos[r if len(mos) > 1 else 0]
               for r, m in enumerate(mits)]
    fits = [_least_squares(m) for m in mos] if need_fit else None   # (W_ls, L_min) per data set
    kargs = _mit.kernel_args(mits, net)                      # scales, ogm, drop, phases (or None)

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
                                       of_run(fits, i)[0] if align is None and fits else align)
                      for i in range(R)])
    W0 = W.copy()
    stack = 2 if not _single else 3
    if net.depth == 1 and loss == "mse" and mos is not None:
        # linear regression: GD converges iff lr < 2/λ_max(Σxx), exactly
        for i, m in enumerate(mos):
            bound = _bound(1, m, fits[i][0])
            worst = float(lrs.max() if len(mos) == 1 else lrs[i])
            if worst >= bound:
                warnings.warn(f"lr == {worst:g} is at or above 2/λ_max(Σxx) = {bound:.4g}: gradient descent on "
                              "a one-layer linear net cannot converge at this rate.", RuntimeWarning,
                              stacklevel=stack)
                break
    D, n_out = net.in_dim, net.out_dim
    has_pop = np.array([isinstance(d, Dataset) and d.sigma is not None and d.w_star is not None
                        for d in datas])
    sigma = np.stack([d.sigma if p else np.zeros((D, D)) for d, p in zip(datas, has_pop)])
    w_star = np.stack([d.w_star if p else np.zeros((n_out, D)) for d, p in zip(datas, has_pop)])
    rec = _run(net, path, W, mos=mos, fits=fits, datas=datas, lrs=lrs, wds=wds, loss=loss, epochs=epochs,
               record_every=record_every, tol=tol, has_pop=has_pop, sigma=sigma, w_star=w_star, blowup=blowup,
               dtype=dtype, **kargs)
    results = []
    for r in range(R):
        m = int(rec.n_rec[r])
        st = _engine.STATUS_NAMES[int(rec.status[r])]
        ep = rec.epoch[r, :m].copy()
        lo = rec.loss[r, :m].copy()
        wt = rec.w_tot[r, :m]
        d_r = of_run(datas, r)
        mo_r = of_run(mos, r) if mos else None
        fit_r = of_run(fits, r) if fits else None
        if st == "diverged":        # the kernels stop at the first epoch the rule holds
            k_div = int(ep[-1])
            if np.isfinite(lo[-1]):
                limit = blowup * max(float(lo[0]), 0.5 * _syy(d_r))
                msg = (f"diverged: the loss reached {lo[-1]:.3g} at epoch {k_div}, above blowup × max(L(0), "
                       f"½<|y|²>) = {blowup:g} × {limit / blowup:.3g}, with lr = {lrs[r]:g}; ")
            else:
                msg = f"diverged: the loss became non-finite at epoch {k_div} with lr = {lrs[r]:g}; "
            if not np.isfinite(lo[0]):
                msg += ("the loss is not finite at the initial weights, so no learning rate helps: use smaller "
                        "initial weights or rescale the data.")
            else:
                msg += _advise(net, path, d_r, mo_r, fit_r, W0[r], float(lrs[r]), float(wds[r]), loss, epochs,
                               k_div, tol, blowup, mits[r]) + "."
        elif st == "converged":
            msg = f"converged: loss {lo[-1]:.3g} < tol {tol:g} at epoch {ep[-1]}."
        else:
            kind = None
            if ep[-1] >= 1:
                if path != "gram" and np.array_equal(W[r], W0[r]):      # the Gram path keeps no weights
                    kind = "no_update"
                elif not np.any(wt) and np.all(lo == lo[0]):
                    kind = "zero_tot"
            if kind is not None and _has_signal(net, d_r, mo_r, loss):
                st = "stalled"
                msg = _stall_message(net, d_r, kind, int(ep[-1]), W0[r])
            else:
                msg = f"completed {int(ep[-1])} epochs; final loss {lo[-1]:.6g}."
        if st in ("diverged", "stalled"):
            warnings.warn(msg, RuntimeWarning, stacklevel=stack)
        results.append(TrainResult(
            epochs=ep, loss=lo,
            w_tot=[wt[:, :, sl].copy() for sl in net.in_slices],
            eg=rec.eg[r, :m].copy() if of_run(has_pop, r) else None,
            w=None if path == "gram" else W[r].copy(), w0=W0[r], status=st, message=msg, lr=float(lrs[r]), path=path, net=net,
            moments=mo_r, mitigation=mits[r]))
    return results
