"""Figure 2 generalised: one fusion network of any depth, fusion layer, activation, loss and data.

The original code's ``--sweep single`` for every configuration the specialised figure modules
do not cover (``python -m sims`` sends them here): a shallow net (L = 1), deep or intermediate
fusion (any L, L_f), leaky-ReLU nets, biases, weight decay, the exponential and logistic
losses, and the toy, "multi" and XOR + linear data sets (THEORY.md §3a, §3b, §3d). One
network ``FusionNet((d_A, d_B), 1, width, depth, fuse_depth, slope, bias)`` is trained by
full-batch gradient descent (:func:`linfusion.train`) from the scheme ``--init`` at scale
``--scale`` (``entry``: every weight N(0, scale²), the paper's two-layer nets with 1e-9;
``layer``: per-layer Frobenius norm, the paper's deep nets with 0.1, THEORY.md §5).

Panels: the training loss over epochs; each modality's end-to-end weights W_A^tot, W_B^tot
(the signed scalar for the toy data's scalar modalities, the Frobenius norm otherwise,
:func:`linfusion.analysis.modality_signal`); the generalisation error E_g with the population
Σ and W* when the data set has them (toy, multi) and the network is linear; with
``--features`` the hidden units' first-layer weights (toy: the (x_A, x_B) plane with the Σyx
direction, along which early-fusion units align while small, §6.2; XOR: the (x_B1, x_B2)
plane coloured by each unit's x_A weight, with the four XOR directions); with ``--contour``
the network's output over the input plane (toy: (x_A, x_B), with the teacher's contours;
XOR: (x_B1, x_B2) at x_A = 0, with the corners' XOR targets).

Theory (black, dotted), where it holds exactly, i.e. for linear networks with the squared
loss and no biases: the fixed points of THEORY.md §6.1 on the run's *empirical* moments
(:mod:`theory.fixed_points`): loss levels L(M_0), L(M_*) and, when the modalities are fused
after the first layer (L_f >= 2, so that each modality's path can be switched off alone),
the unimodal plateau L(M_A) and W_A(M_A) = Σyx_A Σ_A⁻¹; the end values W(M_*); their E_g.
The summary prints the measured t_A, t_B (first upward crossing of ½ W_A(M_A) and ½ W_B(M_*),
interpolated: convention 'interp', THEORY.md §7) against the closed-form time ratio
(:func:`theory.deep.deep_time_ratio_vector` at u0 = scale: §6.3 for L_f = L, §6.6 otherwise;
1 for L_f = 1). With weight decay the fixed points move (ridge); the levels drawn ignore it.

ReLU networks (slope 0): W^tot is bookkeeping (the product of the weight matrices, ignoring
φ); on a linear target it converges to ≈ 2× the linear coefficients, and the times double
(THEORY.md §6.9), so t_A, t_B are measured at doubled thresholds; no levels are drawn.

Exponential and logistic losses are margin losses on labels ±1: the network is trained on
sign(y) of the chosen data (y = 0 counts as +1), without population statistics, so no E_g
and no theory is drawn.

Randomness: ``np.random.SeedSequence(seed)`` has two children, the data (0) and the initial
weights (1). At n < D (multi data) the empirical Σ is singular; the fixed points are then
the minimum-norm least-squares solutions (:mod:`theory.fixed_points` accepts a
positive semi-definite Σ).

Run ``python -m sims.single --depth 4 --fuse-depth 2 --init layer --scale 0.1 --epochs 8000``
(intermediate fusion), ``python -m sims.single --slope 0`` (ReLU late fusion), ``python -m
sims.single --data xor --slope 0 --fuse-depth 1 --features --contour`` (XOR, early fusion).
"""
from __future__ import annotations

import sys

import numpy as np

from linfusion import FusionNet, train
from linfusion.analysis import measure, modality_signal
from linfusion.data import from_arrays, multi, toy, xor_linear
from theory.deep import deep_time_ratio_vector
from theory.fixed_points import early_fixed_points, generalization_error, late_fixed_points

from . import _common as C
from .xor import XOR_DIRECTIONS, unit_weights

