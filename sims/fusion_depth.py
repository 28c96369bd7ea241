"""Figure 9: loss and weights of deep fusion networks, one per fusion layer L_f, on the same data.

theory.md §6.6-6.7, §6.10, §9.4, §10. Depth L = 4, width 100, linear; toy data r = 2, ρ = 0,
n = 8192; init 0.1 with the paper's deep 'layer' scheme (per-layer Frobenius norm u0 before
fusion, √2·u0 from fusion on); lr 0.04; trained for L_f = 4, 3, 2, 1 on one data draw, each
until its loss is below 1e-4 (at most 10 000 epochs). Panels: the normalised loss L/L(0)
with the plateau L(M_A)/L(M_0) (0.2 in population), W_A^tot and W_B^tot over epochs; one
colour per L_f, simulation as a wide band.

The theory curve (dashed, in the L_f's colour) is the exact gradient-descent map of the
aligned scalar chain (:func:`theory.dynamics.chain_map`, theory.md §6.10) at the run's
learning rate, started from *the run's own* initial layer scales: the top singular value of
every layer block (:func:`sims._deep.chain_scales`). Nothing is fitted. With
``--init-scheme balanced`` these scales are exactly u0 and √2·u0 and the chain *is* the
network: the curve lies on the simulation. With the random 'layer' init the network must
first align its layers, which the chain does not model (theory.md §9.4): the chain's times
run early (≈ 0.65× the run's at h = 100) while its ratio t_B/t_A stays within a few %. For
that init a second prediction is drawn dotted: the same chain with every scalar × c, c
fitted so that its t_A equals the run's; its t_B is then a prediction. The closed form of
theory.md §6.6 at u0 = init (the paper's curves) assumes an aligned chain started at u0 and
is far earlier than any 'layer' run (312 / 1250 epochs for L_f = 4 against ≈ 1600 / 6700):
the summary prints only its ratio, the record keeps its times.

Expected: L_f = 1 drops once; later fusion has a longer plateau at 0.2·L(0); convergence
order L_f = 1 < 2 < 3 < 4. The paper's window was 7000 epochs with early stopping; late
fusion's second drop ends at 5700-6700 epochs for the random init here, so the default
window is 10 000 epochs.

A run that diverges or stalls is not drawn, and is named in the legend and the summary.
Exit status: 0 with a figure; 1 when no run is usable (no figure; arrays and record are
written); 2 for a usage error.

Original command: ``python main.py --mode deep_fusion --init 0.1 --plot_weight --sweep
depth_single --epoch 7000``; here ``python -m sims.fusion_depth``. From Python:
``fusion_depth.run(fusion_depth.Config(init_scheme="balanced"))``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from linfusion import FusionNet, data, train

from . import _deep as D
from . import _style as S
from ._cli import entry_point
from ._config import integer, option
from ._options import Seeded

NAME = "fusion_depth"
KIND = "run"        # four networks trained in turn in this process: no worker processes, no cache
main = entry_point(NAME)

#: what each prediction is, for the summary and the record
PREDICTIONS = {
    "chain": "exact chain map (theory.md §6.10) at the run's lr from the run's own initial layer scales "
             "(top singular value of each layer block); nothing fitted: the theory curve",
    "fit": "the same chain with every scalar x c, c fitted so that its t_A equals the run's; t_B predicted "
           "('layer' init only; c = 1 for 'balanced')",
    "closed": "closed form of theory.md §6.6 at u0 = init (an aligned chain started at u0; the paper's curves)",
}


@dataclass(frozen=True)
class Config(Seeded, D.Samples, D.Rho, D.Ratio, D.Scale, D.DeepNet):
    """Figure 9: one deep linear fusion network per fusion layer on one toy data draw (theory.md §6.6)."""

    epochs: int = option(10000, "maximum number of epochs", check=integer(lo=1), group="network and training")


# ------------------------------------------------------------------ simulation
def run(cfg, execution=None):
    """Train one network per fusion layer on one data draw.

    ``SeedSequence(seed, spawn_key=(0,))`` draws the data and ``(1, L_f)`` the initial
    weights of L_f, so that a subset of ``fuse_depths`` gives the same runs.

    Returns
    -------
    dict of ndarray
        ``fuse_depths`` (n_f,); per L_f (suffix ``_<L_f>``): ``epochs``, ``loss``, ``w_a``,
        ``w_b`` (n_rec,), ``init_sv_pre`` (2, L_f), ``init_sv_shared`` (L − L_f,) (NaN for a
        run that is not usable); over L_f: ``t_a_epochs``, ``t_b_epochs``, ``time_ratio``,
        ``thr_a``, ``thr_b``, ``final_epoch``, ``status``, ``note`` (why the times are NaN,
        else empty); the data moments ``sxx`` (2, 2), ``syx`` (2,), ``syy``.
    """
    ds = data.toy(cfg.rho, cfg.ratio, cfg.n, cfg.noise, rng=np.random.SeedSequence(cfg.seed, spawn_key=(0,)))
    mo = ds.moments()
    align = np.linalg.lstsq(mo.sxx, mo.syx.T, rcond=None)[0].T
    wa_uni, wb_star = D.toy_targets(cfg.rho, cfg.ratio)
    result = dict(fuse_depths=np.array(cfg.lf_list), sxx=mo.sxx, syx=mo.syx[0], syy=np.array(float(mo.syy)))
    cols = {k: [] for k in ("t_a_epochs", "t_b_epochs", "time_ratio", "thr_a", "thr_b", "final_epoch", "status",
                            "note")}
    for lf in cfg.lf_list:
        net = FusionNet(ds.in_dims, 1, cfg.width, cfg.depth, lf)
        w0 = net.init(cfg.init_scheme, D.scale_of(cfg, cfg.init_scheme),
                      np.random.SeedSequence(cfg.seed, spawn_key=(1, lf)), align=align)
        res = train(net, ds, lr=cfg.lr, epochs=cfg.epochs, w0=w0, tol=cfg.tol, record_every=cfg.record_every)
        m = D.measure_run(res, wa_uni=wa_uni, wb_star=wb_star, convention=cfg.convention)
        if m["note"]:
            pre, post = np.full((2, lf), np.nan), np.full(cfg.depth - lf, np.nan)
        else:
            pre, post = D.chain_scales(net, w0)
        result.update({f"epochs_{lf}": res.epochs, f"loss_{lf}": res.loss, f"w_a_{lf}": res.w_tot[0][:, 0, 0],
                       f"w_b_{lf}": res.w_tot[1][:, 0, 0], f"init_sv_pre_{lf}": pre, f"init_sv_shared_{lf}": post})
        m.update(final_epoch=res.final_epoch, status=res.status)
        for k, v in cols.items():
            v.append(m[k])
    result.update({k: np.array(v) for k, v in cols.items()})
    return result


# ------------------------------------------------------------------ theory
def _fit_factor(result, i, pre, post, cfg):
    """Factor c on every chain scalar that makes the chain's t_A equal the run's.

    t_A of the chain falls monotonically with c; it is evaluated on a geometric grid of c in
    one batch and log t_A is interpolated linearly in log c (grid step 2 %).
    """
    cs = np.geomspace(0.1, 3.0, 172)
    n = len(cs)
    t_a = result["t_a_epochs"][i]
    t = D.chain_times(np.broadcast_to(result["sxx"], (n, 2, 2)), np.broadcast_to(result["syx"], (n, 2)),
                      cs[:, None, None] * pre, cs[:, None] * post, cfg.lr, np.full(n, result["thr_a"][i]),
                      np.full(n, result["thr_b"][i]), 4 * t_a + 10, stop=0, convention=cfg.convention)[:, 0]
    ok = np.isfinite(t) & (t > 0)
    if not (ok.any() and t[ok].min() <= t_a <= t[ok].max()):
        return np.nan
    # t falls with c: interpolate log c against increasing log t
    return float(np.exp(np.interp(np.log(t_a), np.log(t[ok][::-1]), np.log(cs[ok][::-1]))))


def _chain_curve(result, cfg, lf, pre, post, horizon):
    """The chain map's trajectory (epochs, loss, W_A, W_B) over 0..horizon, or None if it diverges."""
    from theory.dynamics import chain_map

    try:
        tr = chain_map(result["sxx"], result["syx"], float(result["syy"]), cfg.depth, lf, np.arange(horizon + 1),
                       cfg.lr, layer_scales=(pre, post))
    except RuntimeError:
        return None
    return tr.epochs, tr.loss, tr.w_tot[:, 0], tr.w_tot[:, 1]


