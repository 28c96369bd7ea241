"""Deep and intermediate fusion (figures 9-12): configuration, measurement and scalar chains.

The shared code of :mod:`sims.fusion_depth` (figure 9) and of the three sweeps
:mod:`sims.rho_sweep`, :mod:`sims.ratio_sweep`, :mod:`sims.init_sweep` (figures 10-12,
whose run, theory and figure live in :mod:`sims._deep_sweep`). The object is the time ratio
t_B/t_A of depth-L linear fusion networks with fusion layer L_f on the toy data
(theory.md §3a, §6.6-6.7), simulated and predicted three ways:

- **simulation**: full-batch gradient descent of the width-h network, times read off with
  :func:`linfusion.analysis.measure` (:func:`measure_run`);
- **closed form**: :func:`theory.deep.deep_time_ratio` at u0 = init (the paper's curves,
  theory.md §6.6);
- **chain map from the run's own initial condition**: the exact gradient-descent map of an
  aligned rank-one chain (:func:`theory.dynamics.chain_map`, at the run's learning rate,
  theory.md §6.10), started from *each run's* initial weights projected onto their top
  singular directions: every layer block (per modality up to and including its fusion block
  F_X, then the shared layers) becomes one scalar, its largest singular value
  (:func:`chain_scales`). For the ``balanced`` initialisation these are exactly u0
  (pre-fusion) and √2·u0 (shared), so the chain is the network itself. For the random
  ``layer`` initialisation a h×h block of Frobenius norm u0 has top singular value ≈ 2u0/√h,
  so the chain starts far smaller than init: the effective aligned initial condition of
  theory.md §9.4. No parameter is fitted.

The projection ignores that the top singular vectors of consecutive random layers are not
aligned: the network first aligns them, so its absolute times are ≈ 1.6× the chain's
(h = 100, u0 = 0.1), while its time ratio t_B/t_A is predicted to within 8 % over the
paper's ρ, r and init sweeps (worst: L_f = 2 at |ρ| = 0.9, where ratio − 1 is small).

Runs that are not usable (status 'diverged' or 'stalled') are measured as NaN with a
reason, never with made-up numbers and never with an exception (:func:`measure_run`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion import analysis
from linfusion.architecture import default_scale
from theory.dynamics import chain_map_many

from ._config import Config, integer, integers, option, real
from ._options import Width

__all__ = ["USABLE", "usable", "Samples", "Rho", "Ratio", "Scale", "DeepNet", "scale_of", "chain_scales",
           "chain_signs", "paper_offset", "chain_times", "toy_targets", "measure_run", "fusion_label", "convention_text",
           "status_counts", "unused_counts", "count_text"]

#: the statuses of a run whose numbers mean something (CONTRACT item 4)
USABLE = ("completed", "converged")
_NET = "network and training"
_DATA = "data"


def usable(result):
    """True for a run whose status is 'completed' or 'converged'."""
    flag = getattr(result, "usable", None)
    return bool(flag) if flag is not None else result.status in USABLE


# ------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class Samples(Config):
    """Size and label noise of the toy data (theory.md §3a)."""

    n: int = option(8192, "number of samples", check=integer(lo=2), group=_DATA)
    noise: float = option(0.0, "label-noise standard deviation", check=real(0.0), group=_DATA)


@dataclass(frozen=True)
class Rho(Config):
    """The correlation of the toy data's two modalities."""

    rho: float = option(0.0, "correlation ρ of x_A and x_B, in (-1, 1)",
                        check=real(-1.0, 1.0, lo_open=True, hi_open=True), group=_DATA)


@dataclass(frozen=True)
class Ratio(Config):
    """σ_A/σ_B of the toy data; A, the larger-variance modality, is learned first."""

    ratio: float = option(2.0, "r = σ_A/σ_B, >= 1 (A, the larger-variance modality, is learned first)",
                          check=real(1.0), group=_DATA)


