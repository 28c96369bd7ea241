"""The records of a diagnosis (theory.diagnose): what it reports, with repr, text and JSON forms."""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass

import numpy as np

from ._checks import _slices

__all__ = ["Diagnosis", "ModalityStrength", "Plateau", "LateFusion", "DepthTimes", "Preference", "HeldOut",
           "Advice", "SimulatedRun", "Confirmation"]


def progress(w, along, amp, dims):
    """Each modality's progress W_k·ĝ_k / a*_k along its learning direction, per record.

    ndarray of shape (n, K) for end-to-end weights w of shape (n, D); NaN for a modality whose
    amplitude a*_k is zero.
    """
    cols = [w[:, s] @ a for s, a in zip(_slices(dims), along)]
    return np.stack([c / m if m > 0 else np.full(c.shape, np.nan) for c, m in zip(cols, amp)], axis=1)


# ---------------------------------------------------------------------------------------
# Records.
# ---------------------------------------------------------------------------------------

def _plain(obj):
    """Plain Python (dicts, lists, floats, ints, str, bool) of records and arrays; NaN kept."""
    if is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if f.repr}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclass(frozen=True)
class ModalityStrength:
    """How strongly one modality drives learning and how much it is worth (exact).

    Attributes
    ----------
    name : str
    dim : int
        Input dimension d_m.
    corr : float
        ‖Σ_yx,m‖: its phase-1 growth rate (per τ, halved for the logistic loss).
    alone : float
        ½ Σ_yx,m Σ_m⁻¹ Σ_yx,mᵀ, the loss it removes on its own, as a fraction of L(0) = ½⟨y²⟩
        (for a centred target, its unimodal R²).
    removal : float
        L(M_{all∖m}) − L(M_*), the loss added by leaving it out of the full fit, fraction of L(0).
    chance : float
        d_m / n, about the fraction ``alone`` that a modality without signal reaches by chance.
    """

    name: str
    dim: int
    corr: float
    alone: float
    removal: float
    chance: float


@dataclass(frozen=True, eq=False)
class Plateau:
    """One unimodal (or partial) plateau of late fusion: the fixed point M_S with S learned.

    Attributes
    ----------
    learned : tuple of int
        S, in the order learned.
    start, end : float
        Epochs at which it starts and ends, closed form (leading order).
    start_map, end_map : float
        The same from the map at the learning rate.
    loss : float
        L(M_S)/L(0).
    misattribution : ndarray of shape (K,)
        Per modality (NaN when not learned): (W_m(M_S) − W_m(M_*))·W_m(M_*) / ‖W_m(M_*)‖², its
        signed over-credit relative to its final weight (toy data: ρ/r for A).
    misattribution_norm : ndarray of shape (K,)
        ‖W_m(M_S) − W_m(M_*)‖ / ‖W_m(M_*)‖ (NaN when not learned).
    test_loss : float
        Held-out loss at M_S over the held-out L(0); NaN without a held-out split.
    test_accuracy : float
        Held-out accuracy of sign(W_S x) (classification with a held-out split; else NaN).
    """

    learned: tuple
    start: float
    end: float
    start_map: float
    end_map: float
    loss: float
    misattribution: np.ndarray
    misattribution_norm: np.ndarray
    test_loss: float
    test_accuracy: float


@dataclass(frozen=True, eq=False)
class LateFusion:
    """The learning schedule of two-layer late fusion (per-entry init).

    Attributes
    ----------
    order : tuple of int
        Modalities in the order learned (closed form; never-learned ones last).
    t : ndarray of shape (K,)
        Epoch at which each modality is learned, closed form :func:`theory.two_layer.late_schedule`
        (leading order); NaN for a modality never needed.
    order_map, t_map :
        The same from the rank-one map at the learning rate (exact for the balanced rank-one
        net of scale u0); NaN for a modality not learned within ``max_epochs``.
    early : float
        Two-layer early fusion's single transition, (τ/‖Σ_yx‖) ln(1/u0) (heuristic, theory.md §6.2).
    u0, scale, width, lr : float, float, int, float
        Effective scale scale·√(width/2), per-entry scale, width, learning rate.
    plateaus : tuple of Plateau
        The K − 1 plateaus (fewer if a modality is never needed).
    along : tuple of ndarray of shape (d_m,)
        Per modality, the unit direction ĝ_m along which it grows when it is learned: its residual
        correlation at the fixed point of the modalities learned before it (theory.md §12.2).
    scales : ndarray of shape (K,)
        a*_m = ‖g_m‖ / (ĝ_mᵀ C_m ĝ_m), the amplitude along ĝ_m at which that growth saturates
        (C_m: Σ_m conditioned on the modalities learned before it); for scalar modalities the
        modality's value at the fixed point where it is learned (theory.md §7.1). 0 if never needed.
    thresholds : ndarray of shape (K,)
        a*_m / 2: modality m counts as learned when W_m^tot · ĝ_m first rises through it.
    diverged : bool
        The map diverges at this learning rate (``t_map`` is then NaN): lr is above the stability
        bound of gradient descent on these data.
    run_epochs : int
        Epochs of the trajectory below and of the run that confirms it: 1.3× (2× for the logistic
        loss) the last time of the map, plus 100.
    curve_epochs, curve_loss, curve_progress : ndarray
        The map's trajectory, every epoch: loss/L(0) (n,) and progress W_m^tot·ĝ_m / a*_m (n, K).
    """

    order: tuple
    t: np.ndarray
    order_map: tuple
    t_map: np.ndarray
    early: float
    u0: float
    scale: float
    width: int
    lr: float
    plateaus: tuple
    along: tuple
    scales: np.ndarray
    thresholds: np.ndarray
    diverged: bool
    run_epochs: int
    curve_epochs: np.ndarray
    curve_loss: np.ndarray
    curve_progress: np.ndarray