NAME = "single"
DATA = ("toy", "multi", "xor")
#: --quick: fewer samples and units (explicit options still win)
QUICK = {"n": 512, "width": 20}
LEVEL_STYLE = dict(C.THEORY_STYLE, linestyle=":")
CONVENTION = ("t_A, t_B: first upward crossing of ½W_A(M_A), ½W_B(M_*) of the empirical moments "
              "(×2 for ReLU, §6.9), interpolated (THEORY §7, 'interp')")
_POINT_NAMES = {(): "M_0", (0,): "M_A", (1,): "M_B", (0, 1): "M_*"}


# ---------------------------------------------------------------------- command line
def build_parser():
    """The command-line options (``python -m sims.single --help``)."""
    p = C.base_parser(NAME, __doc__.splitlines()[0])
    g = p.add_argument_group("data")
    g.add_argument("--data", default="toy", choices=DATA,
                   help="toy: THEORY §3a; multi: §3b (A = first half, variance 3); xor: XOR + linear, §3d")
    g.add_argument("--rho", type=float, default=0.0, help="toy: correlation of x_A and x_B, in (-1, 1)")
    g.add_argument("--ratio", type=float, default=2.0, help="toy: sigma_A / sigma_B (> 0)")
    g.add_argument("--dim", type=int, default=100, help="multi: total input dimension D (even)")
    g.add_argument("--sigma-a", type=float, default=1.0,
                   help="xor: standard deviation of the linear modality x_A (not its variance)")
    g.add_argument("--n", type=int, default=8192, help="number of samples (xor: a multiple of 4)")
    g.add_argument("--noise", type=float, default=0.0, help="toy, multi: label-noise standard deviation")
    g = C.add_train_args(p)
    g.add_argument("--fuse-depth", type=int, default=None,
                   help="fusion layer L_f, 1 <= L_f <= depth (1: early fusion; default: depth, late fusion). "
                        "Deep nets as in the paper: --depth 4 --init layer --scale 0.1")
    g = p.add_argument_group("extra panels")
    g.add_argument("--features", action="store_true",
                   help="draw the hidden units' first-layer weights at the end (toy or xor data, depth >= 2)")
    g.add_argument("--contour", action="store_true",
                   help="draw the network's output over the input plane at the end (toy or xor data)")
    return p


def _check(args):
    if args.fuse_depth is None:
        args.fuse_depth = args.depth
    for opt, value, lo in (("--depth", args.depth, 1), ("--width", args.width, 1), ("--n", args.n, 1),
                           ("--record-every", args.record_every, 1)):
        if value < lo:
            raise ValueError(f"{opt} {value}: must be >= {lo}")
    if not 1 <= args.fuse_depth <= args.depth:
        raise ValueError(f"--fuse-depth {args.fuse_depth}: must lie in 1..depth ({args.depth})")
    if not 0.0 <= args.slope <= 1.0:
        raise ValueError(f"--slope {args.slope!r}: must lie in [0, 1] (1 linear, 0 ReLU)")
    for opt, value in (("--noise", args.noise), ("--weight-decay", args.weight_decay), ("--tol", args.tol)):
        if not value >= 0:
            raise ValueError(f"{opt} {value!r}: must be >= 0")
    if args.data == "multi" and (args.dim < 2 or args.dim % 2):
        raise ValueError(f"--dim {args.dim}: must be even and >= 2 (two halves, one per modality)")
    if args.data == "xor":
        if args.n < 4 or args.n % 4:
            raise ValueError(f"--n {args.n}: must be a positive multiple of 4 with --data xor "
                             "(each XOR corner n/4 times)")
        if not args.sigma_a > 0:
            raise ValueError(f"--sigma-a {args.sigma_a!r}: must be > 0")
    if (args.features or args.contour) and args.data == "multi":
        raise ValueError("--features / --contour: need a two-dimensional input plane, i.e. --data toy or xor")
    if args.features and args.depth < 2:
        raise ValueError(f"--features with --depth {args.depth}: a one-layer net has no hidden units")
    args.linear_theory = args.slope == 1.0 and not args.bias and args.loss == "mse"


