"""Figure 9: loss curves of deep fusion networks, one per fusion layer L_f, on the same data.

THEORY.md §6.6-6.7, §9.4, §10 item 9. Depth L = 4, width 100, linear; toy data r = 2,
ρ = 0, n = 8192; init 0.1 with the paper's deep 'layer' scheme (per-layer Frobenius norm
u0 before fusion, √2·u0 from fusion on); lr 0.04; trained for L_f = 4, 3, 2, 1 on one data
draw. Plotted: the normalised loss L/L(0) over epochs (colour per L_f), the predicted plateau
L(M_A)/L(M_0) (0.2), and the exact chain map of each run (black dashes) with its t_A, t_B
(black triangles); the second panel shows W_A^tot and W_B^tot.

The chain map (:func:`theory.dynamics.chain_map`) starts from the run's own initial layer
scales, the top singular value of every layer block (:func:`sims._deep.chain_scales`). With
``--init-scheme balanced`` these are exactly u0 and √2·u0 and the chain *is* the network: a
prediction without fitting. With the random 'layer' init the network first aligns its
layers, which the chain does not model (§9.4): its absolute times run ≈ 1.6× the chain's.
There the chain's scalars are multiplied by one factor c, chosen so that the chain's t_A
equals the run's; t_B and the second drop are then predictions.

Expected: L_f = 1 drops once; later fusion has a longer plateau at 0.2·L(0); convergence
order L_f = 1 < 2 < 3 < 4. The paper's window was 7000 epochs with early stopping; late
fusion's second drop ends at 5700-6400 epochs for the random init here, so the default
window is 10 000 epochs (with early stopping at loss < 1e-4).

Original command: ``python main.py --mode deep_fusion --init 0.1 --plot_weight --sweep
depth_single --epoch 7000``; here ``python -m sims.fusion_depth``.
"""
from __future__ import annotations

import numpy as np

from linfusion import FusionNet, analysis, data, train

from . import _common as C
from . import _deep

NAME = "fusion_depth"


def _parser():
    p = C.base_parser(NAME, __doc__.splitlines()[0])
    C.add_toy_args(p)
    _deep.add_net_args(p, epochs=10000, tol=1e-4, schemes=("layer", "balanced"))
    return p


def _check(args):
    _deep.check_net_args(args)
    if args.width is None:
        args.width = 50 if args.quick else 100


def run(args):
    """Train one network per fusion layer on one data draw.

    Returns
    -------
    dict
        ``fuse_depths`` (n_f,); per L_f (suffix ``_<L_f>``): ``epochs``, ``loss``, ``w_a``,
        ``w_b`` (n_rec,), ``seed_pre`` (2, L_f), ``seed_post`` (L − L_f,); arrays over L_f:
        ``t_a``, ``t_b``, ``time_ratio``, ``thr_a``, ``thr_b``, ``final_epoch``,
        ``status``; the data moments ``sxx`` (2, 2), ``syx`` (2,), ``syy``.
    """
    ds = data.toy(args.rho, args.ratio, args.n, args.noise,
                  rng=np.random.SeedSequence(args.seed, spawn_key=(0,)))
    mo = ds.moments()
    align = np.linalg.lstsq(mo.sxx, mo.syx.T, rcond=None)[0].T
    wa_uni, wb_star = _deep.toy_targets(args.rho, args.ratio)
    sim = dict(fuse_depths=np.array(args.fuse_depths), sxx=mo.sxx, syx=mo.syx[0], syy=float(mo.syy))
    cols = {k: [] for k in ("t_a", "t_b", "time_ratio", "thr_a", "thr_b", "final_epoch", "status")}
    for lf in args.fuse_depths:
        net = FusionNet(ds.in_dims, 1, args.width, args.depth, lf)
        # the init of each L_f has its own stream, so that --fuse-depths subsets give the same runs
        w0 = net.init(args.init_scheme, args.scale, np.random.SeedSequence(args.seed, spawn_key=(1, lf)),
                      align=align)
        res = train(net, ds, lr=args.lr, epochs=args.epochs, w0=w0, tol=args.tol, record_every=args.record_every)
        if res.diverged:         # reported, not plotted: its history is cut at the step that blew up
            m = dict(t_a=np.nan, t_b=np.nan, ratio=np.nan, thr_a=np.nan, thr_b=np.nan)
            sim[f"message_{lf}"] = np.array(res.message)
        else:
            m = analysis.measure(res, wa_uni=wa_uni, wb_star=wb_star, convention=args.convention)
        pre, post = _deep.chain_scales(net, w0)
        sim.update({f"epochs_{lf}": res.epochs, f"loss_{lf}": res.loss, f"w_a_{lf}": res.w_tot[0][:, 0, 0],
                    f"w_b_{lf}": res.w_tot[1][:, 0, 0], f"seed_pre_{lf}": pre, f"seed_post_{lf}": post})
        for k, v in (("t_a", m["t_a"]), ("t_b", m["t_b"]), ("time_ratio", m["ratio"]), ("thr_a", m["thr_a"]),
                     ("thr_b", m["thr_b"]), ("final_epoch", res.final_epoch), ("status", res.status)):
            cols[k].append(v)
    sim.update({k: np.array(v) for k, v in cols.items()})
    return sim