@dataclass(frozen=True)
class Scale(Config):
    """The initialisation scale u0 (per-layer Frobenius norm before fusion, √2·u0 from fusion on)."""

    scale: float | None = option(None, "init u0, in (0, 1): per-layer Frobenius norm before fusion, √2·u0 "
                                 "from fusion on (the chain theory needs u0 < 1)",
                                 check=real(0.0, 1.0, lo_open=True, hi_open=True), group=_NET,
                                 none_means="the library's: 0.1 for layer and balanced")


@dataclass(frozen=True)
class DeepNet(Width):
    """A depth-L linear fusion network per fusion layer, trained by full-batch gradient descent.

    ``--quick`` sets the width to 50.
    """

    QUICK = {"width": 50}

    depth: int = option(4, "total depth L", check=integer(lo=1), group=_NET)
    fuse_depths: tuple[int, ...] | None = option(None, "fusion layers L_f to run, comma separated, each in "
                                                 "1..depth", check=integers(lo=1), group=_NET,
                                                 none_means="L, ..., 1")
    init_scheme: str = option("layer", "layer: random, the paper's deep scheme; balanced: rank-one, exactly "
                              "balanced and aligned (the network is then its scalar chain)",
                              choices=("layer", "balanced"), group=_NET)
    lr: float = option(0.04, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True), group=_NET)
    epochs: int = option(100000, "maximum number of epochs", check=integer(lo=1), group=_NET)
    tol: float = option(1e-4, "stop once the loss is below tol (0: never)", check=real(0.0), group=_NET)
    record_every: int = option(1, "record every k epochs (1: the times have epoch resolution)",
                               check=integer(lo=1), group=_NET)
    convention: str = option("paper", "paper: the epoch nearest half of W_A^uni (A) and half of max W_B (B), "
                             "theory.md §7.2; interp: first crossing of half of W_A^uni and of half of "
                             "W_B(M_*), interpolated, theory.md §7.1", choices=("paper", "interp"), group=_NET)

    def validate(self):
        if self.fuse_depths is not None and len(set(self.fuse_depths)) < len(self.fuse_depths):
            raise ValueError(f"fuse_depths == {self.fuse_depths!r}, must not repeat a fusion layer.")
        bad = [f for f in self.fuse_depths or () if f > self.depth]
        if bad:
            raise ValueError(f"fuse_depths == {self.fuse_depths!r}: {bad} exceed depth ({self.depth}); each "
                             "must lie in 1..depth.")

    @property
    def lf_list(self):
        """The fusion layers run, in order (L, ..., 1 unless ``fuse_depths`` says otherwise)."""
        return list(self.fuse_depths) if self.fuse_depths is not None else list(range(self.depth, 0, -1))


def scale_of(cfg, scheme=None):
    """The init scale u0 a configuration trains at: ``cfg.scale``, or the library's default."""
    scale = getattr(cfg, "scale", None)
    return scale if scale is not None else default_scale(scheme or "layer")


def convention_text(convention):
    """How t_A and t_B are read off a run, in words."""
    if convention == "paper":
        return ("t_A: epoch nearest ½ W_A^uni, t_B: epoch nearest ½ max W_B "
                "(the original's convention, theory.md §7.2)")
    return "t_A, t_B: first crossing of ½ W_A^uni and ½ W_B(M_*), interpolated (theory.md §7.1)"


# ------------------------------------------------------------------ the scalar chain of a run
def _top_singular_value(b, rtol=1e-10, max_iter=5000):
    """Largest singular value of a matrix by power iteration on bᵀb.

    Not ``np.linalg.norm(b, 2)``: the LAPACK SVD of a 100×100 block runs its BLAS threads,
    which on a busy machine makes it ~50× slower than these matrix-vector products. Rank-one
    blocks converge in one step; random ones in a few hundred, to ~1e-9 relative.
    """
    if min(b.shape) == 1:
        return float(np.linalg.norm(b))
    v = b[np.argmax(np.einsum("ij,ij->i", b, b))].copy()      # the largest row: not orthogonal to the top direction
    s_old = 0.0
    for _ in range(max_iter):
        u = b @ v
        s = float(np.linalg.norm(u) / np.linalg.norm(v))
        if abs(s - s_old) <= rtol * s:
            break
        s_old = s
        v = b.T @ u
        v /= np.linalg.norm(v)
    return s