def parse(argv=None):
    """Parsed and checked arguments; ``--quick`` changes the defaults in :data:`QUICK`."""
    return C.parse_quick(build_parser(), argv, QUICK, _check)


# ---------------------------------------------------------------------- data and network
def dataset(args):
    """The training set of the run, from child 0 of ``SeedSequence(args.seed)``.

    With the exponential or logistic loss the targets are sign(y) (labels ±1) and the
    population statistics are dropped.
    """
    rng = np.random.SeedSequence(args.seed).spawn(2)[0]
    if args.data == "toy":
        ds = toy(args.rho, args.ratio, args.n, args.noise, rng=rng)
    elif args.data == "multi":
        ds = multi(args.dim, args.n, args.noise, rng=rng)
    else:
        ds = xor_linear(args.sigma_a, args.n, rng=rng)
    if args.loss != "mse":
        ds = from_arrays(ds.xs, np.where(ds.y >= 0.0, 1.0, -1.0))
    return ds


def network(args, ds):
    """The FusionNet of the run."""
    return FusionNet(ds.in_dims, 1, args.width, args.depth, args.fuse_depth, args.slope, args.bias)


def network_output(net, w, xs):
    """The network's output ŷ on inputs ``xs`` (per modality), with its activation and biases.

    Parameters
    ----------
    net : FusionNet
    w : ndarray of shape (n_params,)
    xs : sequence of ndarray of shape (m, d_k)

    Returns
    -------
    ndarray of shape (m, out_dim)
    """
    def phi(z):
        return np.where(z > 0.0, z, net.slope * z)

    def layer(h, modality, index):
        z = h @ net.blocks(w, modality=modality, layer=index)[0].T          # (m, rows)
        if net.bias:
            z = z + net.blocks(w, modality=modality, layer=index, kind=1)[0]
        return z

    hs = [np.asarray(x, dtype=float) for x in xs]
    for index in range(1, net.fuse_depth):
        hs = [phi(layer(h, k, index)) for k, h in enumerate(hs)]
    z = sum(h @ net.blocks(w, modality=k, layer=net.fuse_depth)[0].T for k, h in enumerate(hs))
    if net.bias:
        z = z + net.blocks(w, modality=-1, layer=net.fuse_depth, kind=1)[0]
    for index in range(net.fuse_depth + 1, net.depth + 1):
        z = layer(phi(z), -1, index)      # φ after every layer but the last
    return z


def _signal(block):
    """modality_signal of one (out, d_k) block: the signed scalar or the norm."""
    return float(modality_signal(np.asarray(block)[None])[0])


# ---------------------------------------------------------------------- theory
def predict(args):
    """Fixed points on the run's empirical moments, and the closed-form time ratio.

    The fixed points hold for linear nets with the squared loss and no bias (THEORY §6.1);
    the time ratio also for ReLU nets on the toy and multi data, whose ratio is essentially
    the linear one (§6.9).

    Returns
    -------
    dict
        Empty when no theory applies. ``time_ratio``: closed form (NaN where it does not
        apply). Linear nets also: ``points`` (names, e.g. 'M_0', 'M_A', 'M_B', 'M_*' for
        L_f >= 2, 'M_0', 'M_*' for L_f = 1), ``level_loss``, ``level_w_a``, ``level_w_b``
        (signals of each point's blocks) and, with population statistics, ``level_eg``;
        ``wa_uni`` (signal of W_A(M_A), the unimodal plateau).
    """
    relu_linear_target = args.slope == 0.0 and args.data != "xor"
    if args.loss != "mse" or args.bias or not (args.linear_theory or relu_linear_target):
        return {}
    ds = dataset(args)
    mo = ds.moments()
    pred = dict(time_ratio=np.nan)
    if args.depth >= 2:
        if args.fuse_depth == 1:
            pred["time_ratio"] = 1.0        # early fusion: one transition (§6.2, §6.6)
        elif args.fuse_depth == args.depth or args.scale < 1.0:
            u0 = args.scale if args.scale < 1.0 else 0.5    # L_f = L: independent of u0 (§6.6)
            try:
                pred["time_ratio"] = deep_time_ratio_vector(args.depth, args.fuse_depth, mo.sxx, mo.syx,
                                                            ds.in_dims, u0)
            except ValueError:              # B first on these statistics: no A-then-B ratio
                pass
    if not args.linear_theory:
        return pred
    late = late_fixed_points(mo.sxx, mo.syx, mo.syy, ds.in_dims)
    points = (late if args.fuse_depth >= 2 and args.depth >= 2
              else early_fixed_points(mo.sxx, mo.syx, mo.syy, ds.in_dims))
    pred.update(points=np.array([_POINT_NAMES[p.learned] for p in points]),
                level_loss=np.array([p.loss for p in points]),
                level_w_a=np.array([_signal(p.block(0)) for p in points]),
                level_w_b=np.array([_signal(p.block(1)) for p in points]),
                wa_uni=_signal(late[1].block(0)))
    if ds.sigma is not None and ds.w_star is not None:
        pred["level_eg"] = np.array([generalization_error(ds.sigma, ds.w_star, p.w_tot) for p in points])
    return pred