def predict(cfg, result):
    """Plateau level, the chain maps of each usable run, and the closed form at u0 = init.

    Returns
    -------
    dict
        ``plateau`` = L(M_A)/L(M_0) on the run's data; over L_f (n_f,): ``chain_t_a_epochs``,
        ``chain_t_b_epochs``, ``chain_ratio`` (the chain map from the run's own initial
        layer scales: *the* theory), ``fit_factor`` (c; 1 for the balanced init),
        ``fit_t_a_epochs``, ``fit_t_b_epochs``, ``fit_ratio`` (the chain × c), and
        ``closed_t_a_epochs``, ``closed_t_b_epochs``, ``closed_ratio``
        (:func:`theory.deep.deep_times` at u0 = init); per usable L_f the curves
        ``chain_epochs_<L_f>``, ``chain_loss_<L_f>``, ``chain_w_a_<L_f>``, ``chain_w_b_<L_f>``
        and (layer init) ``fit_epochs_<L_f>``, ... All NaN for a run that is not usable.
        See :data:`PREDICTIONS`.
    """
    from theory.deep import deep_times
    from theory.fixed_points import late_fixed_points

    m0, m_a = late_fixed_points(result["sxx"], result["syx"], float(result["syy"]), (1, 1))[:2]
    u0 = D.scale_of(cfg, cfg.init_scheme)
    closed = [deep_times(cfg.depth, lf, cfg.ratio, cfg.rho, u0, lr=cfg.lr) for lf in cfg.lf_list]
    out = dict(plateau=np.array(m_a.loss / m0.loss),
               closed_t_a_epochs=np.array([float(c.t_a) for c in closed]),
               closed_t_b_epochs=np.array([float(c.t_b) for c in closed]),
               closed_ratio=np.array([float(c.ratio) for c in closed]))
    signs = D.chain_signs(result["sxx"], result["syx"])
    cols = {k: [] for k in ("chain_t_a_epochs", "chain_t_b_epochs", "fit_factor", "fit_t_a_epochs",
                            "fit_t_b_epochs")}
    scales = {}
    for i, lf in enumerate(cfg.lf_list):
        pre = result[f"init_sv_pre_{lf}"].copy()
        pre[:, 0] *= signs
        post = result[f"init_sv_shared_{lf}"]
        if result["note"][i] or not np.all(np.isfinite(pre)):
            for v in cols.values():
                v.append(np.nan)
            continue
        c = 1.0 if cfg.init_scheme == "balanced" else _fit_factor(result, i, pre, post, cfg)
        thr = (result["thr_a"][i:i + 1], result["thr_b"][i:i + 1])
        t = D.chain_times(result["sxx"][None], result["syx"][None], pre[None], post[None], cfg.lr, *thr,
                          4 * cfg.epochs, convention=cfg.convention)[0]
        t_fit = (D.chain_times(result["sxx"][None], result["syx"][None], c * pre[None], c * post[None], cfg.lr,
                               *thr, 4 * cfg.epochs, convention=cfg.convention)[0]
                 if np.isfinite(c) else (np.nan, np.nan))
        for k, v in zip(cols, (t[0], t[1], c, t_fit[0], t_fit[1])):
            cols[k].append(v)
        scales[lf] = (pre, post, c)
    out.update({k: np.array(v, dtype=float) for k, v in cols.items()})
    out["chain_ratio"] = out["chain_t_b_epochs"] / out["chain_t_a_epochs"]
    out["fit_ratio"] = out["fit_t_b_epochs"] / out["fit_t_a_epochs"]
    # one time axis for every curve: the simulated window, or longer if a chain learns B later
    ends = [result["final_epoch"][i] for i, lf in enumerate(cfg.lf_list) if lf in scales]
    horizon = int(np.nanmax([0, *ends, *(1.05 * out["chain_t_b_epochs"]), *(1.05 * out["fit_t_b_epochs"])]))
    for lf, (pre, post, c) in scales.items():
        kinds = [("chain", 1.0)] + ([("fit", c)] if cfg.init_scheme != "balanced" and np.isfinite(c) else [])
        for kind, factor in kinds:
            curve = _chain_curve(result, cfg, lf, factor * pre, factor * post, horizon)
            if curve is not None:
                out.update({f"{kind}_{name}_{lf}": v for name, v in zip(("epochs", "loss", "w_a", "w_b"), curve)})
    return out


