"""Remedies against unimodal bias, as options of :func:`linfusion.train` (theory.md §11).

One frozen configuration, :class:`Mitigation`, passed as ``train(..., mitigation=...)``
(``train_many`` takes one for all runs or one per run). What each field does:

- ``lr_scales``: per-block learning rates. Block ``b`` (a name of :meth:`FusionNet.unpack`:
  ``'W1_0'``, ``'W2_1'``, ``'W3'`` (shared), ``'b1_0'``, ...) learns at ``lr · lr_scales[b]``;
  blocks not named keep 1; 0 freezes a block. Weight decay acts at the block's own rate:
  w ← w − lr·s_b (g + λ w). Moment and sample paths.
- ``ogm_alpha``: OGM-GE gradient modulation (moment path). At every step each modality's
  score is the loss reduction its contribution alone achieves,
  s_k = tr(Σyx,k W_kᵀ) − ½ tr(W_k Σkk W_kᵀ) (W_k its end-to-end weights); the dominant
  modality d (largest score, lowest index on ties) has rho = s_d / mean_{j≠d} s_j, and when
  rho > 1 the gradients of every block on its branch (layout modality d) are multiplied by
  1 − tanh(α rho) (rho = inf when the others' mean is <= 0 < s_d; nothing when s_d <= 0).
  The rule is that of ``theory.mitigation.ogm_coefficients``, so the engine and the exact
  maps ``theory.dynamics.gram_map(..., ogm_alpha=α)`` agree; weight decay is not modulated.
  The original's Gaussian enhancement noise is not built.
- ``dropout`` (probability p_k per modality), ``dropout_rescale`` and ``dropout_kind``:
  modality dropout, each modality of each sample dropped (x_k → 0) independently with
  probability p_k, kept ones multiplied by 1/(1 − p_k) when rescaled (inverted dropout).
  ``'expected'`` (moment path): the run descends the expected loss over the masks, i.e. the
  exact moments Σ'_kl = a_k a_l Σ_kl, Σ'_kk = b_k Σ_kk, Σyx,k' = a_k Σyx,k with a = 1,
  b = 1/(1 − p) (rescaled) or a = b = 1 − p: a deterministic, exact run. ``'sampled'``
  (sample path): fresh masks every epoch, drawn from ``dropout_seed`` by a counter-based
  generator of (seed, epoch, sample, modality), so a run gives the same bits on any number
  of threads and inside any batch; the recorded loss is that of the epoch's masked inputs.
- ``pretrain``, ``pretrain_epochs`` and ``alternate``: schedules (moment path). For the first
  ``pretrain_epochs`` epochs only the branches of the modalities in ``pretrain`` learn (the
  others keep their weights, weight decay included); then, with ``alternate`` = T > 0, only
  modality ((k − pretrain_epochs) // T) mod K's branch learns at epoch k. Blocks shared by all
  modalities (layout modality −1) always learn.
- ``aux_weight`` (λ_k per modality): unimodal auxiliary losses λ_k · ½<(y − W_k x_k)²> whose
  head is the branch's own contribution to the fused output (moment path): the moments
  Σ' = Σ + blockdiag(λ_k Σkk), Σyx,k' = (1 + λ_k) Σyx,k, <y²>' = (1 + Σλ_k) <y²>. Exact
  for linear nets; dropout, when also given, acts first.

The modified moments are what the run trains on (:attr:`TrainResult.moments`); the loss it
records is the mitigated training loss (expected over dropout masks, auxiliary terms
included). E_g uses the data set's own population statistics, unchanged. Every run's
result records its configuration (:attr:`TrainResult.mitigation`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import Moments
from .validation import check_choice, check_int, check_scalar

__all__ = ["Mitigation", "dropout_moments", "auxiliary_moments"]


def _per_modality(name, value, **rule):
    """A float, or a tuple of floats, each inside the rule."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if np.ndim(value) != 1 or len(value) < 1:
            raise ValueError(f"{name} == {value!r}, must be a number or a sequence of numbers (one per modality).")
        return tuple(check_scalar(f"{name}[{i}]", v, **rule) for i, v in enumerate(value))
    return check_scalar(name, value, **rule)


def _expand(name, value, n_mod):
    """(K,) floats from a number or a sequence of K."""
    if isinstance(value, tuple):
        if len(value) != n_mod:
            raise ValueError(f"{name} has {len(value)} entries, must have {n_mod} (one per modality of the net).")
        return np.array(value, dtype=float)
    return np.full(n_mod, float(value))


