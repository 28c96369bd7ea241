"""``diagnose(..., confirm=True)``: train the networks the diagnosis describes (private).

Imported only when confirming, so that ``import theory`` never loads the training engine's
kernels. Two-layer late fusion is trained from the per-entry init (squared loss on the moment
path, logistic loss on the sample path); for the squared loss the exact Gram map from the run's
own initial weights is iterated next to it (theory.md §6.10). For the squared loss, every
fusion layer of the depth-L network is also trained from the balanced start aligned with the
modalities' growth directions, which the aligned-chain map of the diagnosis follows exactly.
Times are measured with the diagnosis's thresholds (first upward crossing of ‖W_m^tot‖,
interpolated, :func:`linfusion.analysis.crossing_time`).
"""
from __future__ import annotations

import math
import time

import numpy as np

from ._diagnosis_report import Confirmation, SimulatedRun
from ._diagnosis_report import progress as along_progress

__all__ = []


def _times(epochs, progress, usable):
    """First upward crossing of 1/2 by every modality's progress (NaN: not learned, or not usable)."""
    from linfusion.analysis import crossing_time

    out = np.full(progress.shape[1], np.nan)
    if not usable:
        return out
    ep = np.asarray(epochs, dtype=float)
    for k in range(progress.shape[1]):
        if ep.size > 1 and np.all(np.isfinite(progress[:, k])):
            out[k] = crossing_time(ep, progress[:, k], 0.5)
    return out


def _test_curve(res, test):
    if test is None:
        return None
    w = res.w_tot_all[:, 0, :]
    loss = 0.5 * test["syy"] - w @ test["syx"] + 0.5 * np.einsum("nd,de,ne->n", w, test["sigma"], w)
    return loss / (0.5 * test["syy"])


def _budget(t, factor, max_epochs, fallback):
    finite = np.asarray(t, dtype=float)
    finite = finite[np.isfinite(finite)]
    top = finite.max() if finite.size else fallback
    return int(min(max_epochs, math.ceil(factor * top) + 100))


def run(data, prep, test, dims, dyn, late, depths, width, scale, lr, depth, deep_scale, prob, dirs,
        classification, max_epochs, rng):
    """Train and measure; a :class:`theory.diagnosis.Confirmation`."""
    from linfusion import FusionNet
    from linfusion.training import _spawn, train

    from .dynamics import gram_map

    started = time.perf_counter()
    seeds = _spawn(rng, 1 + depth)
    loss = "logistic" if classification else "mse"

    def progress(w_tot):
        return along_progress(np.asarray(w_tot)[:, 0, :], late.along, late.scales, dims)
    # late fusion, two layers, per-entry init
    net = FusionNet.late(dims, width=width)
    epochs = late.run_epochs          # the map's trajectory covers the same epochs
    t0 = time.perf_counter()
    res = train(net, data, lr=lr, epochs=epochs, init="entry", scale=scale, rng=seeds[0], loss=loss)
    seconds = time.perf_counter() - t0
    prog = progress(res.w_tot_all)
    t_exact = np.full(len(dims), np.nan)
    if not classification and res.usable:
        u = net.unpack(res.w0)
        w1 = [u[f"W1_{k}"] for k in range(len(dims))]
        w2 = [u[f"W2_{k}"] for k in range(len(dims))]
        traj = gram_map(dyn[0], dyn[1][None], dyn[2], dims, np.asarray(res.epochs, dtype=float), lr, w1, w2)
        t_exact = _times(traj.epochs, progress(traj.w_tot[:, None, :]), True)
    late_run = SimulatedRun(depth=2, fuse_depth=2, init="entry", status=res.status, message=res.message,
                            t=_times(res.epochs, prog, res.usable), t_exact=t_exact,
                            epochs=np.asarray(res.epochs, dtype=float), loss=res.loss / res.loss[0], progress=prog,
                            test_loss=None if classification else _test_curve(res, test), seconds=seconds)
    runs = []
    if not classification:
        align = np.concatenate(dirs)[None, :]
        for d, seed in zip(depths, seeds[1:]):
            net = FusionNet(dims, 1, width, depth, d.fuse_depth)
            epochs = _budget(d.t, 1.3, max_epochs, fallback=max_epochs)
            t0 = time.perf_counter()
            res = train(net, data, lr=lr, epochs=epochs, init="balanced", scale=deep_scale, align=align, rng=seed)
            seconds = time.perf_counter() - t0
            prog = progress(res.w_tot_all)
            runs.append(SimulatedRun(depth=depth, fuse_depth=d.fuse_depth, init="balanced", status=res.status,
                                     message=res.message, t=_times(res.epochs, prog, res.usable),
                                     t_exact=np.array(d.t, dtype=float), epochs=np.asarray(res.epochs, dtype=float),
                                     loss=res.loss / res.loss[0], progress=prog, test_loss=_test_curve(res, test),
                                     seconds=seconds))
    return Confirmation(late=late_run, depths=tuple(runs), seconds=time.perf_counter() - started)
