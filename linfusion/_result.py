"""The result of a training run: :class:`TrainResult` (re-exported by :mod:`linfusion.training`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .architecture import FusionNet
from .data import Moments

__all__ = ["TrainResult", "STATUSES", "USABLE"]

#: every value of :attr:`TrainResult.status` (rules in :mod:`linfusion.training`)
STATUSES = ("completed", "converged", "diverged", "stalled")
#: the statuses whose trajectories can be measured
USABLE = ("completed", "converged")


@dataclass(frozen=True, eq=False, repr=False)
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
        Final weights (None on the Gram path, which keeps only their Gram matrices).
    w0 : ndarray of shape (n_params,)
        Initial weights.
    status : {'completed', 'converged', 'diverged', 'stalled'}
        The run's outcome; the rules are in :mod:`linfusion.training`.
    message : str
        Human-readable summary; for a diverged run it names the epoch and a learning rate
        that is stable from ``w0``; for a stalled run, what underflowed.
    lr : float
    path : str
        'moment', 'gram', 'feature' or 'sample'.
    net : FusionNet
    moments : Moments or None
        The empirical moments the run trained on, when the run computed them (moment path);
        :func:`linfusion.analysis.measure` derives its thresholds from them. With expected
        dropout or auxiliary losses, the modified moments (:mod:`linfusion.mitigation`).
    mitigation : Mitigation or None
        The remedies the run applied (:mod:`linfusion.mitigation`).
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
    net: FusionNet
    moments: Moments | None = None
    mitigation: object = None

    @property
    def usable(self):
        """True when the run completed or converged (its trajectory can be measured)."""
        return self.status in USABLE

    @property
    def diverged(self):
        """True when the loss became non-finite or blew up (status 'diverged')."""
        return self.status == "diverged"

    @property
    def final_epoch(self):
        return int(self.epochs[-1])

    @property
    def w_tot_all(self):
        """End-to-end weights of all modalities side by side, shape (n_rec, out_dim, D)."""
        return np.concatenate(self.w_tot, axis=2)

    def __repr__(self):
        n = len(self.epochs)
        eg = f", final E_g {self.eg[-1]:.4g}" if self.eg is not None and n else ""
        shapes = ", ".join(str(tuple(wt.shape)) for wt in self.w_tot)
        return (f"TrainResult(status={self.status!r}, path={self.path!r}, lr={self.lr:g},\n"
                f"            epochs {int(self.epochs[0]) if n else 0}..{self.final_epoch if n else 0} "
                f"({n} records), final loss {self.loss[-1]:.4g}{eg},\n"
                f"            net={self.net!r},\n"
                f"            w {tuple(self.w.shape)}, w_tot [{shapes}])")

    def to_pandas(self):
        """The trajectory as a pandas DataFrame, one row per record (pandas is optional).

        Returns
        -------
        pandas.DataFrame
            Index ``epoch``; columns ``loss``, ``eg`` (when recorded) and ``w_tot_{k}_{j}``:
            entry j (row-major over (out_dim, d_k)) of modality k's end-to-end weights, the
            names sweep tables use. ``attrs`` holds status, message, lr and path.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("TrainResult.to_pandas needs pandas, an optional dependency: "
                              "pip install pandas (or the extra: pip install 'linfusion[pandas]').") from None
        cols = {"loss": self.loss}
        if self.eg is not None:
            cols["eg"] = self.eg
        for k, wt in enumerate(self.w_tot):
            flat = np.asarray(wt).reshape(len(wt), -1)
            for j in range(flat.shape[1]):
                cols[f"w_tot_{k}_{j}"] = flat[:, j]
        df = pd.DataFrame(cols, index=pd.Index(np.asarray(self.epochs), name="epoch"))
        df.attrs.update(status=self.status, message=self.message, lr=self.lr, path=self.path)
        return df

    def to_xarray(self):
        """The trajectory as an xarray Dataset on the ``epoch`` coordinate (xarray is optional).

        Returns
        -------
        xarray.Dataset
            ``loss`` (epoch), ``eg`` (epoch, when recorded) and ``w_tot_{k}`` (epoch, out,
            in_{k}) for each modality k; attributes status, message, lr, path and net.
        """
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("TrainResult.to_xarray needs xarray, an optional dependency: "
                              "pip install xarray (or the extra: pip install 'linfusion[xarray]').") from None
        data = {"loss": ("epoch", self.loss)}
        if self.eg is not None:
            data["eg"] = ("epoch", self.eg)
        for k, wt in enumerate(self.w_tot):
            data[f"w_tot_{k}"] = (("epoch", "out", f"in_{k}"), np.asarray(wt))
        return xr.Dataset(data, coords={"epoch": np.asarray(self.epochs)},
                          attrs=dict(status=self.status, message=self.message, lr=self.lr, path=self.path,
                                     net=repr(self.net)))