def _fit_factor(sim, lf, pre, post, args):
    """Factor c on every chain scalar that makes the chain's t_A equal the run's.

    t_A of the chain falls monotonically with c; it is evaluated on a geometric grid of c in
    one batch and log t_A is interpolated linearly in log c (grid step 2 %).
    """
    i = list(sim["fuse_depths"]).index(lf)
    cs = np.geomspace(0.1, 3.0, 172)
    n = len(cs)
    t = _deep.chain_times(np.broadcast_to(sim["sxx"], (n, 2, 2)), np.broadcast_to(sim["syx"], (n, 2)),
                          cs[:, None, None] * pre, cs[:, None] * post, args.lr,
                          np.full(n, sim["thr_a"][i]), np.full(n, sim["thr_b"][i]), 4 * sim["t_a"][i] + 10,
                          stop=0)[:, 0]
    ok = np.isfinite(t) & (t > 0)
    if not (ok.any() and t[ok].min() <= sim["t_a"][i] <= t[ok].max()):
        return np.nan
    # t falls with c: interpolate log c against increasing log t
    return float(np.exp(np.interp(np.log(sim["t_a"][i]), np.log(t[ok][::-1]), np.log(cs[ok][::-1]))))


def predict(args, sim=None):
    """Plateau level, closed-form chain times at u0 = init, and (with ``sim``) each run's chain map.

    Returns
    -------
    dict
        ``plateau`` = L(M_A)/L(M_0) on the run's data (population value without ``sim``);
        ``closed_t_a``, ``closed_t_b`` (n_f,): :func:`theory.deep.deep_times` in epochs at
        u0 = init; with ``sim`` per L_f ``chain_epochs_<L_f>``, ``chain_loss_<L_f>``,
        ``chain_w_a_<L_f>``, ``chain_w_b_<L_f>``, and over L_f ``chain_t_a``,
        ``chain_t_b``, ``chain_ratio``, ``factor`` (c; 1 for the balanced init).
    """
    from theory.deep import deep_times
    from theory.dynamics import chain_map
    from theory.fixed_points import late_fixed_points
    from theory.two_layer import toy_stats

    if sim is None:
        sxx, syx, syy = toy_stats(args.rho, args.ratio)
    else:
        sxx, syx, syy = sim["sxx"], sim["syx"], sim["syy"]
    m0, m_a = late_fixed_points(sxx, syx, syy, (1, 1))[:2]
    closed = [deep_times(args.depth, lf, args.ratio, args.rho, args.scale, lr=args.lr) for lf in args.fuse_depths]
    out = dict(plateau=m_a.loss / m0.loss, closed_t_a=np.array([float(c.t_a) for c in closed]),
               closed_t_b=np.array([float(c.t_b) for c in closed]))
    if sim is None:
        return out
    signs = _deep.chain_signs(sim["sxx"], sim["syx"])
    cols = {k: [] for k in ("chain_t_a", "chain_t_b", "factor")}
    scales = {}
    for i, lf in enumerate(args.fuse_depths):
        pre = sim[f"seed_pre_{lf}"].copy()
        pre[:, 0] *= signs
        post = sim[f"seed_post_{lf}"]
        if sim["status"][i] == "diverged":
            c = np.nan
        else:
            c = 1.0 if args.init_scheme == "balanced" else _fit_factor(sim, lf, pre, post, args)
        # the run's own thresholds, so that the marks compare with its measured times
        t = (_deep.chain_times(sim["sxx"][None], sim["syx"][None], c * pre[None], c * post[None], args.lr,
                               sim["thr_a"][i:i + 1], sim["thr_b"][i:i + 1], 2 * args.epochs)[0]
             if np.isfinite(c) else (np.nan, np.nan))
        cols["factor"].append(c)
        cols["chain_t_a"].append(t[0])
        cols["chain_t_b"].append(t[1])
        scales[lf] = (c * pre, c * post)
    # one time axis for every curve: the simulated window, or longer if a chain learns B later
    horizon = int(np.nanmax([max(sim["final_epoch"])] + [1.05 * t for t in cols["chain_t_b"]]))
    for lf, (pre, post) in scales.items():
        if np.all(np.isfinite(pre)):
            tr = chain_map(sim["sxx"], sim["syx"], sim["syy"], args.depth, lf, np.arange(horizon + 1), args.lr,
                           layer_scales=(pre, post))
            out.update({f"chain_epochs_{lf}": tr.epochs, f"chain_loss_{lf}": tr.loss,
                        f"chain_w_a_{lf}": tr.w_tot[:, 0], f"chain_w_b_{lf}": tr.w_tot[:, 1]})
    out.update({k: np.array(v, dtype=float) for k, v in cols.items()})
    out["chain_ratio"] = out["chain_t_b"] / out["chain_t_a"]
    return out