# ---------------------------------------------------------------------- simulation
def _plane(args):
    """Grid of the contour panel: its two axes and the inputs per modality, shape (m, d_k)."""
    if args.data == "xor":
        u = np.linspace(-1.6, 1.6, 81)
        g1, g2 = np.meshgrid(u, u)
        xs = [np.zeros((g1.size, 1)), np.stack([g1.ravel(), g2.ravel()], axis=1)]
        return u, u, xs
    a = np.linspace(-3.0 * args.ratio, 3.0 * args.ratio, 81)
    b = np.linspace(-3.0, 3.0, 81)
    ga, gb = np.meshgrid(a, b)
    return a, b, [ga.ravel()[:, None], gb.ravel()[:, None]]


def _features(net, w, args):
    """First-layer weights of the hidden units in the input plane, and a colour value per unit.

    Toy data: rows (weight on x_A, weight on x_B); with L_f >= 2 the A-branch units lie on
    the x_A axis and the B-branch units on the x_B axis; colour = branch (0 A, 1 B, -1 shared).
    XOR data: the (x_B1, x_B2) weights of the units that see x_B, coloured by their x_A weight.
    """
    if args.data == "xor":
        return unit_weights(net, w)
    a = net.blocks(w, modality=0, layer=1)[0][:, 0]
    b = net.blocks(w, modality=1, layer=1)[0][:, 0]
    if net.fuse_depth == 1:
        return np.stack([a, b], axis=1), np.full(a.size, -1.0)
    zero = np.zeros_like(a)
    units = np.concatenate([np.stack([a, zero], axis=1), np.stack([zero, b], axis=1)])
    return units, np.concatenate([np.zeros(a.size), np.ones(b.size)])