@dataclass(frozen=True, eq=False)
class DepthTimes:
    """Times of a depth-L network fused at layer L_f, started balanced and aligned.

    Attributes
    ----------
    fuse_depth : int
    t : ndarray of shape (K,)
        Epoch at which each modality is learned: the exact aligned-chain map at the learning
        rate (NaN if not within ``max_epochs``).
    ratio : float
        t_last / t_first (1: no unimodal phase); NaN if a modality was not learned.
    ratio_closed : float
        K = 2 only: the closed form :func:`theory.deep.deep_time_ratio_vector` (heuristic); NaN
        otherwise.
    t_first_closed : float
        K = 2 only: its t_A in epochs; NaN otherwise.
    diverged : bool
        The map diverges at this learning rate (``t`` is then NaN).
    """

    fuse_depth: int
    t: np.ndarray
    ratio: float
    ratio_closed: float
    t_first_closed: float
    diverged: bool


@dataclass(frozen=True)
class Preference:
    """Whether the first-learned modality is the useful one (theory.md §6.5, §12.4).

    Attributes
    ----------
    first : int
        The first-learned modality.
    best_alone : int
        The modality that removes the most loss on its own.
    best_removal : int
        The one whose removal from the full fit costs the most.
    superficial : bool
        ``first`` removes strictly less loss on its own than ``best_alone``.
    superficial_removal : bool
        The same by the removal reading.
    """

    first: int
    best_alone: int
    best_removal: int
    superficial: bool
    superficial_removal: bool


@dataclass(frozen=True)
class HeldOut:
    """Held-out losses of the path's end points (exact for the fixed points).

    Attributes
    ----------
    n : int
        Held-out samples.
    loss_end : float
        Held-out loss at M_*, where both early and late fusion end (Σ is non-singular), over the
        held-out L(0) = ½⟨y²⟩.
    accuracy_end : float
        Classification: held-out accuracy of sign(W_* x); NaN for regression.
    deficit : float
        Largest held-out loss on a plateau minus ``loss_end`` (fraction of the held-out L(0)):
        what stopping on the worst plateau costs.
    """

    n: int
    loss_end: float
    accuracy_end: float
    deficit: float


@dataclass(frozen=True, eq=False)
class Advice:
    """What to do about it.

    Attributes
    ----------
    lr_multipliers : ndarray of shape (K,)
        Per-modality effective learning-rate multipliers ‖Σ_yx,first‖/‖Σ_yx,m‖ that equalise the
        phase-1 growth rates (both layers of branch m scaled by it).
    lr_scales : dict
        The same as block scales {'W1_m': ..., 'W2_m': ...} (:func:`theory.mitigation.late_schedule_lrs`).
    t_equalised : ndarray of shape (K,)
        Closed-form times with those scales (leading order; NaN: never needed).
    equalisable : bool
        False when a modality's correlation points against its eventual weights (the signed
        case of theory.md §6.3): no rate brings it up with the others.
    fuse_depth : int
        The latest fusion layer of depth L whose t_last/t_first is below RATIO_OK (1 if none).
    lines : tuple of str
        The recommendation in words.
    """

    lr_multipliers: np.ndarray
    lr_scales: dict
    t_equalised: np.ndarray
    equalisable: bool
    fuse_depth: int
    lines: tuple