# ------------------------------------------------------------------ figure
def _thin(x, y, most=1500):
    """Every k-th point of a curve, at most ``most`` of them plus the last (plots of 10⁴ epochs draw fast)."""
    step = max(1, -(-len(x) // most))
    idx = np.r_[np.arange(0, len(x) - 1, step), len(x) - 1] if len(x) else np.arange(0)
    return np.asarray(x)[idx], np.asarray(y)[idx]


def _style_handles(cfg, result):
    from matplotlib.lines import Line2D

    handles = []
    for lf, st in zip(cfg.lf_list, result["status"]):
        bad = "" if st in D.USABLE else f": {st}, not drawn"
        color = S.fusion_color(lf, cfg.depth)
        handles.append(Line2D([], [], label=D.fusion_label(lf, cfg.depth) + bad, **S.sim_kw(color)))
    grey = "0.3"
    handles += [Line2D([], [], label="simulation: wide band", color="0.6", linewidth=2.8, alpha=0.55),
                Line2D([], [], label="theory: chain map at lr from\nthe run's initial layer scales:\ndashed",
                       **S.theory_kw(grey))]
    if cfg.init_scheme != "balanced":
        handles.append(Line2D([], [], color=grey, linestyle=":", linewidth=1.0,
                              label="chain map × c, c fitted to\nthe run's $t_A$: dotted"))
    return handles


def plot(cfg, result, prediction):
    """Loss/L(0) with the plateau, W_A^tot and W_B^tot per L_f, with the chain maps; None if no run is usable."""
    usable = [i for i, st in enumerate(result["status"]) if st in D.USABLE]
    if not usable:
        return None
    fig, axes = S.figure(1, 3, width=2.9, height=2.7)
    ax_l, ax_a, ax_b = axes[0]
    for i in usable:
        lf = cfg.lf_list[i]
        color = S.fusion_color(lf, cfg.depth)
        ep, loss = result[f"epochs_{lf}"], result[f"loss_{lf}"]
        for ax, y in ((ax_l, loss / loss[0]), (ax_a, result[f"w_a_{lf}"]), (ax_b, result[f"w_b_{lf}"])):
            ax.plot(*_thin(ep, y), **S.sim_kw(color))
        for kind, kw in (("chain", S.theory_kw(color)), ("fit", dict(color=color, linestyle=":", linewidth=1.0))):
            if f"{kind}_loss_{lf}" not in prediction:
                continue
            ce, closs = prediction[f"{kind}_epochs_{lf}"], prediction[f"{kind}_loss_{lf}"]
            ax_l.plot(*_thin(ce, closs / closs[0]), **kw)
            ax_a.plot(*_thin(ce, prediction[f"{kind}_w_a_{lf}"]), **kw)
            ax_b.plot(*_thin(ce, prediction[f"{kind}_w_b_{lf}"]), **kw)
    ax_l.axhline(prediction["plateau"], color=S.COLORS["level"], linewidth=0.8, linestyle=(0, (1, 2)))
    ax_l.annotate(r"$L(M_A)/L(M_0)$", (1.0, float(prediction["plateau"])), xycoords=("axes fraction", "data"),
                  xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom", fontsize="small", color="0.3")
    right = max([float(result[f"epochs_{cfg.lf_list[i]}"][-1]) for i in usable]
                + [float(v[-1]) for k, v in prediction.items() if k.startswith(("chain_epochs_", "fit_epochs_"))])
    for ax, label in ((ax_l, r"loss / $L(0)$"), (ax_a, S.W_A), (ax_b, S.W_B)):
        ax.set_xlim(0, right)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    ax_l.set_ylim(-0.03, 1.08)
    fig.legend(handles=_style_handles(cfg, result), loc="outside right center")
    S.title(fig, f"Deep fusion, $L = {cfg.depth}$: one network per fusion layer $L_f$")
    return fig


# ------------------------------------------------------------------ summary and files
def _settings(cfg):
    return (f"depth L = {cfg.depth}, width {cfg.width}, init '{cfg.init_scheme}' u0 = "
            f"{D.scale_of(cfg, cfg.init_scheme):g}, toy r = {cfg.ratio:g}, ρ = {cfg.rho:g}, n = {cfg.n}, "
            f"noise {cfg.noise:g}, lr {cfg.lr:g}, up to {cfg.epochs} epochs (tol {cfg.tol:g})")


def _n(x, fmt="{:.0f}"):
    return "-" if not np.isfinite(x) else fmt.format(x)


def summary(cfg, result, prediction):
    """Measured against predicted times per L_f, with what each prediction is."""
    p = prediction
    lines = [f"Figure 9 ({NAME}): {_settings(cfg)}",
             f"  plateau L(M_A)/L(M_0) = {float(p['plateau']):.3f} (this data draw); "
             f"{D.convention_text(cfg.convention)}",
             f"  {'':4}{'simulation':^24}|{'chain map (theory)':^24}|{'chain x c (c fitted)':^24}|{'closed':^8}|",
             f"  {'L_f':>3} {'t_A':>7} {'t_B':>7} {'t_B/t_A':>8} |{'t_A':>7} {'t_B':>7} {'t_B/t_A':>8} |"
             f"{'c':>6} {'t_B':>7} {'t_B/t_A':>8} |{'t_B/t_A':>8}| {'end':>6} status"]
    for i, lf in enumerate(cfg.lf_list):
        lines.append(f"  {lf:>3} {_n(result['t_a_epochs'][i]):>7} {_n(result['t_b_epochs'][i]):>7} "
                     f"{_n(result['time_ratio'][i], '{:.3f}'):>8} |{_n(p['chain_t_a_epochs'][i]):>7} "
                     f"{_n(p['chain_t_b_epochs'][i]):>7} {_n(p['chain_ratio'][i], '{:.3f}'):>8} |"
                     f"{_n(p['fit_factor'][i], '{:.2f}'):>6} {_n(p['fit_t_b_epochs'][i]):>7} "
                     f"{_n(p['fit_ratio'][i], '{:.3f}'):>8} |{_n(p['closed_ratio'][i], '{:.3f}'):>8}| "
                     f"{int(result['final_epoch'][i]):>6} {result['status'][i]}")
    lines += [f"  {name}: {text}" for name, text in (("chain map", PREDICTIONS["chain"]),
                                                      ("chain x c", PREDICTIONS["fit"]),
                                                      ("closed", PREDICTIONS["closed"] + "; its times in epochs "
                                                       + ", ".join(f"L_f = {lf}: {_n(a)} / {_n(b)}" for lf, a, b in
                                                                   zip(cfg.lf_list, p["closed_t_a_epochs"],
                                                                       p["closed_t_b_epochs"]))))]
    order = [lf for _, lf, st in sorted(zip(result["final_epoch"], cfg.lf_list, result["status"])) if st == "converged"]
    lines.append("  convergence order of the converged runs (first to last): L_f = "
                 + (" < ".join(map(str, order)) or "-"))
    for i, lf in enumerate(cfg.lf_list):
        if result["note"][i]:
            lines.append(f"  L_f = {lf} not usable, not drawn: {result['note'][i]}")
    late = [lf for lf, st in zip(cfg.lf_list, result["status"]) if st == "completed"]
    if late:
        lines.append(f"  L_f = {late} did not reach --tol within {cfg.epochs} epochs; raise --epochs to see the "
                     "second drop.")
    if not any(st in D.USABLE for st in result["status"]):
        lines.append("no run is usable: no figure (exit status 1)")
    return "\n".join(lines)


def outputs(cfg, result, prediction):
    """The arrays (simulation, ``pred_*``) and the record (settings, what each prediction is, times)."""
    arrays = dict(result)
    arrays.update({f"pred_{k}": v for k, v in prediction.items()})
    per_lf = {str(lf): {"status": str(result["status"][i]), "note": str(result["note"][i]),
                        **{k: float(result[k][i]) for k in ("t_a_epochs", "t_b_epochs", "time_ratio")},
                        **{k: float(prediction[k][i]) for k in ("chain_t_a_epochs", "chain_t_b_epochs", "chain_ratio",
                                                                "fit_factor", "fit_t_b_epochs", "fit_ratio",
                                                                "closed_t_a_epochs", "closed_t_b_epochs",
                                                                "closed_ratio")}}
              for i, lf in enumerate(cfg.lf_list)}
    record = {"settings": _settings(cfg), "convention": D.convention_text(cfg.convention),
              "predictions": PREDICTIONS, "plateau_loss_rel": float(prediction["plateau"]), "fuse_depths": per_lf}
    return {"arrays": arrays, "record": record}



if __name__ == "__main__":
    sys.exit(main())