@dataclass(frozen=True)
class Mitigation:
    """Which remedies a run applies (module docstring); the defaults apply none.

    Parameters
    ----------
    lr_scales : dict from block names to floats >= 0, optional
    ogm_alpha : float
        α >= 0 (0: off).
    dropout : float or sequence of K floats
        0 <= p_k < 1 (expected dropout).
    dropout_rescale : bool
    aux_weight : float or sequence of K floats
        λ_k >= 0.
    dropout_kind : {'expected', 'sampled'}
    dropout_seed : int
        >= 0, the seed of sampled masks.
    pretrain : tuple of int
        Modalities whose branches learn alone for the first ``pretrain_epochs`` (>= 0) epochs.
    alternate : int
        T >= 0: after pre-training, the branches learn in turns of T epochs (0: together).
    """

    lr_scales: dict | None = None
    ogm_alpha: float = 0.0
    dropout: float | tuple = 0.0
    dropout_rescale: bool = True
    aux_weight: float | tuple = 0.0
    dropout_kind: str = "expected"
    dropout_seed: int = 0
    pretrain: tuple = ()
    pretrain_epochs: int = 0
    alternate: int = 0

    def __post_init__(self):
        sc = self.lr_scales
        if sc is not None:
            if not isinstance(sc, dict):
                raise TypeError(f"lr_scales is a {type(sc).__name__}, must be a dict from block names "
                                "('W1_0', 'W2_1', ...) to scales >= 0.")
            clean = {}
            for key, value in sc.items():
                if not isinstance(key, str):
                    raise TypeError(f"lr_scales has the key {key!r}, must have block names (str) as keys.")
                clean[key] = check_scalar(f"lr_scales[{key!r}]", value, lo=0.0)
            object.__setattr__(self, "lr_scales", clean)
        object.__setattr__(self, "ogm_alpha", check_scalar("ogm_alpha", self.ogm_alpha, lo=0.0))
        object.__setattr__(self, "dropout", _per_modality("dropout", self.dropout, lo=0.0, hi=1.0, hi_open=True))
        if not isinstance(self.dropout_rescale, (bool, np.bool_)):
            raise TypeError(f"dropout_rescale == {self.dropout_rescale!r}, must be True or False.")
        object.__setattr__(self, "aux_weight", _per_modality("aux_weight", self.aux_weight, lo=0.0))
        check_choice("dropout_kind", self.dropout_kind, ("expected", "sampled"))
        object.__setattr__(self, "dropout_seed", check_int("dropout_seed", self.dropout_seed, lo=0, hi=2**63 - 1))
        if not isinstance(self.pretrain, (tuple, list)):
            raise TypeError(f"pretrain == {self.pretrain!r}, must be a tuple of modality indices.")
        pre = tuple(check_int(f"pretrain[{i}]", k, lo=0) for i, k in enumerate(self.pretrain))
        if len(set(pre)) != len(pre):
            raise ValueError(f"pretrain == {pre!r}, must not repeat a modality.")
        object.__setattr__(self, "pretrain", pre)
        object.__setattr__(self, "pretrain_epochs", check_int("pretrain_epochs", self.pretrain_epochs, lo=0))
        if self.pretrain_epochs > 0 and not pre:
            raise ValueError(f"pretrain_epochs == {self.pretrain_epochs}, must be 0 when pretrain is empty "
                             "(no branch to pre-train).")
        object.__setattr__(self, "alternate", check_int("alternate", self.alternate, lo=0))

    def __hash__(self):
        return hash(tuple((f, tuple(sorted(v.items())) if isinstance(v, dict) else v)
                          for f, v in self.__dict__.items()))

    # ------------------------------------------------------------------ what it needs
    @property
    def schedule(self):
        """True when some branches are frozen at some epochs (pre-training or alternation)."""
        return (bool(self.pretrain) and self.pretrain_epochs > 0) or self.alternate > 0

    @property
    def rates(self):
        """True when the update needs per-parameter factors (lr_scales, OGM or a schedule)."""
        return bool(self.lr_scales) or self.ogm_alpha > 0.0 or self.schedule

    def phases(self, net):
        """(pre-training epochs, pre-trained branches (K,) 0/1, alternation period) of the kernels."""
        mask = np.zeros(net.n_modalities)
        mask[list(self.pretrain)] = 1.0
        return (self.pretrain_epochs if self.pretrain else 0), mask, self.alternate

    @property
    def samples_dropout(self):
        """True when the run draws dropout masks (sample path)."""
        return self.dropout_kind == "sampled" and bool(np.any(np.asarray(self.dropout) != 0.0))

    @property
    def modifies_moments(self):
        """True when the run trains on modified moments (expected dropout or auxiliary losses)."""
        expected = self.dropout_kind == "expected" and np.any(np.asarray(self.dropout) != 0.0)
        return bool(expected or np.any(np.asarray(self.aux_weight) != 0.0))

    def masks(self, net):
        """(p (K,), factor of kept inputs (K,), seed) of sampled dropout."""
        p = _expand("dropout", self.dropout, net.n_modalities) if self.samples_dropout else np.zeros(net.n_modalities)
        return p, (1.0 / (1.0 - p)) if self.dropout_rescale else np.ones_like(p), self.dropout_seed

    def check(self, net, path):
        """Raise ValueError unless this configuration applies to ``net`` on ``path``."""
        names = set(net.unpack(np.zeros(net.n_params)))
        for key in (self.lr_scales or {}):
            if key not in names:
                raise ValueError(f"lr_scales has the key {key!r}, must use only the net's block names "
                                 f"({', '.join(sorted(names))}).")
        for k in self.pretrain:
            if k >= net.n_modalities:
                raise ValueError(f"pretrain == {self.pretrain!r}, must name modalities 0..{net.n_modalities - 1} "
                                 "of the net.")
        if path == "sample" and self.schedule:
            raise ValueError(f"pretrain == {self.pretrain!r} / alternate == {self.alternate!r} on the sample path, "
                             "must be off: schedules are built on the moment path only (linear net, no bias, "
                             "loss 'mse').")
        _expand("dropout", self.dropout, net.n_modalities)
        _expand("aux_weight", self.aux_weight, net.n_modalities)
        if path in ("gram", "feature") and (self.rates or self.modifies_moments):
            raise ValueError(f"path == {path!r} with a mitigation, must be 'moment', 'sample' or 'auto': the "
                             f"{path} path has no per-block rates or modified moments.")
        if path == "sample" and self.ogm_alpha > 0.0:
            raise ValueError(f"ogm_alpha == {self.ogm_alpha!r} on the sample path, must be 0: OGM-GE is built on "
                             "the moment path only (linear net, no bias, loss 'mse').")
        if path == "moment" and self.samples_dropout:
            raise ValueError("dropout_kind == 'sampled' on the moment path, must be 'expected' there: sampled "
                             "masks need the samples (path 'sample' or 'auto').")
        if path == "sample" and self.modifies_moments:
            raise ValueError(f"dropout == {self.dropout!r} (expected) and aux_weight == {self.aux_weight!r} on the "
                             "sample path, must be 0: expected dropout and auxiliary losses are built on the "
                             "moment path only (linear net, no bias, loss 'mse'); dropout_kind='sampled' draws "
                             "masks on the sample path.")

    def scales(self, net):
        """Each parameter's learning-rate factor, ndarray of shape (n_params,)."""
        s = np.ones(net.n_params)
        for off, r, c, mod, layer, kind in net.layout:
            name = ("W" if kind == 0 else "b") + str(layer) + (f"_{mod}" if mod >= 0 else "")
            s[off:off + r * c] = (self.lr_scales or {}).get(name, 1.0)
        return s

    def moments(self, mo, net):
        """The moments the run trains on: ``mo`` with expected dropout, then auxiliary losses."""
        if not self.modifies_moments:
            return mo
        sxx, syx, syy = mo.sxx, mo.syx, mo.syy
        dims = net.in_dims
        if self.dropout_kind == "expected" and np.any(np.asarray(self.dropout) != 0.0):
            sxx, syx, syy = dropout_moments(sxx, syx, syy, dims, _expand("dropout", self.dropout, len(dims)),
                                            self.dropout_rescale)
        if np.any(np.asarray(self.aux_weight) != 0.0):
            sxx, syx, syy = auxiliary_moments(sxx, syx, syy, dims, _expand("aux_weight", self.aux_weight, len(dims)))
        return Moments(sxx, syx, syy)

    def as_dict(self):
        """Plain values (JSON-ready) of every field."""
        return {"lr_scales": dict(self.lr_scales or {}), "ogm_alpha": self.ogm_alpha,
                "dropout": list(self.dropout) if isinstance(self.dropout, tuple) else self.dropout,
                "dropout_rescale": bool(self.dropout_rescale),
                "aux_weight": list(self.aux_weight) if isinstance(self.aux_weight, tuple) else self.aux_weight,
                "dropout_kind": self.dropout_kind, "dropout_seed": self.dropout_seed, "pretrain": list(self.pretrain),
                "pretrain_epochs": self.pretrain_epochs, "alternate": self.alternate}