def run(args):
    """Train the network and measure it.

    t_A and t_B are measured (THEORY §7, 'interp') for linear and ReLU nets with the squared
    loss and no bias on the toy and multi data: first upward crossings of ½W_A(M_A) and
    ½W_B(M_*) on the empirical moments, doubled for ReLU (§6.9).

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    dict
        ``epochs``, ``loss``, ``w_a``, ``w_b`` (signals, n_rec), ``w_tot`` (n_rec, D), ``eg``
        (n_rec; linear nets with population statistics only), ``diverged``, ``message``,
        ``path``, ``status``, ``w`` (final weights); ``t_a``, ``t_b``, ``ratio`` (NaN when not
        measured or not reached), ``plateau_epoch``, ``plateau_loss`` (the record nearest
        (t_A + t_B)/2); with ``--features`` ``units`` (n_units, 2) and ``unit_color``
        (n_units,); with ``--contour`` ``plane_x`` (81,), ``plane_y`` (81,), ``plane_out`` (81, 81).
    """
    ds = dataset(args)
    net = network(args, ds)
    init_rng = np.random.SeedSequence(args.seed).spawn(2)[1]
    res = train(net, ds, lr=args.lr, epochs=args.epochs, init=args.init, scale=args.scale, rng=init_rng,
                loss=args.loss, weight_decay=args.weight_decay, record_every=args.record_every, tol=args.tol)
    sim = dict(epochs=res.epochs, loss=res.loss, w_a=modality_signal(res.w_tot[0]),
               w_b=modality_signal(res.w_tot[1]), w_tot=res.w_tot_all[:, 0, :], diverged=res.diverged,
               message=res.message, path=res.path, status=res.status, w=res.w,
               t_a=np.nan, t_b=np.nan, ratio=np.nan, plateau_epoch=np.nan, plateau_loss=np.nan)
    if res.diverged:
        return sim
    if res.eg is not None and args.slope == 1.0 and not args.bias:
        sim["eg"] = res.eg
    if args.loss == "mse" and args.data != "xor" and args.depth >= 2 and not args.bias and args.slope in (0.0, 1.0):
        # thresholds from the known end points (THEORY §7): ½W_A(M_A) and ½W_B(M_*) of the
        # empirical moments, doubled for ReLU, whose W_tot converges to ≈ 2x on a linear target (§6.9)
        mo = ds.moments()
        m_a, m_star = late_fixed_points(mo.sxx, mo.syx, mo.syy, ds.in_dims)[1::2]
        m = measure(res, wa_uni=_signal(m_a.block(0)), wb_star=_signal(m_star.block(1)), convention="interp",
                    relu=args.slope == 0.0)
        sim.update(t_a=m["t_a"], t_b=m["t_b"], ratio=m["ratio"])
        if np.isfinite(m["t_a"]) and np.isfinite(m["t_b"]):
            i = int(np.argmin(np.abs(res.epochs - 0.5 * (m["t_a"] + m["t_b"]))))
            sim.update(plateau_epoch=float(res.epochs[i]), plateau_loss=float(res.loss[i]))
    if args.features:
        sim["units"], sim["unit_color"] = _features(net, res.w, args)
    if args.contour:
        px, py, xs = _plane(args)
        sim.update(plane_x=px, plane_y=py, plane_out=network_output(net, res.w, xs)[:, 0].reshape(py.size, px.size))
    return sim


# ---------------------------------------------------------------------- figure
def describe(args):
    """One line naming the network, the data and the training."""
    kind = ("shallow (L = 1)" if args.depth == 1 else "early fusion" if args.fuse_depth == 1
            else "late fusion" if args.fuse_depth == args.depth else "intermediate fusion")
    act = "linear" if args.slope == 1.0 else "ReLU" if args.slope == 0.0 else f"leaky ReLU {args.slope:g}"
    data = {"toy": f"toy r = {args.ratio:g}, ρ = {args.rho:g}", "multi": f"multi D = {args.dim}",
            "xor": f"XOR + linear σ_A = {args.sigma_a:g} (std)"}[args.data]
    extras = ", bias" * args.bias + (f", weight decay {args.weight_decay:g}" if args.weight_decay else "")
    noise = f", noise {args.noise:g}" if args.noise and args.data != "xor" else ""
    target = "" if args.loss == "mse" else f" on sign(y), {args.loss} loss"
    return (f"L = {args.depth}, L_f = {args.fuse_depth} ({kind}), {act}{extras}, width {args.width}; {data}, "
            f"n = {args.n}{noise}{target}; init {args.init} {args.scale:g}, lr {args.lr:g}")


def _levels(ax, pairs, x_end, log=False):
    """Dotted horizontal theory levels, each labelled at the right end with its name and value.

    Labels of levels that nearly coincide are stacked upwards instead of overprinted.
    """
    pairs = sorted(pairs, key=lambda p: p[1])
    values = np.array([v for _, v in pairs])
    scale = np.log10(np.maximum(values, 1e-300)) if log else values
    lo, hi = ax.get_ylim()
    span = np.log10(hi / lo) if log else hi - lo
    stack, previous = 0, None
    for (name, value), pos in zip(pairs, scale):
        ax.axhline(value, **LEVEL_STYLE)
        stack = stack + 1 if previous is not None and pos - previous < 0.04 * span else 0
        previous = pos
        ax.annotate(f"${name}$: {value:.4g}", (x_end, value), xytext=(0, 1 + 8 * stack),
                    textcoords="offset points", ha="right", va="bottom", fontsize=7)