def plot(sim, pred, args):
    """Loss/L(0) per L_f with the chain maps and the plateau (left); W_A^tot, W_B^tot (right)."""
    from matplotlib.lines import Line2D

    fig, axes = C.figure(1, 2, width=5.2, height=3.9)
    ax, axw = axes[0]
    for i, lf in enumerate(args.fuse_depths):
        if sim["status"][i] == "diverged":
            continue
        color = C.FUSION_COLORS.get(lf, "grey")
        ep, loss = sim[f"epochs_{lf}"], sim[f"loss_{lf}"]
        ax.plot(ep, loss / loss[0], color=color, lw=2.0, alpha=0.85)
        axw.plot(ep, sim[f"w_a_{lf}"], color=color, lw=1.6)
        axw.plot(ep, sim[f"w_b_{lf}"], color=color, lw=1.6, ls=":")
        if f"chain_loss_{lf}" in pred:
            ce, closs = pred[f"chain_epochs_{lf}"], pred[f"chain_loss_{lf}"]
            ax.plot(ce, closs / closs[0], **C.THEORY_STYLE)
            for t, mark in ((pred["chain_t_a"][i], "v"), (pred["chain_t_b"][i], "^")):
                if np.isfinite(t):
                    ax.plot(t, np.interp(t, ce, closs) / closs[0], mark, color="black", ms=7, mfc="white", mew=1.4)
    ax.axhline(pred["plateau"], color="grey", ls=":", lw=1.2)
    ax.text(0.98, pred["plateau"] + 0.02, f"L(M_A)/L(M_0) = {pred['plateau']:.3f}", transform=ax.get_yaxis_transform(),
            ha="right", va="bottom", fontsize=8, color="dimgrey")
    right = 1.04 * np.nanmax([max(sim["final_epoch"]), *pred["chain_t_b"]])
    for a in (ax, axw):
        a.set_xlim(0, right)
        a.set_xlabel("epoch")
        a.grid(True, alpha=0.25)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("normalised loss L / L(0)")
    axw.set_ylabel("end-to-end weight")
    if args.init_scheme == "balanced":
        how = "chain map from u0 = init (exact for this init)"
    else:
        how = "chain map from the run's top singular values × c\n(c fitted to the run's t_A; t_B predicted)"
    handles = [Line2D([], [], color=C.FUSION_COLORS.get(lf, "grey"), lw=2,
                      label=f"simulation, {_deep.fusion_label(lf, args.depth)}"
                            + (" DIVERGED, not shown" if st == "diverged" else ""))
               for lf, st in zip(args.fuse_depths, sim["status"])]
    handles += [Line2D([], [], label=f"theory: {how}", **C.THEORY_STYLE),
                Line2D([], [], color="black", marker="v", mfc="white", ls="none", label="predicted t_A"),
                Line2D([], [], color="black", marker="^", mfc="white", ls="none", label="predicted t_B")]
    ax.legend(handles=handles, fontsize=7.5, loc="upper right", framealpha=0.9)
    axw.legend(handles=[Line2D([], [], color="grey", lw=1.6, label="W_A^tot (simulation)"),
                        Line2D([], [], color="grey", lw=1.6, ls=":", label="W_B^tot (simulation)")],
               fontsize=7.5, loc="lower right")
    conv = ("times: paper convention (epoch nearest ½W_A^uni, ½ max W_B)" if args.convention == "paper"
            else "times: first crossing of ½W_A^uni, ½W_B(M_*), interpolated")
    fig.suptitle(f"Figure 9: deep fusion L = {args.depth}, h = {args.width}, init '{args.init_scheme}' "
                 f"u0 = {args.scale:g}, r = {args.ratio:g}, ρ = {args.rho:g}, lr {args.lr:g}\n{conv}", fontsize=9.5)
    return fig