def _cols(dims, values):
    return np.concatenate([np.full(d, v) for d, v in zip(dims, values)])


def dropout_moments(sxx, syx, syy, dims, p, rescale=True):
    """(Σ', Σyx', <y²>) of the expected loss under independent modality dropout p (K,) (module docstring)."""
    keep = 1.0 - np.asarray(p, dtype=float)
    a = np.ones(len(dims)) if rescale else keep
    b = 1.0 / keep if rescale else keep
    ac, bc = _cols(dims, a), _cols(dims, b)
    same = _cols(dims, range(len(dims)))
    block = same[:, None] == same[None, :]
    factor = np.where(block, bc[:, None] * np.ones_like(bc)[None, :], np.outer(ac, ac))
    return sxx * factor, syx * ac[None, :], float(syy)


def auxiliary_moments(sxx, syx, syy, dims, weight):
    """(Σ', Σyx', <y²>') of the loss with unimodal auxiliary losses of weights λ (K,) (module docstring)."""
    lam = np.asarray(weight, dtype=float)
    lc = _cols(dims, lam)
    same = _cols(dims, range(len(dims)))
    block = same[:, None] == same[None, :]
    return sxx + np.where(block, lc[:, None] * sxx, 0.0), syx * (1.0 + lc)[None, :], float(syy) * (1.0 + lam.sum())