def chain_scales(net, w):
    """Project every layer block of a network onto its top singular direction.

    Parameters
    ----------
    net : FusionNet
        Two modalities, linear.
    w : ndarray of shape (n_params,)
        Weights (usually the initial ones).

    Returns
    -------
    pre : ndarray of shape (K, L_f)
        Largest singular value of each pre-fusion block of modality k, layers 1..L_f (the
        last is the fusion block F_k).
    post : ndarray of shape (L − L_f,)
        Largest singular value of each shared layer L_f+1..L.
    """
    top = _top_singular_value
    pre = np.array([[top(net.blocks(w, modality=k, layer=layer)[0]) for layer in range(1, net.fuse_depth + 1)]
                    for k in range(net.n_modalities)])
    post = np.array([top(net.blocks(w, modality=-1, layer=layer)[0])
                     for layer in range(net.fuse_depth + 1, net.depth + 1)])
    return pre, post


def chain_signs(sxx, syx):
    """Sign of each modality's eventual weight (least-squares solution), shape (..., K).

    A rank-one chain cannot change the sign of a path, so it starts with the sign it ends
    with (as :func:`theory.dynamics.chain_map` and the 'balanced' initialisation do).
    """
    sol = np.linalg.solve(sxx, syx[..., None])[..., 0]
    return np.where(sol < 0, -1.0, 1.0)


def paper_offset():
    """What the 'paper' convention adds to a time counted in updates (0 or −1).

    :func:`linfusion.analysis.nearest_time` reads a trajectory as the original code does
    (theory.md §7.2, §7.4): read off a three-record trajectory here, so that a chain's
    crossing, counted in updates, is reported in the same convention as the runs' times.
    """
    return analysis.nearest_time(np.arange(3.0), np.arange(3.0), 1.0) - 1.0


def chain_times(sxx, syx, pre, post, lr, thr_a, thr_b, max_epochs, *, stop=1, convention="interp"):
    """Crossing epochs of many aligned rank-one chains: :func:`theory.dynamics.chain_map_many`.

    A thin adapter of the experiments' arrays to the theory's batched chain map (the one
    implementation of the chain's update, shared with :func:`theory.dynamics.chain_map`):
    the depth is read off the shapes, the crossing compares W_X times the sign of its
    eventual weight ('projection') with the run's own thresholds. The crossings are
    interpolated between updates; with ``convention='paper'`` they are shifted by
    :func:`paper_offset`, as the runs' times are.

    Parameters
    ----------
    sxx : ndarray of shape (N, 2, 2)
        Input second moments of each chain's data.
    syx : ndarray of shape (N, 2)
    pre : ndarray of shape (N, 2, L_f)
        Signed initial pre-fusion scalars (the sign of the path on the first one).
    post : ndarray of shape (N, L − L_f)
        Initial shared scalars.
    lr : float
    thr_a, thr_b : ndarray of shape (N,)
        Thresholds of W_A and W_B (NaN: never crossed, the chain does not hold up the others).
    max_epochs : int
    stop : {0, 1}
        Stop once every chain has crossed the threshold of A (0) or of B (1).
    convention : {'interp', 'paper'}
        The measurement convention of the runs the chains are compared with.

    Returns
    -------
    ndarray of shape (N, 2)
        First upward crossing epochs of W_A and W_B, linearly interpolated; NaN where not
        reached within ``max_epochs``.
    """
    pre = np.asarray(pre, dtype=float)
    post = np.asarray(post, dtype=float)
    l_f = pre.shape[-1]
    res = chain_map_many(sxx, syx, l_f + post.shape[-1], l_f, lr, int(max_epochs), layer_scales=(pre, post),
                         thresholds=np.stack(np.broadcast_arrays(np.asarray(thr_a, dtype=float),
                                                                 np.asarray(thr_b, dtype=float)), axis=-1),
                         crossing="projection", stop=stop)
    return np.array(res.t_cross) + (paper_offset() if convention == "paper" else 0.0)


