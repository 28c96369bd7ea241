"""Figure 13: under- versus over-parameterised generalisation of two-layer early and late fusion.

Two-layer linear early and late fusion (width 100, per-entry init 1e-9, lr 0.04, 1200 epochs)
train on the "multi" data of THEORY.md §3b: D = 100 inputs, A = the first 50 coordinates
(variance 3, learned first), B = the last 50 (variance 1), W* = 0.1 everywhere, label noise
0.5, with n = 70 (over-parameterised, n < D) and n = 700 (under-parameterised) samples. One
data draw per n is shared by early and late fusion.

Plotted against epoch for each n: the generalisation error
E_g = ½ (W^tot − W*) Σ (W^tot − W*)ᵀ with the *population* Σ and W* (no label noise), the
training loss, and the norms ‖W_A^tot‖, ‖W_B^tot‖ of each network. Expected (THEORY.md §6.8):

- n = 700: early and late fusion end at the same E_g (the unique least-squares solution);
  late fusion has a long plateau near the unimodal fixed point M_A, whose E_g is
  ½ W_B* Σ_B W_B*ᵀ = 0.25 in the population limit (a little higher at finite n: the A-only fit
  on this draw, from :func:`theory.fixed_points.late_fixed_point` on the empirical moments).
- n = 70: late fusion first fits the data with A alone and then interpolates the rest with
  B; it ends with ‖W_A^tot‖ > ‖W_B^tot‖ (the truth has them equal), its E_g has two local
  minima, and both its best (early-stopping) and final E_g are worse than early fusion's.

Theory: the exact Gram-state map (:func:`theory.dynamics.gram_map`, THEORY.md §6.10) iterated
from each run's own initial weights at the run's learning rate reproduces the simulated
trajectory to rounding (black dashes on top of the colour); the balanced rank-one gradient
flow from the run's effective seed (:func:`theory.dynamics.flow`, black dots) is the
leading-order picture (slightly early: discrete steps, §6.10). At n < D the empirical Σ is
singular (rank n); the theory takes it as it is: the maps and flows need no Σ⁻¹, and the fixed
points are the minimum-norm least-squares solutions (M_* = Σ_yx Σ⁺, the point early fusion
reaches; late fusion ends elsewhere on the affine set of interpolants).

Run ``python -m sims.generalization`` (paper scale, about 15 s).
"""
from __future__ import annotations

import sys

import numpy as np

import linfusion
import theory
from linfusion import FusionNet
from linfusion.data import multi

from ._common import (COLORS, THEORY_STYLE, Timer, base_parser, fail, figure, parse_quick, save,
                      announce)

NAME = "generalization"
ARCHS = ("early", "late")
#: a local minimum of E_g counts when it is this fraction of the curve's range deep
PROMINENCE = 1e-3
FLOW_STYLE = dict(color="black", linestyle=":", linewidth=1.2)
QUICK = dict(dim=20, n_values="14,140", epochs=3000, width=20)


# ---------------------------------------------------------------------- command line
def build_parser():
    """The command-line options (``python -m sims.generalization --help``)."""
    p = base_parser(NAME, __doc__.splitlines()[0])
    g = p.add_argument_group("data (multi, THEORY.md §3b)")
    g.add_argument("--dim", type=int, default=100, help="input dimension D (even; A = first half)")
    g.add_argument("--n-values", default="70,700",
                   help="numbers of samples, comma separated (one fixed data draw each)")
    g.add_argument("--noise", type=float, default=0.5, help="label-noise standard deviation")
    g = p.add_argument_group("network and training (two-layer linear early and late fusion)")
    g.add_argument("--lr", type=float, default=0.04, help="learning rate (tau = 1/lr epochs)")
    g.add_argument("--epochs", type=int, default=1200, help="number of epochs")
    g.add_argument("--init", default="entry", choices=("entry", "layer"),
                   help="initialisation scheme (entry: N(0, scale^2) per weight)")
    g.add_argument("--scale", type=float, default=1e-9, help="initialisation scale u0")
    g.add_argument("--width", type=int, default=100, help="hidden width h")
    g.add_argument("--no-flow", action="store_true", help="skip the gradient-flow ODE overlay")
    return p