def kernel_args(mits, net):
    """The kernels' per-run arrays of R mitigations (a list, or one Mitigation or None for one run):
    a dict of ``scales``, ``ogm``, ``drop``, ``phases``, each None when no run needs it."""
    mits = [mits] if mits is None or isinstance(mits, Mitigation) else list(mits)
    out = dict(scales=None, ogm=None, drop=None, phases=None)
    K = net.n_modalities
    if any(m is not None and m.rates for m in mits):
        out["scales"] = np.stack([m.scales(net) if m else np.ones(net.n_params) for m in mits])
        out["ogm"] = np.array([m.ogm_alpha if m else 0.0 for m in mits])
        ph = [m.phases(net) if m else (0, np.zeros(K), 0) for m in mits]
        out["phases"] = tuple(np.array([p[i] for p in ph]) for i in range(3))
    if any(m is not None and m.samples_dropout for m in mits):     # (p, keep factor, seed) per run
        mk = [m.masks(net) if m else (np.zeros(K), np.ones(K), 0) for m in mits]
        out["drop"] = tuple(np.array([x[i] for x in mk]) for i in range(3))
    return out


def param_modality(net):
    """The modality whose branch each parameter lies on (layout column 3; -1 for shared blocks), (P,)."""
    pmod = np.full(net.n_params, -1, dtype=np.int64)
    for off, r, c, mod, _, _ in net.layout:
        pmod[off:off + r * c] = mod
    return pmod


def per_run(mitigation, R):
    """R Mitigations (or None) from None, one Mitigation, or a sequence of 1 or R of them."""
    if mitigation is None or isinstance(mitigation, Mitigation):
        return [mitigation] * R
    if isinstance(mitigation, (list, tuple)):
        if len(mitigation) not in (1, R):
            raise ValueError(f"mitigation has {len(mitigation)} entries, must have 1 or {R} (one per run).")
        for i, m in enumerate(mitigation):
            if m is not None and not isinstance(m, Mitigation):
                raise TypeError(f"mitigation[{i}] is a {type(m).__name__}, must be a Mitigation or None.")
        return list(mitigation) * (R if len(mitigation) == 1 else 1)
    raise TypeError(f"mitigation is a {type(mitigation).__name__}, must be a linfusion.Mitigation, a sequence of "
                    "them (one per run) or None.")


def n_runs(mitigation):
    """How many runs a mitigation argument implies (1 for one or None)."""
    return len(mitigation) if isinstance(mitigation, (list, tuple)) else 1