def main(argv=None):
    """Parse, train, predict, plot, save and print the summary; returns 0."""
    args = C.finish_args(_parser(), argv, check=_check)
    with C.Timer() as total:
        sim = run(args)
        pred = predict(args, sim)
        fig = plot(sim, pred, args)
    C.save(args.out, NAME, fig=fig, formats=args.formats,
           arrays={**sim, **{f"pred_{k}": v for k, v in pred.items()}}, config=args)
    C.show_or_close(fig, args)
    print(f"Figure 9 ({NAME}): L = {args.depth}, init '{args.init_scheme}' u0 = {args.scale:g}, "
          f"plateau L(M_A)/L(M_0) = {pred['plateau']:.3f}, convention '{args.convention}'")
    print(f"  {'L_f':>3} {'sim t_A':>8} {'sim t_B':>8} {'ratio':>6} | {'chain t_A':>9} {'chain t_B':>9} {'ratio':>6}"
          f" {'c':>5} | {'closed t_A':>10} {'closed t_B':>10} | {'end':>6} status")
    for i, lf in enumerate(args.fuse_depths):
        print(f"  {lf:>3} {sim['t_a'][i]:8.0f} {sim['t_b'][i]:8.0f} {sim['time_ratio'][i]:6.3f} | "
              f"{pred['chain_t_a'][i]:9.0f} {pred['chain_t_b'][i]:9.0f} {pred['chain_ratio'][i]:6.3f} "
              f"{pred['factor'][i]:5.2f} | {pred['closed_t_a'][i]:10.0f} {pred['closed_t_b'][i]:10.0f} | "
              f"{sim['final_epoch'][i]:6d} {sim['status'][i]}")
    order = [lf for end, lf, st in sorted(zip(sim["final_epoch"], args.fuse_depths, sim["status"]))
             if st == "converged"]
    print(f"  convergence order of the converged runs (first to last): L_f = {' < '.join(map(str, order))}")
    for lf in args.fuse_depths:
        if f"message_{lf}" in sim:
            print(f"  L_f = {lf} diverged: {sim[f'message_{lf}']}")
    late = [i for i, lf in enumerate(args.fuse_depths) if sim["status"][i] == "completed"]
    if late:
        print(f"  warning: L_f = {[args.fuse_depths[i] for i in late]} did not reach --tol within "
              f"{args.epochs} epochs; raise --epochs to see the second drop.")
    print(f"wrote {args.out}/{NAME}.* in {total.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
