"""What the two-layer sweeps share: measurement conventions, the keep rule, sweep execution.

Used by :mod:`sims.toy_sweep` (figure 6) and :mod:`sims.rand_sweep` (figure 7).

Two measurement conventions (``convention``, theory.md §7):

- ``'paper'`` (default of both figures): exactly the original code's read-out. The original
  records, at loop index i, the loss of the state after i updates and the weights after
  i + 1 updates; its ``time_half`` returns the index i of the recorded weight nearest the
  threshold (A: half of A's unimodal plateau; B: half of B's trajectory maximum). With our
  records (record k = state after k updates, k = 0, 1, ...) that is (argmin over k >= 1 of
  |W_k − thr|) − 1. Its misattribution reads W_A at index ⌊(t_A + t_B)/2⌋, our record
  ⌊(t_A + t_B)/2⌋ + 1, against the last record. Its sweeps stop at the first state whose
  loss is < 1e-4 (``tol``) and keep a run only if the last loss it recorded, the loss of
  the state *before* the final one, is < 1e-3 (``drop_loss``); means are over kept runs.
- ``'interp'``: first upward crossings, linearly interpolated, of half of A's plateau and
  half of B's weight at M_* (:func:`linfusion.analysis.measure`); the keep rule reads the
  final loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion import analysis
from linfusion.architecture import default_scale

from ._config import Config, choice, option, real

__all__ = ["Measured", "readout", "keep_mask", "dropped_note", "convention_note",
           "sweep_kwargs", "unusable", "as_int", "USABLE"]

#: statuses whose runs are measured (CONTRACT item 4)
USABLE = ("completed", "converged")
_KEYS = ("t_a", "t_b", "time_ratio", "misattribution", "keep_loss")


@dataclass(frozen=True)
class Measured(Config):
    """The measurement convention, the stop and the keep rule of a sweep (theory.md §7).

    Put before :class:`sims._options.Descent` in the bases: its ``tol`` (the original's stop
    at 1e-4) replaces Descent's default.
    """

    tol: float = option(1e-4, "stop at the first state whose loss is below tol (the original's 1e-4)",
                        check=real(0.0), group="network and training")
    convention: str = option("paper", "measurement convention: paper (this figure's default, the original's read-out: "
                             "time_half indices, misattribution at ⌊(t_A + t_B)/2⌋, the keep rule on the loss before "
                             "the final state) or interp (the toolkit's default elsewhere: interpolated first "
                             "crossings of half the known end points, the keep rule on the final loss)",
                             choices=("paper", "interp"), check=choice("paper", "interp"), group="measurement")
    drop_loss: float = option(1e-3, "keep a run only if the loss the keep rule reads is below this (the "
                              "original's 1e-3); the others stay in the table, counted",
                              check=real(0.0, lo_open=True), group="measurement")

    @property
    def scale_value(self):
        """The initialisation scale in use (the library's default for the scheme when unset)."""
        return self.scale if self.scale is not None else default_scale(self.init)

    def validate(self):
        every = getattr(self, "record_every", 1)
        if self.convention == "paper" and every != 1:
            raise ValueError(f"record_every == {every} with convention == 'paper': the paper convention reads "
                             "every epoch (record_every 1); use convention 'interp' to record less often.")


# ---------------------------------------------------------------------- the original's read-out
def unusable():
    """The measurements of a run that is not usable (its row keeps the status): NaN everywhere."""
    return {k: np.nan for k in _KEYS}


def readout(result, convention, *, wa_uni, wb_star, relu=False, a_from_max=False):
    """t_A, t_B, t_B/t_A, misattribution and the keep-rule loss of one run.

    Parameters
    ----------
    result : TrainResult
    convention : {'paper', 'interp'}
    wa_uni : float
        A's unimodal plateau value (signal of Σyx_A Σ_A⁻¹); A's threshold is half of it.
    wb_star : float
        B's value at M_* ('interp': B's threshold is half of it; 'paper' uses B's maximum).
    relu : bool
        Double both thresholds: a ReLU net's unpacked W_tot converges to 2× (theory.md §6.9).
    a_from_max : bool
        A's threshold is half of its trajectory maximum (the original at r = 1).

    Returns
    -------
    dict
        ``t_a``, ``t_b`` (epochs), ``time_ratio``, ``misattribution``, ``keep_loss``; NaN for
        a run that is not usable.
    """
    if result.status not in USABLE or not np.all(np.isfinite(result.loss)):
        return unusable()
    paper = convention == "paper"
    if paper and (result.epochs.size < 2 or np.any(result.epochs != np.arange(result.epochs.size))):
        raise ValueError("the paper convention reads every epoch: record_every must be 1.")
    # the original's time_half indices and misattribution index (theory.md §7.2) for 'paper'
    m = analysis.measure(result, wa_uni="max" if a_from_max else wa_uni, wb_star="max" if paper else wb_star,
                         convention=convention, relu=relu)
    # the original keeps a repeat on the last loss it records: the state before the final one
    keep = result.loss[-2] if paper else result.loss[-1]
    return dict(t_a=float(m.t_a), t_b=float(m.t_b), time_ratio=float(m.ratio),
                misattribution=float(m.misattribution), keep_loss=float(keep))


# ---------------------------------------------------------------------- keeping runs
def keep_mask(status, keep_loss, values, drop_loss):
    """The runs a sweep keeps, and why the others were dropped.

    Parameters
    ----------
    status : sequence of str
        Training status of each run.
    keep_loss, values : ndarray of shape (n_runs,)
        The loss the keep rule reads and the measured quantity (NaN: not measured).
    drop_loss : float
        Keep a run only if ``keep_loss < drop_loss``.

    Returns
    -------
    keep : ndarray of bool of shape (n_runs,)
    counts : dict
        ``unusable`` (status diverged, stalled or failed), ``unconverged`` (loss >=
        drop_loss) and ``unmeasured`` (a time could not be measured), each run counted under
        its first reason only.
    """
    bad = np.array([s not in USABLE for s in status], dtype=bool)
    unconverged = ~bad & ~(np.asarray(keep_loss, dtype=float) < drop_loss)
    unmeasured = ~bad & ~unconverged & ~np.isfinite(np.asarray(values, dtype=float))
    counts = dict(unusable=int(bad.sum()), unconverged=int(unconverged.sum()), unmeasured=int(unmeasured.sum()))
    return ~(bad | unconverged | unmeasured), counts


def dropped_note(counts, drop_loss, statuses=None):
    """'k dropped (why)', e.g. '3 dropped (loss ≥ 0.001: 2, diverged: 1)'."""
    bad = "not usable"
    if statuses:
        bad = ", ".join(sorted(set(statuses)))
    why = [(f"loss ≥ {drop_loss:g}", counts["unconverged"]), (bad, counts["unusable"]),
           ("not measured", counts["unmeasured"])]
    total = sum(n for _, n in why)
    if not total:
        return "0 dropped"
    return f"{total} dropped (" + ", ".join(f"{what}: {n}" for what, n in why if n) + ")"


def convention_note(convention):
    """The measurement convention in one line (summary and record)."""
    if convention == "paper":
        return ("paper convention (the original's): t = index of the recorded weight nearest half of A's plateau "
                "/ half of B's maximum (record k − 1), misattribution at ⌊(t_A + t_B)/2⌋, keep a run if the loss "
                "before its final state is below the drop threshold")
    return ("interp convention: interpolated first crossing of half of A's plateau / half of B's M_* value, "
            "misattribution on the plateau, keep a run if its final loss is below the drop threshold")


def as_int(value):
    """An epoch count for a table cell: int, or NaN when missing."""
    return int(value) if np.isfinite(value) else np.nan


# ---------------------------------------------------------------------- execution
def sweep_kwargs(execution, seed):
    """``run_sweep``'s execution keywords from a :class:`sims._cli.Execution` (None: this process, no cache)."""
    if execution is None:
        return dict(seed=seed, workers=1, cache_dir=None, force=False, scheduler=None, progress=False,
                    seed_by="config")
    return dict(seed=seed, workers=execution.workers, cache_dir=execution.cache, force=execution.force,
                scheduler=execution.scheduler, progress=execution.progress, seed_by="config")
