"""Deep and intermediate fusion experiments (figures 9-12): the shared implementation.

The mathematical object is the time ratio t_B/t_A of depth-L linear fusion networks with
fusion layer L_f on the toy data (THEORY.md §6.6-6.7), simulated and predicted three ways:

- **simulation**: full-batch gradient descent of the width-h network through
  :func:`linfusion.sweep.run_sweep`, times read off with :func:`linfusion.analysis.measure`;
- **closed form**: :func:`theory.deep.deep_time_ratio` at u0 = init (the paper's curves);
- **chain map from the run's own initial condition**: the exact gradient-descent map of an
  aligned rank-one chain (:func:`theory.dynamics.chain_map`, at the simulation's learning
  rate), started from *each run's* initial weights projected onto their top singular
  directions: every layer block (per modality up to and including its fusion block F_X,
  then the shared layers) becomes one scalar, its largest singular value. For the
  ``balanced`` initialisation these are exactly u0 (pre-fusion) and √2·u0 (shared), so the
  chain is the network itself. For the random ``layer`` initialisation a h×h block of
  Frobenius norm u0 has top singular value ≈ 2u0/√h, so the chain starts far smaller than
  init: this is the effective aligned initial condition of THEORY.md §9.4. No parameter is
  fitted.

The projection ignores that the top singular vectors of consecutive random layers are not
aligned: the network first aligns them, so its absolute times are ≈ 1.6× the chain's
(h = 100, u0 = 0.1), while its time ratio t_B/t_A is predicted to within 8 % over the
paper's ρ, r and init sweeps (worst: L_f = 2 at |ρ| = 0.9, where ratio − 1 is small).

Times are measured with :func:`linfusion.analysis.measure` (``--convention``, default the
paper's: the epoch nearest half of W_A^uni = 1 + ρ/r for A, nearest half of B's maximum for
B); the chain's crossings are interpolated at the same thresholds. All chains of a sweep run
together through :func:`theory.dynamics.chain_map_many` (the batched form of
:func:`theory.dynamics.chain_map`, one update rule for both), stopped once every chain has
crossed B, so that a 180-run sweep is predicted in seconds.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linfusion import analysis
from linfusion.sweep import build as sweep_build
from linfusion.sweep import run_sweep
from theory.dynamics import chain_map_many

from . import _common as C

__all__ = ["Axis", "AXES", "SCHEME_MARKERS", "chain_scales", "chain_signs", "chain_times", "toy_targets",
           "fusion_label", "add_net_args", "check_net_args", "parse_list", "sweep_parser", "measure_point",
           "run", "predict", "plot", "main"]

#: simulation markers of the two initialisation schemes
SCHEME_MARKERS = {"layer": "o", "balanced": "s"}
_SCHEME_TEXT = {"layer": "random 'layer' init (paper)", "balanced": "rank-one 'balanced' init"}


@dataclass(frozen=True)
class Axis:
    """The swept variable of one deep-fusion sweep.

    Attributes
    ----------
    key : str
        Configuration key that is swept ('rho', 'ratio' or 'scale').
    name : str
        Module name (``python -m sims.<name>``).
    figure : int
        The paper's figure number (THEORY.md §10).
    values : tuple of float
        Simulated grid (the paper's).
    quick : tuple of float
        Grid of ``--quick``.
    theory : tuple (start, stop, num)
        Grid of the closed-form curve.
    label : str
        x-axis label.
    symbol : str
        Short name in titles and tables.
    """

    key: str
    name: str
    figure: int
    values: tuple
    quick: tuple
    theory: tuple
    label: str
    symbol: str

    @property
    def theory_grid(self):
        """ndarray of shape (num,)."""
        return np.linspace(*self.theory)


AXES = {
    "rho": Axis("rho", "rho_sweep", 10, tuple(np.linspace(-0.9, 0.9, 9)), (-0.6, 0.0, 0.6),
                (-0.92, 0.92, 100), "correlation ρ of x_A and x_B", "ρ"),
    "ratio": Axis("ratio", "ratio_sweep", 11, tuple(np.linspace(1.2, 2.8, 5)), (1.5, 2.5),
                  (1.0, 3.0, 100), "σ_A/σ_B", "r"),
    "scale": Axis("scale", "init_sweep", 12, tuple(np.linspace(0.03, 0.18, 5)), (0.1, 0.18),
                  (0.01, 0.2, 100), "init u0 (per-layer Frobenius norm)", "u0"),
}

_QUICK = {"repeats": 1, "width": 50}        # --quick defaults of options the user did not set
_DEFAULT = {"repeats": 5, "width": 100}


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


def chain_times(sxx, syx, pre, post, lr, thr_a, thr_b, max_epochs, *, stop=1):
    """Crossing epochs of many aligned rank-one chains: :func:`theory.dynamics.chain_map_many`.

    A thin adapter of the sweep's arrays to the theory's batched chain map (the one
    implementation of the chain's update, shared with :func:`theory.dynamics.chain_map`):
    the depth is read off the shapes, the crossing compares W_X times the sign of its
    eventual weight ('projection') with the run's own thresholds.

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
        Thresholds of W_A and W_B.
    max_epochs : int
    stop : {0, 1}
        Stop once every chain has crossed the threshold of A (0) or of B (1).

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
    return np.array(res.t_cross)


def toy_targets(rho, ratio, w_star=(1.0, 1.0)):
    """A's unimodal weight W_A^uni and B's weight at M_* on the toy data (population).

    Returns
    -------
    wa_uni, wb_star : float
        w_A* + w_B* ρ/r (THEORY.md §6.1 with general W*) and w_B*.
    """
    return w_star[0] + w_star[1] * rho / ratio, w_star[1]


# ------------------------------------------------------------------ command line
def parse_list(text, name, kind=float):
    """Comma-separated numbers of option ``name``; ValueError naming it if malformed."""
    try:
        out = [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name} {text!r}: must be comma-separated numbers") from None
    if not out:
        raise ValueError(f"--{name} {text!r}: must hold at least one value")
    return out


def add_net_args(p, *, epochs, tol, schemes):
    """Options of the deep network, its initialisation and gradient descent."""
    g = p.add_argument_group("network and training (deep fusion)")
    g.add_argument("--depth", type=int, default=4, help="total depth L")
    g.add_argument("--fuse-depths", default=None,
                   help="fusion layers L_f to run, comma separated (default: L, ..., 1)")
    g.add_argument("--width", type=int, default=None, help="hidden width h (default 100; --quick 50)")
    g.add_argument("--scale", type=float, default=0.1,
                   help="init u0: per-layer Frobenius norm before fusion, sqrt(2)*u0 from fusion on")
    g.add_argument("--init-scheme", default="layer", choices=schemes,
                   help="layer: random, the paper's deep scheme; balanced: rank-one, exactly balanced, "
                        "aligned (meets the scalar-chain theory)"
                        + ("; both: draw both" if "both" in schemes else ""))
    g.add_argument("--lr", type=float, default=0.04, help="learning rate (tau = 1/lr epochs)")
    g.add_argument("--epochs", type=int, default=epochs, help="maximum number of epochs")
    g.add_argument("--tol", type=float, default=tol, help="stop once the loss is below tol (0: never)")
    g.add_argument("--record-every", type=int, default=1,
                   help="record every k epochs (1: the times have epoch resolution)")
    g.add_argument("--convention", default="paper", choices=("paper", "interp"),
                   help="paper: nearest epoch to half of W_A^uni (A) and to half of max W_B (B); "
                        "interp: first crossing of half of W_A^uni and of half of W_B(M_*), interpolated")
    return g


def check_net_args(args):
    """Turn impossible network settings into a ValueError naming the option."""
    if args.depth < 1:
        raise ValueError(f"--depth {args.depth}: must be >= 1")
    if args.width is not None and args.width < 1:
        raise ValueError(f"--width {args.width}: must be >= 1")
    if not 0.0 < args.scale < 1.0:
        raise ValueError(f"--scale {args.scale!r}: must lie in (0, 1) (the chain theory needs u0 < 1)")
    if args.tol < 0:
        raise ValueError(f"--tol {args.tol!r}: must be >= 0")
    if args.record_every < 1:
        raise ValueError(f"--record-every {args.record_every}: must be >= 1")
    if args.n < 1:
        raise ValueError(f"--n {args.n}: must be >= 1")
    if args.noise < 0:
        raise ValueError(f"--noise {args.noise!r}: must be >= 0")
    if args.ratio < 1.0:
        raise ValueError(f"--ratio {args.ratio!r}: must be >= 1 (A, the larger-variance modality, "
                         "is learned first)")
    if args.fuse_depths is None:
        args.fuse_depths = list(range(args.depth, 0, -1))
    elif isinstance(args.fuse_depths, str):
        args.fuse_depths = parse_list(args.fuse_depths, "fuse-depths", int)
    bad = [f for f in args.fuse_depths if not 1 <= f <= args.depth]
    if bad:
        raise ValueError(f"--fuse-depths {bad}: each must lie in 1..depth ({args.depth})")


def sweep_parser(axis):
    """The command line of one deep-fusion sweep."""
    p = C.base_parser(axis.name, f"Figure {axis.figure}: deep fusion time ratio t_B/t_A against "
                      f"{axis.symbol}, for every fusion layer (THEORY.md §6.6-6.7, §9.4).", workers=True)
    C.add_toy_args(p)
    add_net_args(p, epochs=100000, tol=1e-4, schemes=("layer", "balanced", "both"))
    g = p.add_argument_group("sweep")
    g.add_argument("--values", default=None,
                   help=f"swept {axis.key} values, comma separated (default: the paper's "
                        f"{', '.join(f'{v:g}' for v in axis.values)}; --quick: "
                        f"{', '.join(f'{v:g}' for v in axis.quick)}); overrides --{axis.key}; "
                        "write --values=-0.5,0.5 when the first value is negative")
    g.add_argument("--repeats", type=int, default=None, help="runs per point (default 5; --quick 1)")
    g.add_argument("--drop-loss", type=float, default=1e-3,
                   help="drop runs whose final loss exceeds noise^2/2 by this much (the paper: 1e-3)")
    return p


def _check_sweep(args, axis):
    check_net_args(args)
    for name, value in _QUICK.items():
        if getattr(args, name) is None:
            setattr(args, name, value if args.quick else _DEFAULT[name])
    if args.quick and args.workers is None and args.scheduler is None:
        args.workers = 1        # a few runs: starting worker processes would cost more than they save
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats}: must be >= 1")
    if args.drop_loss <= 0:
        raise ValueError(f"--drop-loss {args.drop_loss!r}: must be > 0")
    if args.values is None:
        args.values = list(axis.quick if args.quick else axis.values)
    else:
        args.values = parse_list(args.values, "values")
    rules = {"rho": (lambda v: -1.0 < v < 1.0, "lie in (-1, 1)"),
             "ratio": (lambda v: v >= 1.0, "be >= 1 (A is learned first)"),
             "scale": (lambda v: 0.0 < v < 1.0, "lie in (0, 1)")}
    ok, rule = rules[axis.key]
    bad = [v for v in args.values if not ok(v)]
    if bad:
        raise ValueError(f"--values {bad}: each {axis.key} must {rule}")
    args.schemes = ["layer", "balanced"] if args.init_scheme == "both" else [args.init_scheme]


# ------------------------------------------------------------------ simulation
def _point(args, axis, scheme, fuse_depth, x, repeat):
    cfg = dict(arch="deep", depth=args.depth, fuse_depth=fuse_depth, width=args.width, data="toy",
               rho=args.rho, ratio=args.ratio, n=args.n, noise=args.noise, lr=args.lr, epochs=args.epochs,
               tol=args.tol, init=scheme, scale=args.scale, record_every=args.record_every, repeat=repeat)
    cfg[axis.key] = float(x)
    return cfg


def measure_point(result, config, *, convention):
    """Times of one run (``convention`` of :func:`linfusion.analysis.measure`) and its chain scalars.

    Runs in the sweep's workers. The thresholds are the population values of the toy data:
    half of W_A^uni = w_A* + w_B* ρ/r for A; for B half of its trajectory maximum ('paper')
    or half of w_B* ('interp').
    """
    wa_uni, wb_star = toy_targets(config["rho"], config["ratio"], config["w_star"])
    m = analysis.measure(result, wa_uni=wa_uni, wb_star=wb_star, convention=convention)
    pre, post = chain_scales(result.net, result.w0)
    row = {"t_a": m["t_a"], "t_b": m["t_b"], "time_ratio": m["ratio"], "thr_a": m["thr_a"], "thr_b": m["thr_b"]}
    for k, name in enumerate("ab"):
        row.update({f"seed_{name}_{layer}": float(v) for layer, v in enumerate(pre[k], start=1)})
    row.update({f"seed_v_{layer}": float(v) for layer, v in enumerate(post, start=config["fuse_depth"] + 1)})
    return row


def _moments_of(config, seed, index):
    """The empirical moments of a sweep point's data, rebuilt from the sweep's seed contract.

    :func:`linfusion.sweep.run_sweep` (``seed_by='index'``) draws point ``index``'s data from
    ``SeedSequence(seed, spawn_key=(index, 0))`` with the default build.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 0)))
    _, ds = sweep_build(config, rng)
    mo = ds.moments()
    return mo.sxx, mo.syx[0]


def run(args, axis):
    """Simulate every (init scheme, L_f, swept value, repeat) through the sweep engine.

    Each scheme is one :func:`linfusion.sweep.run_sweep` call with the same seed, so its
    cache is reused whichever schemes are selected.

    Returns
    -------
    dict
        Per run (arrays of shape (N,)): ``scheme``, ``fuse_depth``, ``x``, ``repeat``,
        ``t_a``, ``t_b``, ``time_ratio``, ``thr_a``, ``thr_b``, ``final_epoch``,
        ``final_loss``, ``status``, ``kept``; the chain scalars ``seed_pre`` (N, 2, L)
        and ``seed_post`` (N, L) (NaN-padded); the data moments ``sxx`` (N, 2, 2) and
        ``syx`` (N, 2); plus ``table`` (list of row dicts) and ``wall`` (seconds per
        scheme).
    """
    cache = Path(args.cache) if args.cache else Path(args.out) / "cache"
    measure = functools.partial(measure_point, convention=args.convention)
    rows, moments, wall = [], [], {}
    for scheme in args.schemes:
        configs = [_point(args, axis, scheme, lf, x, rep) for lf in args.fuse_depths
                   for x in args.values for rep in range(args.repeats)]
        with C.Timer() as timer:
            res = run_sweep(configs, seed=args.seed, measure=measure, workers=args.workers,
                            cache_dir=cache, force=args.force, scheduler=args.scheduler)
        wall[scheme] = timer.seconds
        rows += res.table
        moments += [_moments_of(cfg, res.seed, i) for i, cfg in enumerate(configs)]
    n, big_l = len(rows), args.depth
    col = {k: np.array([r.get(k, np.nan) for r in rows], dtype=float)
           for k in ("t_a", "t_b", "time_ratio", "thr_a", "thr_b", "final_epoch", "final_loss")}
    status = np.array([r["status"] for r in rows])
    kept = (np.isin(status, ("completed", "converged")) & np.isfinite(col["time_ratio"])
            & (col["final_loss"] - 0.5 * args.noise ** 2 < args.drop_loss))
    seed_pre = np.full((n, 2, big_l), np.nan)
    seed_post = np.full((n, big_l), np.nan)
    for i, r in enumerate(rows):
        lf = r["fuse_depth"]
        for k, name in enumerate("ab"):
            seed_pre[i, k, :lf] = [r[f"seed_{name}_{layer}"] for layer in range(1, lf + 1)]
        seed_post[i, :big_l - lf] = [r[f"seed_v_{layer}"] for layer in range(lf + 1, big_l + 1)]
    for r, ok in zip(rows, kept):
        r["kept"] = bool(ok)
    return dict(scheme=np.array([r["init"] for r in rows]), fuse_depth=np.array([r["fuse_depth"] for r in rows]),
                x=np.array([r[axis.key] for r in rows], dtype=float), repeat=np.array([r["repeat"] for r in rows]),
                status=status, kept=kept, seed_pre=seed_pre, seed_post=seed_post,
                sxx=np.array([m[0] for m in moments]), syx=np.array([m[1] for m in moments]),
                table=rows, wall=wall, **col)


# ------------------------------------------------------------------ theory
def _fixed(args, axis, x):
    """(ratio, rho, u0) of the theory at swept value(s) x."""
    vals = {"ratio": args.ratio, "rho": args.rho, "scale": args.scale}
    vals[axis.key] = x
    return vals["ratio"], vals["rho"], vals["scale"]


def predict(args, axis, sim=None):
    """Closed-form curves, and (with ``sim``) the chain map from each run's initial scalars.

    Returns
    -------
    dict
        ``grid`` (n_grid,), ``curve`` (n_fuse, n_grid): :func:`theory.deep.deep_time_ratio`
        at u0 = init; ``closed`` (N,): the same at each run's swept value; with ``sim`` also
        ``chain_t_a``, ``chain_t_b``, ``chain_ratio`` (N,) from :func:`chain_times`
        (:func:`theory.dynamics.chain_map_many`).
    """
    from theory.deep import deep_time_ratio

    grid = axis.theory_grid
    r, rho, u0 = _fixed(args, axis, grid)
    curve = np.array([deep_time_ratio(args.depth, lf, r, rho, u0) for lf in args.fuse_depths])
    out = dict(grid=grid, curve=curve, fuse_depths=np.array(args.fuse_depths))
    if sim is None:
        return out
    n = len(sim["x"])
    closed = np.empty(n)
    times = np.full((n, 2), np.nan)
    for lf in np.unique(sim["fuse_depth"]):
        sel = np.flatnonzero(sim["fuse_depth"] == lf)
        r, rho, u0 = _fixed(args, axis, sim["x"][sel])
        closed[sel] = deep_time_ratio(args.depth, int(lf), r, rho, u0)
        pre = sim["seed_pre"][sel, :, :lf].copy()
        pre[:, :, 0] *= chain_signs(sim["sxx"][sel], sim["syx"][sel])
        times[sel] = chain_times(sim["sxx"][sel], sim["syx"][sel], pre, sim["seed_post"][sel, :args.depth - lf],
                                 args.lr, sim["thr_a"][sel], sim["thr_b"][sel], args.epochs)
    out.update(closed=closed, chain_t_a=times[:, 0], chain_t_b=times[:, 1], chain_ratio=times[:, 1] / times[:, 0])
    return out


# ------------------------------------------------------------------ figure
def fusion_label(lf, depth):
    kind = " (early)" if lf == 1 else " (late)" if lf == depth else ""
    return f"L_f = {lf}{kind}"


def _means(sim, values, sel_base, key):
    out = []
    for x in values:
        sel = sel_base & np.isclose(sim["x"], x)
        out.append(np.mean(key[sel]) if sel.any() else np.nan)
    return np.array(out)


def _plain_log_ticks(ax):
    """Label a log axis with plain numbers (1, 1.5, 2, 3, 4, 5, 7, 10, ...) instead of powers of ten."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    lo, hi = ax.get_ylim()
    ticks = [v * 10.0 ** e for e in range(-1, 4) for v in (1, 1.5, 2, 3, 4, 5, 7)]
    ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot(sim, pred, args, axis):
    """One panel per initialisation scheme: t_B/t_A against the swept value, log y-axis."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    schemes = list(dict.fromkeys(sim["scheme"].tolist()))
    fig, axes = C.figure(1, len(schemes), width=5.4, height=4.2, sharey=True)
    values = np.array(sorted(set(sim["x"].tolist())))
    for ax, scheme in zip(axes[0], schemes):
        for j, lf in enumerate(args.fuse_depths):
            color = C.FUSION_COLORS.get(lf, f"C{j}")
            base = (sim["scheme"] == scheme) & (sim["fuse_depth"] == lf)
            ok = base & sim["kept"]
            ax.plot(sim["x"][ok], sim["time_ratio"][ok], SCHEME_MARKERS[scheme], color=color, alpha=0.3,
                    ms=3.5, mec="none")
            ax.plot(values, _means(sim, values, ok, sim["time_ratio"]), "-" + SCHEME_MARKERS[scheme],
                    color=color, ms=6, lw=1.3)
            ax.plot(pred["grid"], pred["curve"][j], **C.THEORY_STYLE)
            ax.plot(values, _means(sim, values, ok, pred["chain_ratio"]), "x", color="black", ms=7, mew=1.5)
        n_drop = int(np.sum((sim["scheme"] == scheme) & ~sim["kept"]))
        title = f"{_SCHEME_TEXT[scheme]}"
        if n_drop:
            title += f"\n{n_drop} run(s) dropped (not converged / diverged)"
        ax.set_title(title, fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel(axis.label)
        ax.grid(True, which="both", alpha=0.25)
    for ax in axes[0]:
        _plain_log_ticks(ax)
        ax.xaxis.set_major_locator(MaxNLocator(6))
    axes[0, 0].set_ylabel("time ratio t_B / t_A")
    handles = [Line2D([], [], color=C.FUSION_COLORS.get(lf, f"C{j}"), lw=1.3, label=fusion_label(lf, args.depth))
               for j, lf in enumerate(args.fuse_depths)]
    handles += [Line2D([], [], color="grey", marker=SCHEME_MARKERS[s], lw=1.3,
                       label=f"simulation, {s} init:\nmean (line), runs (dots)") for s in schemes]
    handles += [Line2D([], [], label="theory: closed form §6.6\nat u0 = init", **C.THEORY_STYLE),
                Line2D([], [], color="black", marker="x", ls="none", mew=1.5,
                       label="theory: exact chain map from\neach run's initial top singular\nvalues per layer (mean)")]
    fig.legend(handles=handles, fontsize=8, loc="outside right upper")
    fixed = {"rho": f"ρ = {args.rho:g}", "ratio": f"r = {args.ratio:g}", "scale": f"u0 = {args.scale:g}"}
    fixed.pop(axis.key)
    conv = ("t_A: epoch nearest ½ W_A^uni, t_B: epoch nearest ½ max W_B (paper, §7)" if args.convention == "paper"
            else "t_A, t_B: first crossing of ½ W_A^uni, ½ W_B(M_*), interpolated (§7)")
    fig.suptitle(f"Figure {axis.figure}: deep fusion, L = {args.depth}, h = {args.width}, "
                 f"{', '.join(fixed.values())}, lr {args.lr:g}, {args.repeats} repeat(s)\n{conv}", fontsize=9.5)
    return fig


# ------------------------------------------------------------------ entry point
def _summary(sim, pred, args, axis):
    lines = []
    for scheme in dict.fromkeys(sim["scheme"].tolist()):
        lines.append(f"[{scheme}] wall time {sim['wall'][scheme]:.1f} s; mean t_B/t_A: "
                     "simulation / chain map from the runs' seeds / closed form")
        head = f"  {axis.symbol:>6} " + " ".join(f"{'L_f=' + str(lf):>22}" for lf in args.fuse_depths)
        lines.append(head)
        for x in sorted(set(sim["x"].tolist())):
            cells = []
            for lf in args.fuse_depths:
                sel = (sim["scheme"] == scheme) & (sim["fuse_depth"] == lf) & np.isclose(sim["x"], x)
                ok = sel & sim["kept"]
                if ok.any():
                    cells.append(f"{np.mean(sim['time_ratio'][ok]):6.3f}/{np.mean(pred['chain_ratio'][ok]):6.3f}"
                                 f"/{np.mean(pred['closed'][sel]):6.3f}")
                else:
                    cells.append(f"{'no run kept':>20}")
            lines.append(f"  {x:6.3f} " + " ".join(f"{c:>22}" for c in cells))
        epochs = sim["final_epoch"][sim["scheme"] == scheme]
        lines.append(f"  epochs per run: median {np.median(epochs):.0f}, max {np.max(epochs):.0f}, "
                     f"total {np.sum(epochs):.0f}; dropped {int(np.sum((sim['scheme'] == scheme) & ~sim['kept']))}")
    return "\n".join(lines)


def main(axis, argv=None):
    """Parse, simulate, predict, plot, save and summarise one deep-fusion sweep."""
    p = sweep_parser(axis)
    args = C.finish_args(p, argv, check=lambda a: _check_sweep(a, axis))
    with C.Timer() as total:
        sim = run(args, axis)
        pred = predict(args, axis, sim)
        fig = plot(sim, pred, args, axis)
    table = [dict(r, closed_ratio=float(c), chain_t_a=float(ta), chain_t_b=float(tb), chain_ratio=float(cr))
             for r, c, ta, tb, cr in zip(sim["table"], pred["closed"], pred["chain_t_a"], pred["chain_t_b"],
                                         pred["chain_ratio"])]
    arrays = {k: v for k, v in sim.items() if k not in ("table", "wall")}
    arrays.update({f"pred_{k}": v for k, v in pred.items()})
    config = dict(vars(args), axis=axis.key, figure=axis.figure, wall_seconds=sim["wall"])
    C.save(args.out, axis.name, fig=fig, formats=args.formats, arrays=arrays, config=config, table=table)
    C.show_or_close(fig, args)
    print(f"Figure {axis.figure} ({axis.name}): t_B/t_A against {axis.symbol}, L = {args.depth}, "
          f"convention '{args.convention}'")
    print(_summary(sim, pred, args, axis))
    print(f"wrote {args.out}/{axis.name}.* in {total.seconds:.1f} s")
    return 0