@dataclass(frozen=True, eq=False)
class SimulatedRun:
    """One trained network and what it did.

    Attributes
    ----------
    depth, fuse_depth : int
    init : str
        'entry' (two-layer late fusion) or 'balanced' (the fusion-depth networks).
    status, message : str
        :attr:`linfusion.TrainResult.status` and its message.
    t : ndarray of shape (K,)
        Measured epochs at which W_m^tot·ĝ_m first rises through the same thresholds as the
        prediction (interpolated, theory.md §7.1); NaN: not learned in the run, or the run is
        not usable.
    t_exact : ndarray of shape (K,)
        Two-layer late fusion with the squared loss: the exact Gram map from this run's own
        initial weights (theory.md §6.10); NaN otherwise.
    epochs : ndarray of shape (n,)
    loss : ndarray of shape (n,)
        Training loss over its value at epoch 0.
    progress : ndarray of shape (n, K)
        W_m^tot·ĝ_m / a*_m per record (:attr:`LateFusion.scales`).
    test_loss : ndarray of shape (n,) or None
        Held-out loss / held-out L(0) per record (squared loss; regression with a held-out split).
    seconds : float
        Wall time of the training.
    """

    depth: int
    fuse_depth: int
    init: str
    status: str
    message: str
    t: np.ndarray
    t_exact: np.ndarray
    epochs: np.ndarray
    loss: np.ndarray
    progress: np.ndarray
    test_loss: np.ndarray | None
    seconds: float

    @property
    def usable(self):
        return self.status in ("completed", "converged")


@dataclass(frozen=True, eq=False)
class Confirmation:
    """The networks trained by ``confirm=True``.

    Attributes
    ----------
    late : SimulatedRun
        Two-layer late fusion from the per-entry init.
    depths : tuple of SimulatedRun
        The depth-L networks, one per fusion layer (squared loss only; empty otherwise).
    seconds : float
    """

    late: SimulatedRun
    depths: tuple
    seconds: float


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """What the second moments of a data set say about multimodal learning on it (:func:`diagnose`).

    ``repr`` is one line; :meth:`text` is the plain-language report; :meth:`to_dict` gives plain
    Python for JSON (undefined numbers are NaN).

    Attributes
    ----------
    names, dims : tuple
        Modality names and input dimensions.
    n_samples, task, loss, preprocess :
        Training samples; 'regression' or 'classification'; the loss the network is trained with
        ('mse' or 'logistic'); the preprocessing in words.
    sigma, syx, syy :
        The moments used (after preprocessing; for classification, of the ±1 labels).
    strengths : tuple of ModalityStrength
    late : LateFusion
    depth, deep_scale : int, float
        Depth L of the fusion-depth table and the balanced init's per-layer scale.
    depths : tuple of DepthTimes
        L_f = 1 .. L.
    preference : Preference
    held_out : HeldOut or None
    advice : Advice
    confirmation : Confirmation or None
    notes : tuple of str
        Caveats that apply to these data.
    methods : dict
        What each number is and its status.
    """

    names: tuple
    dims: tuple
    n_samples: int
    task: str
    loss: str
    preprocess: str
    sigma: np.ndarray
    syx: np.ndarray
    syy: float
    strengths: tuple
    late: LateFusion
    depth: int
    deep_scale: float
    depths: tuple
    preference: Preference
    held_out: HeldOut | None
    advice: Advice
    confirmation: Confirmation | None
    notes: tuple
    methods: dict

    @property
    def order(self):
        """Modality names in the order late fusion learns them (closed form)."""
        return tuple(self.names[k] for k in self.late.order)

    @property
    def superficial(self):
        """True when the first-learned modality removes less loss on its own than another."""
        return self.preference.superficial

    def __repr__(self):
        times = " / ".join(_fmt_t(self.late.t[k]) for k in self.late.order)
        conf = ", confirmed" if self.confirmation is not None else ""
        sup = ", superficial preference" if self.preference.superficial else ""
        return (f"Diagnosis(K={len(self.names)}, n={self.n_samples}, {self.task}: late fusion learns "
                f"{' → '.join(self.order)} at {times} epochs{sup}{conf})")

    def to_dict(self):
        """The report as plain Python (dicts, lists, floats, str): JSON-ready; NaN for undefined numbers."""
        out = _plain(self)
        out["order"] = list(self.order)
        out["superficial"] = bool(self.preference.superficial)
        return out

    def text(self):
        """The plain-language report (several lines)."""
        from ._diagnosis_text import render
        return render(self)


def _fmt_t(t):
    return "never" if not np.isfinite(t) else f"{t:.0f}"