def toy_targets(rho, ratio, w_star=(1.0, 1.0)):
    """A's unimodal weight W_A^uni and B's weight at M_* on the toy data (population).

    Returns
    -------
    wa_uni, wb_star : float
        w_A* + w_B* ρ/r (theory.md §6.1 with general W*) and w_B*.
    """
    return w_star[0] + w_star[1] * rho / ratio, w_star[1]


# ------------------------------------------------------------------ measurement
_TIMES = ("t_a_epochs", "t_b_epochs", "time_ratio", "thr_a", "thr_b")


def measure_run(result, *, wa_uni, wb_star, convention):
    """t_A, t_B (epochs), t_B/t_A and the thresholds of one run; NaN with a reason if unusable.

    Never raises on a run's outcome: a run whose status is not 'completed'/'converged', or
    whose recorded end-to-end weights are not finite, gets NaN for every number and its
    reason in ``note`` (CONTRACT item 4).

    Parameters
    ----------
    result : TrainResult
    wa_uni, wb_star : float
        Population W_A^uni and W_B at M_* (:func:`toy_targets`); thresholds are their halves
        (B: half of its trajectory maximum under the 'paper' convention).
    convention : {'paper', 'interp'}

    Returns
    -------
    dict
        ``t_a_epochs``, ``t_b_epochs``, ``time_ratio``, ``thr_a``, ``thr_b`` (float) and
        ``note`` (str, empty when measured).
    """
    nan = dict.fromkeys(_TIMES, float("nan"))
    if not usable(result):
        why = result.message if result.message.startswith(result.status) else f"{result.status}: {result.message}"
        return {**nan, "note": why}
    if not all(np.all(np.isfinite(w)) for w in result.w_tot):
        return {**nan, "note": "not measured: end-to-end weights are not finite"}
    try:
        m = analysis.measure(result, wa_uni=wa_uni, wb_star=wb_star, convention=convention)
    except (ValueError, FloatingPointError) as exc:
        return {**nan, "note": f"not measured: {exc}"}
    return dict(t_a_epochs=float(m["t_a"]), t_b_epochs=float(m["t_b"]), time_ratio=float(m["ratio"]),
                thr_a=float(m["thr_a"]), thr_b=float(m["thr_b"]), note="")


def status_counts(status):
    """Runs per status, in a fixed order: {'converged': 3, 'diverged': 1, ...} (zeros left out)."""
    status = np.asarray(status)
    order = ("converged", "completed", "diverged", "stalled", "failed")
    names = list(order) + sorted(set(status.tolist()) - set(order))
    return {s: int(np.sum(status == s)) for s in names if np.any(status == s)}


def unused_counts(status, kept):
    """Why runs were left out: {'diverged': 2, 'above the keep loss': 4, ...} (zeros left out).

    A run is left out when it is not usable (its status), or when it is usable but was not
    kept (final loss above the keep loss, or a time not measured).
    """
    status, kept = np.asarray(status), np.asarray(kept, dtype=bool)
    unusable = ~np.isin(status, USABLE)
    out = status_counts(status[unusable])
    dropped = int(np.sum(~kept & ~unusable))
    if dropped:
        out["above the keep loss or unmeasured"] = dropped
    return out


def count_text(status, kept):
    """'12 run(s), 6 used; not used: 2 diverged, 4 above the keep loss or unmeasured'."""
    parts = [f"{n} {why}" for why, n in unused_counts(status, kept).items()]
    text = f"{np.size(status)} run(s), {int(np.sum(kept))} used"
    return text + (f"; not used: {', '.join(parts)}" if parts else "")


# ------------------------------------------------------------------ figure helpers
def fusion_label(lf, depth):
    """Legend text of fusion layer L_f in mathtext: '$L_f = 4$ (late)'."""
    kind = " (early)" if lf == 1 else " (late)" if lf == depth else ""
    return f"$L_f = {lf}${kind}"