def _point_levels(pred, key, names):
    return [(p, v) for p, v in zip(pred["points"], pred[key]) if p in names]


def _times(ax, sim):
    for key, color in (("t_a", C.COLORS["a"]), ("t_b", C.COLORS["b"])):
        if np.isfinite(sim[key]):
            ax.axvline(sim[key], color=color, linewidth=0.9, linestyle="-", alpha=0.8)


def plot(sim, pred, args):
    """Loss, end-to-end weights, E_g and the optional feature and contour panels."""
    panels = ["loss", "weights"] + ["eg"] * ("eg" in sim) + ["features"] * args.features \
        + ["contour"] * args.contour
    ncols = min(3, len(panels))
    fig, axes = C.figure(-(-len(panels) // ncols), ncols, width=4.3, height=3.4)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    ax_of = dict(zip(panels, axes.ravel()))
    ep = sim["epochs"]
    x_end = float(ep[-1])
    band = dict(linewidth=2.6, alpha=0.75)
    late_levels = ("M_0", "M_A", "M_*") if args.fuse_depth >= 2 and args.depth >= 2 else ("M_0", "M_*")

    ax = ax_of["loss"]
    ax.plot(ep, sim["loss"], color="0.3", label="training loss (simulation)", **band)
    if "points" in pred:
        _levels(ax, _point_levels(pred, "level_loss", late_levels), x_end)
        ax.plot([], [], **LEVEL_STYLE, label="theory: fixed-point levels (§6.1)")
    elif args.data == "xor" and args.loss == "mse":
        # one part fitted exactly, the other not at all: ½ var(XOR part) = ½, ½ var(x_A) = ½σ_A²
        _levels(ax, [("linear\\ part\\ only", 0.5), ("XOR\\ part\\ only", 0.5 * args.sigma_a ** 2)], x_end)
        ax.plot([], [], **LEVEL_STYLE, label="one part learned (population, §3d)")
    _times(ax, sim)
    ax.set_xlabel(f"epoch  (τ = 1/lr = {1 / args.lr:g} epochs)")
    ax.set_ylabel({"mse": "loss ½⟨(y − ŷ)²⟩", "exponential": "loss ⟨exp(−yŷ)⟩",
                   "logistic": "loss ⟨log(1 + exp(−yŷ))⟩"}[args.loss])
    ax.legend(fontsize=7, loc="best")

    ax = ax_of["weights"]
    what = "signed" if sim["w_tot"].shape[1] == 2 else "norm"
    ax.plot(ep, sim["w_a"], color=C.COLORS["a"], label=f"$W_A^{{tot}}$ ({what})", **band)
    ax.plot(ep, sim["w_b"], color=C.COLORS["b"], label=f"$W_B^{{tot}}$ ({what})", **band)
    if "points" in pred:
        pairs = [("W_A(M_A)", pred["wa_uni"])] if "M_A" in late_levels else []
        _levels(ax, pairs + [("W_A(M_*)", pred["level_w_a"][-1]), ("W_B(M_*)", pred["level_w_b"][-1])], x_end)
        ax.plot([], [], **LEVEL_STYLE, label="theory: fixed points (§6.1)")
    _times(ax, sim)
    if np.isfinite(sim["t_a"]):
        ax.plot([], [], color="0.4", linewidth=0.9, label="measured $t_A$, $t_B$")
    if args.slope != 1.0:
        ax.set_title("nonlinear net: $W^{tot}$ is bookkeeping (weights' product, φ ignored);\n"
                     "ReLU on a linear target: → ≈ 2× the coefficients (THEORY §6.9)", fontsize=7.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("end-to-end weight")
    ax.legend(fontsize=7, loc="best")

    if "eg" in ax_of:
        ax = ax_of["eg"]
        ax.plot(ep, sim["eg"], color=C.COLORS["eg"], label="$E_g$ (simulation)", **band)
        ax.set_yscale("log")
        top = float(np.max(sim["eg"]))
        ax.set_ylim(max(ax.get_ylim()[0], 1e-12 * top), 3.0 * top)    # rounding-level tails add nothing
        if "level_eg" in pred:
            _levels(ax, _point_levels(pred, "level_eg", late_levels), x_end, log=True)
            ax.plot([], [], **LEVEL_STYLE, label="theory: $E_g$ at the fixed points")
        ax.set_xlabel("epoch")
        ax.set_ylabel("$E_g$ = ½(W − W*) Σ (W − W*)ᵀ, population")
        ax.legend(fontsize=7, loc="best")

    if "features" in ax_of:
        _feature_panel(ax_of["features"], sim, args)
    if "contour" in ax_of:
        _contour_panel(ax_of["contour"], sim, args)
    title = describe(args)
    if np.isfinite(sim["t_a"]):
        title += "\n" + CONVENTION
    fig.suptitle(title, fontsize=8.5)
    return fig


def _feature_panel(ax, sim, args):
    units, color = sim["units"], sim["unit_color"]
    lim = 1.15 * max(float(np.max(np.abs(units))), 1e-300)
    if args.data == "xor":
        vmax = max(float(np.max(np.abs(color))), 1e-300)
        for d in XOR_DIRECTIONS:
            ax.plot([0, 2 * lim * d[0]], [0, 2 * lim * d[1]], **dict(C.THEORY_STYLE, linewidth=0.8))
        sc = ax.scatter(units[:, 0], units[:, 1], c=color, cmap="coolwarm", vmin=-vmax, vmax=vmax, s=16,
                        edgecolors="black", linewidths=0.3, zorder=3)
        ax.figure.colorbar(sc, ax=ax, shrink=0.8, label="unit's weight on $x_A$")
        ax.plot([], [], **dict(C.THEORY_STYLE, linewidth=0.8), label="XOR directions (±1, ±1)")
        ax.set_xlabel("first-layer weight on $x_{B1}$")
        ax.set_ylabel("first-layer weight on $x_{B2}$")
    else:
        for value, c, label in ((0, C.COLORS["a"], "A-branch units"), (1, C.COLORS["b"], "B-branch units"),
                                (-1, C.COLORS["early"], "hidden units")):
            sel = color == value
            if np.any(sel):
                ax.scatter(units[sel, 0], units[sel, 1], s=12, color=c, alpha=0.7, label=label)
        if args.fuse_depth == 1:
            syx = dataset(args).moments().syx[0]
            d = syx / np.linalg.norm(syx)
            ax.plot([-lim * d[0], lim * d[0]], [-lim * d[1], lim * d[1]], **C.THEORY_STYLE,
                    label="Σyx direction (units align while small, §6.2)")
        ax.set_xlabel("first-layer weight on $x_A$")
        ax.set_ylabel("first-layer weight on $x_B$")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.ticklabel_format(style="sci", scilimits=(-2, 3))
    ax.set_title(f"hidden units at epoch {int(sim['epochs'][-1])}", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower left")


def _contour_panel(ax, sim, args):
    px, py, out = sim["plane_x"], sim["plane_y"], sim["plane_out"]
    vmax = max(float(np.max(np.abs(out))), 1e-300)
    cs = ax.contourf(px, py, out, levels=21, cmap="coolwarm", vmin=-vmax, vmax=vmax)
    ax.figure.colorbar(cs, ax=ax, shrink=0.8, label="network output ŷ")
    if args.data == "xor":
        corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)
        for c in corners:
            ax.plot(*c, "o", mfc="none", mec="black", ms=9)
            ax.annotate(f"{-c[0] * c[1]:+g}", c, xytext=(0, 8), textcoords="offset points", ha="center",
                        fontsize=8)
        ax.plot([], [], "o", mfc="none", mec="black", label="XOR corners, target $-x_{B1}x_{B2}$")
        ax.set_xlabel("$x_{B1}$")
        ax.set_ylabel("$x_{B2}$")
        ax.set_title("output over the XOR plane at $x_A$ = 0", fontsize=9)
    else:
        ga, gb = np.meshgrid(px, py)
        ax.contour(px, py, ga + gb, levels=9, colors="black", linestyles="--", linewidths=0.7)
        ax.plot([], [], **C.THEORY_STYLE, label="teacher y = $x_A$ + $x_B$")
        ax.set_xlabel("$x_A$")
        ax.set_ylabel("$x_B$")
        ax.set_title("output over the input plane", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower left")


# ---------------------------------------------------------------------- entry point
def _f(x, fmt="{:.4g}"):
    return "n/a" if x is None or not np.isfinite(x) else fmt.format(x)


def summary(sim, pred, args, seconds):
    """Measured against predicted numbers, as printed lines."""
    lines = [f"{NAME}: {describe(args)}, {args.epochs} epochs ({sim['path']} path)", f"  run {sim['message']}"]
    if "points" in pred:
        names = list(pred["points"])
        star = names.index("M_*")
        lines.append(f"  final loss {sim['loss'][-1]:.4g}   L(M_*) = {pred['level_loss'][star]:.4g}   "
                     f"L(M_0) = {pred['level_loss'][0]:.4g}")
        lines.append(f"  final W_A, W_B = {sim['w_a'][-1]:.4f}, {sim['w_b'][-1]:.4f}   "
                     f"M_*: {pred['level_w_a'][star]:.4f}, {pred['level_w_b'][star]:.4f}")
        if "M_A" in names:
            i = names.index("M_A")
            lines.append(f"  plateau loss at epoch {_f(sim['plateau_epoch'], '{:.0f}')}: "
                         f"{_f(sim['plateau_loss'])}   L(M_A) = {pred['level_loss'][i]:.4g}")
        if "eg" in sim and "level_eg" in pred:
            lines.append(f"  final E_g {sim['eg'][-1]:.4g}   E_g(M_*) = {pred['level_eg'][star]:.4g}")
        if args.weight_decay:
            lines.append("  (the fixed points ignore weight decay)")
    else:
        reason = ("ReLU/leaky net" if args.slope != 1.0 else "biases" if args.bias else f"{args.loss} loss")
        lines.append(f"  no fixed-point theory drawn ({reason}: THEORY §6.1 holds for linear nets, squared loss, "
                     "no bias)")
    if np.isfinite(sim["t_a"]) or np.isfinite(sim["t_b"]):
        theory = _f(pred.get("time_ratio", np.nan), "{:.3f}")
        lines.append(f"  t_A = {_f(sim['t_a'], '{:.1f}')}, t_B = {_f(sim['t_b'], '{:.1f}')} epochs; "
                     f"t_B/t_A = {_f(sim['ratio'], '{:.3f}')} measured ('interp'), {theory} closed form "
                     f"(§6.3/§6.6{', linear: ReLU ≈ linear, §6.9' if args.slope == 0.0 else ''})")
    if args.slope == 0.0 and args.data != "xor":
        lines.append("  ReLU: W_tot is bookkeeping and converges to ≈ 2× the linear coefficients (THEORY §6.9)")
    lines.append(f"  wall time {seconds:.2f} s")
    return "\n".join(lines)


def arrays(sim, pred):
    """The arrays of ``sim`` and ``pred`` for ``.npz`` (prefixes sim_, pred_)."""
    out = {f"sim_{k}": np.asarray(v) for k, v in sim.items()}
    out.update({f"pred_{k}": np.asarray(v) for k, v in pred.items()})
    return out


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    args = parse(argv)
    with C.Timer() as timer:
        sim = run(args)
        pred = predict(args)
        if sim["diverged"]:
            return C.fail(f"{NAME}: {sim['message']}")
        fig = plot(sim, pred, args)
        written = C.save(args.out, NAME, fig=fig, formats=args.formats, arrays=arrays(sim, pred), config=args)
    C.announce(summary(sim, pred, args, timer.seconds), written, fig, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