def _check(args):
    if args.dim < 2 or args.dim % 2:
        raise ValueError(f"--dim {args.dim}: must be even and >= 2 (two halves, one per modality)")
    try:
        args.n_list = [int(v) for v in args.n_values.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--n-values {args.n_values!r}: must be comma-separated integers") from None
    if not args.n_list or min(args.n_list) < 2 or len(set(args.n_list)) != len(args.n_list):
        raise ValueError(f"--n-values {args.n_values!r}: must be distinct integers >= 2")
    if args.noise < 0:
        raise ValueError(f"--noise {args.noise!r}: must be >= 0")
    if args.width < 1:
        raise ValueError(f"--width {args.width}: must be >= 1")


def parse(argv=None):
    """Parsed and checked arguments; ``--quick`` changes the defaults in :data:`QUICK`."""
    return parse_quick(build_parser(), argv, QUICK, _check)


# ---------------------------------------------------------------------- shared set-up
def draws(args):
    """The data set and the initial weights of every run, all derived from ``--seed``.

    Run and theory both call this, so the theory starts from exactly the simulated weights.

    Returns
    -------
    dict
        ``draws[n] = (dataset, {arch: (net, w0)})``; the data of size n come from
        ``SeedSequence([seed, n])``'s child 0, early and late initial weights from its
        children 1 and 2 (so adding an n does not change the others).
    """
    out = {}
    for n in args.n_list:
        seq_data, *seq_init = np.random.SeedSequence([args.seed, n]).spawn(1 + len(ARCHS))
        ds = multi(args.dim, n, args.noise, rng=seq_data)
        runs = {}
        for arch, seq in zip(ARCHS, seq_init):
            net = FusionNet(ds.in_dims, 1, args.width, 2, 1 if arch == "early" else 2)
            runs[arch] = (net, net.init(args.init, args.scale, np.random.default_rng(seq)))
        out[n] = (ds, runs)
    return out


def training_moments(ds):
    """Empirical (Σ, Σyx, <y²>) for the theory, and the rank of Σ.

    With n < D the empirical Σ has rank n < D. The theory accepts it unchanged (positive
    semi-definite): the Gram-state map and the flow need no Σ⁻¹, and fixed points and
    crossing thresholds are the minimum-norm least-squares solutions.
    """
    mo = ds.moments()
    return mo.sxx, mo.syx, mo.syy, int(np.linalg.matrix_rank(mo.sxx, hermitian=True))


def layer_weights(net, w, arch):
    """(W¹, W²) in the form :func:`theory.dynamics.gram_map` takes for ``arch``."""
    if arch == "early":
        return np.hstack(net.blocks(w, layer=1)), net.blocks(w, layer=2)[0]
    return ([net.blocks(w, modality=k, layer=1)[0] for k in range(2)],
            [net.blocks(w, modality=k, layer=2)[0] for k in range(2)])


def local_minima(eg):
    """Indices of the local minima of an E_g curve at least PROMINENCE of its range deep."""
    from scipy.signal import find_peaks
    eg = np.asarray(eg, dtype=float)
    if eg.size < 3:
        return np.zeros(0, dtype=int)
    span = float(np.max(eg) - np.min(eg))
    idx, _ = find_peaks(-eg, prominence=PROMINENCE * span if span > 0 else 1.0)
    return idx


def _key(n, arch, what):
    return f"n{n}_{arch}_{what}"


# ---------------------------------------------------------------------- experiment
def run(args):
    """Train early and late fusion on one data draw per n (moment path, exact).

    Returns
    -------
    dict of arrays
        Per n and architecture (keys ``n{n}_{arch}_...``): ``epochs``, ``loss``, ``eg``,
        ``norm_a``, ``norm_b`` (‖W_A^tot‖, ‖W_B^tot‖ per epoch), ``w_tot`` (n_rec, D), ``status``
        and ``message``; ``n_values``.
    """
    sim = {"n_values": np.array(args.n_list)}
    for n, (ds, runs) in draws(args).items():
        for arch, (net, w0) in runs.items():
            res = linfusion.train(net, ds, lr=args.lr, epochs=args.epochs, w0=w0)
            sim[_key(n, arch, "epochs")] = res.epochs
            sim[_key(n, arch, "loss")] = res.loss
            sim[_key(n, arch, "eg")] = res.eg
            sim[_key(n, arch, "norm_a")] = np.linalg.norm(res.w_tot[0][:, 0, :], axis=1)
            sim[_key(n, arch, "norm_b")] = np.linalg.norm(res.w_tot[1][:, 0, :], axis=1)
            sim[_key(n, arch, "w_tot")] = res.w_tot_all[:, 0]
            sim[_key(n, arch, "status")] = np.array(res.status)
            sim[_key(n, arch, "message")] = np.array(res.message)
    return sim


def predict(args):
    """The exact Gram-state map and the flow ODE of every run, and the E_g of M_A.

    Returns
    -------
    dict of arrays
        ``eg_ma_pop`` (population M_A: ½ W_B* Σ_B W_B*ᵀ); per n ``n{n}_eg_ma`` (M_A of this
        draw's empirical moments, E_g with the population Σ), ``n{n}_loss_ma``,
        ``n{n}_rank`` (rank of the empirical Σ), ``n{n}_w_ma`` (W^tot at M_A); per n and architecture
        ``..._map_{loss,eg,norm_a,norm_b}`` (every epoch) and ``..._flow_eg``.
    """
    pred = {}
    half = args.dim // 2
    dims = (half, half)
    for n, (ds, runs) in draws(args).items():
        sxx, syx, syy, rank = training_moments(ds)
        pred[f"n{n}_rank"] = rank
        m_a = theory.late_fixed_point(sxx, syx, syy, dims, learned=(0,))
        pred[f"n{n}_eg_ma"] = theory.generalization_error(ds.sigma, ds.w_star, m_a.w_tot)
        pred[f"n{n}_loss_ma"] = m_a.loss
        pred[f"n{n}_w_ma"] = m_a.w_tot[0]
        grid = np.arange(args.epochs + 1)
        for arch, (net, w0) in runs.items():
            w1, w2 = layer_weights(net, w0, arch)
            common = dict(fusion=arch, sigma_pop=ds.sigma, w_star=ds.w_star)
            tr = theory.gram_map(sxx, syx, syy, dims, grid, args.lr, w1, w2, **common)
            pred[_key(n, arch, "map_loss")] = tr.loss
            pred[_key(n, arch, "map_eg")] = tr.e_g
            pred[_key(n, arch, "map_norm_a")] = tr.w_norms[:, 0]
            pred[_key(n, arch, "map_norm_b")] = tr.w_norms[:, 1]
            if not args.no_flow:
                fl = theory.flow(sxx, syx, syy, dims, grid.astype(float), args.lr, w1=w1, w2=w2, **common)
                pred[_key(n, arch, "flow_eg")] = fl.e_g
    sigma_pop = np.diag(np.concatenate([np.full(half, 3.0), np.ones(half)]))
    w_star = np.full((1, args.dim), 0.1)
    syx_pop = w_star @ sigma_pop
    syy_pop = float(np.sum(syx_pop * w_star)) + args.noise ** 2
    m_a_pop = theory.late_fixed_point(sigma_pop, syx_pop, syy_pop, dims, learned=(0,))
    pred["eg_ma_pop"] = theory.generalization_error(sigma_pop, w_star, m_a_pop.w_tot)
    return pred


def summarize(sim, pred, args):
    """One row per run: final and best E_g (simulation, map, flow), minima and norms."""
    rows = []
    for n in args.n_list:
        for arch in ARCHS:
            ep, eg = sim[_key(n, arch, "epochs")], sim[_key(n, arch, "eg")]
            best = int(np.argmin(eg))
            row = dict(n=n, arch=arch, status=str(sim[_key(n, arch, "status")]),
                       final_eg=float(eg[-1]), best_eg=float(eg[best]), best_epoch=int(ep[best]),
                       n_local_minima=int(local_minima(eg).size),
                       final_norm_a=float(sim[_key(n, arch, "norm_a")][-1]),
                       final_norm_b=float(sim[_key(n, arch, "norm_b")][-1]),
                       final_loss=float(sim[_key(n, arch, "loss")][-1]),
                       eg_ma=float(pred[f"n{n}_eg_ma"]))
            # closest approach to M_A: where the unimodal phase sits, and its E_g
            w_ma = pred[f"n{n}_w_ma"]
            dist = np.linalg.norm(sim[_key(n, arch, "w_tot")] - w_ma, axis=1) / np.linalg.norm(w_ma)
            near = int(np.argmin(dist))
            row.update(near_ma_epoch=int(ep[near]), near_ma_rel_dist=float(dist[near]),
                       near_ma_eg=float(eg[near]))
            m = pred[_key(n, arch, "map_eg")]
            row.update(map_final_eg=float(m[-1]), map_best_eg=float(np.min(m)), map_best_epoch=int(np.argmin(m)),
                       map_max_dev_eg=float(np.max(np.abs(m[ep.astype(int)] - eg))))
            f = pred.get(_key(n, arch, "flow_eg"))
            if f is not None:
                row.update(flow_best_eg=float(np.min(f)), flow_best_epoch=int(np.argmin(f)))
            rows.append(row)
    return rows


def checks(rows, args):
    """The expected facts of THEORY.md §6.8 as (statement, holds) pairs, for the n's given."""
    by = {(r["n"], r["arch"]): r for r in rows}
    out = []
    for n in args.n_list:
        e, l = by[(n, "early")], by[(n, "late")]
        if n > args.dim:
            rel = abs(e["final_eg"] - l["final_eg"]) / e["final_eg"]
            out.append((f"n={n} > D: same final E_g early vs late (rel. diff {rel:.1e} < 1e-2)", rel < 1e-2))
        else:
            out.append((f"n={n} < D: late ends with |W_A| > |W_B| ({l['final_norm_a']:.3f} > "
                        f"{l['final_norm_b']:.3f})", l["final_norm_a"] > l["final_norm_b"]))
            out.append((f"n={n} < D: late best E_g worse than early ({l['best_eg']:.4f} > {e['best_eg']:.4f})",
                        l["best_eg"] > e["best_eg"]))
            out.append((f"n={n} < D: late final E_g worse than early ({l['final_eg']:.4f} > "
                        f"{e['final_eg']:.4f})", l["final_eg"] > e["final_eg"]))
            out.append((f"n={n} < D: late E_g has two local minima (found {l['n_local_minima']})",
                        l["n_local_minima"] >= 2))
    return out


# ---------------------------------------------------------------------- figure
def plot(sim, pred, args):
    """E_g, training loss and the modality norms against epoch, one column per n."""
    n_values = list(args.n_list)
    fig, axes = figure(4, len(n_values), width=4.6, height=2.7, sharex=True)
    w_norm = 0.1 * np.sqrt(args.dim // 2)         # ‖W_A*‖ = ‖W_B*‖
    for j, n in enumerate(n_values):
        ax_eg, ax_loss, ax_early, ax_late = axes[:, j]
        regime = "over" if n < args.dim else "under"
        ax_eg.set_title(f"n = {n}, D = {args.dim}: {regime}-parameterised", fontsize=10)
        for arch in ARCHS:
            ep = sim[_key(n, arch, "epochs")]
            eg = sim[_key(n, arch, "eg")]
            color = COLORS[arch]
            tag = f"{arch} fusion"
            ax_eg.plot(ep, eg, color=color, lw=2.6, alpha=0.75, label=tag)
            lm = local_minima(eg)
            ax_eg.plot(ep[lm], eg[lm], "o", mfc="none", mec=color, ms=7, mew=1.4)
            best = int(np.argmin(eg))
            ax_eg.plot(ep[best], eg[best], "*", color=color, mec="black", ms=12, zorder=5)
            ax_loss.plot(ep, sim[_key(n, arch, "loss")], color=color, lw=2.6, alpha=0.75, label=tag)
            ax_norm = ax_early if arch == "early" else ax_late
            ax_norm.plot(ep, sim[_key(n, arch, "norm_a")], color=COLORS["a"], lw=2.6, alpha=0.75,
                         label=r"$\|W_A^{tot}\|$")
            ax_norm.plot(ep, sim[_key(n, arch, "norm_b")], color=COLORS["b"], lw=2.6, alpha=0.75,
                         label=r"$\|W_B^{tot}\|$")
            ax_norm.set_title(f"{arch} fusion, n = {n}", fontsize=9)
            grid = np.arange(len(pred[_key(n, arch, "map_eg")]))
            lab = "exact map (Gram state, run's init)"
            once = lab if arch == "late" else None
            ax_eg.plot(grid, pred[_key(n, arch, "map_eg")], **THEORY_STYLE, label=once)
            ax_loss.plot(grid, pred[_key(n, arch, "map_loss")], **THEORY_STYLE, label=once)
            ax_norm.plot(grid, pred[_key(n, arch, "map_norm_a")], **THEORY_STYLE, label=lab)
            ax_norm.plot(grid, pred[_key(n, arch, "map_norm_b")], **THEORY_STYLE)
            if _key(n, arch, "flow_eg") in pred:
                ax_eg.plot(np.arange(len(pred[_key(n, arch, "flow_eg")])), pred[_key(n, arch, "flow_eg")],
                           **FLOW_STYLE, label="flow ODE (effective seed)" if arch == "late" else None)
        ax_eg.axhline(pred["eg_ma_pop"], color="grey", ls=(0, (1, 3)), lw=1.2,
                      label=f"E_g(M_A), population = {pred['eg_ma_pop']:.3g}")
        ax_eg.axhline(pred[f"n{n}_eg_ma"], color="grey", ls="-.", lw=1.2,
                      label=f"E_g(M_A), this draw = {pred[f'n{n}_eg_ma']:.3g}")
        ax_eg.plot([], [], "*", color="white", mec="black", ms=10, label="best (early stopping)")
        ax_eg.plot([], [], "o", mfc="none", mec="black", ms=7, label="local minima")
        ax_eg.set_yscale("log")
        ax_eg.set_ylabel("generalisation error $E_g$")
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("training loss")
        for ax in (ax_early, ax_late):
            ax.axhline(w_norm, color="grey", ls=(0, (1, 3)), lw=1.2, label=r"$\|W_A^*\| = \|W_B^*\|$")
            ax.set_ylabel("norm of $W^{tot}$")
        ax_late.set_xlabel("epoch")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
        if j == len(n_values) - 1:
            for ax in axes[:, j]:
                ax.legend(fontsize=7, loc="upper right" if ax in (ax_eg, ax_loss) else "lower right",
                          framealpha=0.85)
    fig.suptitle("Colour: simulation (full-batch GD, lr %g, init %g); black dashes: exact Gram-state map "
                 "from each run's initial weights;\nblack dots: rank-one gradient flow from the run's effective "
                 "seed. $E_g = \\frac{1}{2}(W^{tot}-W^*)\\,\\Sigma\\,(W^{tot}-W^*)^T$ with population "
                 "$\\Sigma$, $W^*$ (no label noise)." % (args.lr, args.scale), fontsize=8.5)
    return fig


# ---------------------------------------------------------------------- entry point
def report(rows, pred, args, seconds):
    """The printed summary: a table per run, M_A levels, the expected facts, wall time."""
    lines = [f"{NAME}: D = {args.dim}, noise {args.noise}, width {args.width}, init {args.init} "
             f"{args.scale:g}, lr {args.lr:g}, {args.epochs} epochs, seed {args.seed}",
             f"  {'n':>5} {'arch':>5} | {'final E_g':>9} {'map':>9} | {'best E_g':>9} {'epoch':>5} "
             f"{'map ep':>6} {'flow ep':>7} | {'#min':>4} | {'|W_A|':>6} {'|W_B|':>6} | {'loss':>8}"]
    for r in rows:
        lines.append(f"  {r['n']:>5} {r['arch']:>5} | {r['final_eg']:9.4f} {r['map_final_eg']:9.4f} | "
                     f"{r['best_eg']:9.4f} {r['best_epoch']:5d} {r['map_best_epoch']:6d} "
                     f"{r.get('flow_best_epoch', -1):7d} | {r['n_local_minima']:4d} | "
                     f"{r['final_norm_a']:6.3f} {r['final_norm_b']:6.3f} | {r['final_loss']:8.2e}")
    dev = max(r["map_max_dev_eg"] for r in rows)
    lines.append(f"  exact map vs simulation: max |ΔE_g| = {dev:.1e} over all runs and epochs")
    for r in rows:
        if r["arch"] == "late":
            lines.append(f"  n={r['n']} late fusion's closest approach to M_A (epoch {r['near_ma_epoch']}, "
                         f"|W - W_MA|/|W_MA| = {r['near_ma_rel_dist']:.3f}): E_g {r['near_ma_eg']:.4f} "
                         f"vs E_g(M_A) {r['eg_ma']:.4f}")
    lines.append(f"  E_g at M_A: population {pred['eg_ma_pop']:.4f}; this draw: "
                 + ", ".join(f"n={n}: {pred[f'n{n}_eg_ma']:.4f}"
                             + (f" (Σ of rank {pred[f'n{n}_rank']} < D)" if pred[f"n{n}_rank"] < args.dim else "")
                             for n in args.n_list))
    for text, ok in checks(rows, args):
        lines.append(f"  [{'yes' if ok else 'NO '}] {text}")
    lines.append(f"  wall time {seconds:.1f} s")
    return "\n".join(lines)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    args = parse(argv)
    with Timer() as timer:
        sim = run(args)
        for n in args.n_list:
            for arch in ARCHS:
                if str(sim[_key(n, arch, "status")]) == "diverged":
                    return fail(f"{arch} fusion at n = {n}: {sim[_key(n, arch, 'message')]}")
        pred = predict(args)
        rows = summarize(sim, pred, args)
        fig = plot(sim, pred, args)
        arrays = {**{f"sim_{k}": v for k, v in sim.items()}, **{f"pred_{k}": v for k, v in pred.items()}}
        written = save(args.out, NAME, fig=fig, formats=args.formats, arrays=arrays, config=args, table=rows)
    announce(report(rows, pred, args, timer.seconds), written, fig, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
