"""Figures 2, 6, 7 and 9-14 from the original code's command line: ``python -m sims --mode ... --sweep ...``.

Every command of the original code's README runs with ``python main.py`` replaced by
``python -m sims``: the original flags (same names, defaults, choices and meanings) are
translated into the options of one experiment module, the equivalent modern command is
printed (``-> python -m sims.<module> ...``) and that module's ``main`` runs it, writing its
figure, arrays (.npz) and configuration (.json), plus ``original_command.json`` (the original
flags, the translation and its notes) in the same folder.

=========================================  ==================================================
original                                   experiment module
=========================================  ==================================================
``--sweep single``, mode early_fusion or   :mod:`sims.early_fusion` / :mod:`sims.late_fusion`
late_fusion, toy data, linear, mse, no      (figure 2; ``--reg`` -> ``--weight-decay``)
bias
``--sweep single --data multi`` (early or  :mod:`sims.generalization` at ``--n-values
late, linear, mse, no bias, no reg)         <dataset_size>`` (figure 13; draws early *and* late)
``--sweep single --data xor`` (early or    :mod:`sims.xor` at σ_A = sqrt(var_lin), no sweep
late, ``--relu`` < 1, mse, no bias/reg)     (figure 14; draws early *and* late fusion)
any other ``--sweep single`` (shallow,     :mod:`sims.single` (one run of any FusionNet;
deep_fusion, ReLU toy runs, biases,         ``--vis_feat`` -> ``--features``, ``--vis_contour``
exponential/logistic losses, weight decay   -> ``--features --contour``)
on multi, linear XOR runs, --vis_contour)
``--sweep depth_single``                   :mod:`sims.fusion_depth` (figure 9)
``--sweep toy_sweep``                      :mod:`sims.toy_sweep` (figure 6)
``--sweep rand_sweep``                     :mod:`sims.rand_sweep` (figure 7)
``--sweep rho_sweep|ratio_sweep|init_sweep``  :mod:`sims.rho_sweep`, ``ratio_sweep``, ``init_sweep``
                                           (figures 10-12)
``--sweep xor_sweep``                      :mod:`sims.xor` with its σ_A sweep (figure 14)
=========================================  ==================================================

Flag translation: ``--epoch`` -> ``--epochs``, ``--init`` -> ``--scale`` (two-layer nets: per-entry
std, scheme 'entry'; deep_fusion: per-layer Frobenius norm, scheme 'layer', THEORY.md §5),
``--hid_width`` -> ``--width``, ``--relu`` -> ``--slope``, ``--reg`` -> ``--weight-decay``,
``--dataset_size`` -> ``--n``, ``--in_dim`` -> ``--dim``, ``--repeat`` -> ``--repeats`` (``--draws``
for rand_sweep), ``--fuse_depth`` -> ``--fuse-depth``. An option is passed when its flag was given
or when the original default differs from the module's. ``--var_lin`` is read as the
*variance* of the linear modality (its name and the original help say so; the original data
code drew x_A ~ N(0, sqrt(var_lin)²)); the modules take the standard deviation
σ_A = sqrt(var_lin), which is what they record.

``--sweep toy_sweep``: ``--relu 1`` (the default) trains the linear nets only (``--no-relu``),
``--relu 0`` the ReLU nets only (``--no-linear``, with sims.toy_sweep's ``--relu-n 2048``
samples unless ``--dataset_size`` is given); the paper's figure 6 draws both: run
``python -m sims.toy_sweep``.

Flags that mean nothing for the chosen experiment are accepted (the original accepted them);
one that was given explicitly gets a one-line note saying it is ignored. A flag that would
change the science but that the chosen sweep cannot honour (e.g. ``--bias`` with a sweep) is
an error. ``--quick`` runs the module's own quick setting, which replaces the size flags
(``--epoch``, ``--repeat``, ``--dataset_size``, ``--hid_width``, ``--in_dim``). The original's
``--mode fission`` (one input, two outputs) is outside this toolkit: exit status 2 with a
message.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shlex
import sys
from dataclasses import dataclass, field

from . import _common as C

PROG = "python -m sims"
MODES = ("shallow", "early_fusion", "late_fusion", "deep_fusion", "fission")
SWEEPS = ("single", "depth_single", "toy_sweep", "rand_sweep", "rho_sweep", "ratio_sweep", "init_sweep",
          "xor_sweep")
DATA = ("toy", "multi", "xor")
LOSSES = ("mse", "exponential", "logistic")

#: the original code's defaults
ORIGINAL = dict(mode="shallow", sweep="single", data="toy", loss="mse", epoch=1000, lr=0.04, reg=0.0, init=1e-9,
                hid_width=100, relu=1.0, bias=False, dataset_size=8192, rho=0.0, ratio=2.0, var_lin=1.0,
                in_dim=20, noise=0.0, depth=4, fuse_depth=2, repeat=1, plot_weight=False, plot_Eg=False,
                vis_feat=False, vis_contour=False)
#: flags that set the size of the work; --quick replaces them with the module's quick setting
SIZE_FLAGS = ("epoch", "repeat", "dataset_size", "hid_width", "in_dim")
#: the two-layer modes (figure 2)
TWO_LAYER = ("early_fusion", "late_fusion")
#: the module of each sweep
SWEEP_MODULE = {"depth_single": "fusion_depth", "toy_sweep": "toy_sweep", "rand_sweep": "rand_sweep",
                "rho_sweep": "rho_sweep", "ratio_sweep": "ratio_sweep", "init_sweep": "init_sweep",
                "xor_sweep": "xor"}
#: sweeps and the mode they need (the original's sweeps were written for these networks)
SWEEP_MODE = {"toy_sweep": ("late_fusion",), "rand_sweep": ("late_fusion",), "depth_single": ("deep_fusion",),
              "rho_sweep": ("deep_fusion",), "ratio_sweep": ("deep_fusion",), "init_sweep": ("deep_fusion",)}
#: THEORY.md §10 figure of each module, for messages and the docs table
FIGURE = {"early_fusion": "2 (early fusion)", "late_fusion": "2 (late fusion)", "generalization": "13",
          "xor": "14", "single": "2, generalised (one run)", "fusion_depth": "9", "toy_sweep": "6",
          "rand_sweep": "7", "rho_sweep": "10", "ratio_sweep": "11", "init_sweep": "12"}


EPILOG = """\
mapping (--sweep, --mode, --data -> module; THEORY.md §10 figure):
  single, early|late_fusion, toy, --relu 1, mse, no --bias -> sims.early_fusion / sims.late_fusion (2)
  single, early|late_fusion, multi, linear mse, no --reg   -> sims.generalization --n-values <dataset_size> (13)
  single, early|late_fusion, xor, --relu < 1, mse          -> sims.xor --sigma-a sqrt(var_lin), no sweep (14)
  single, anything else (shallow, deep_fusion, ReLU toy, --bias, exponential/logistic,
          linear XOR, --vis_contour, ...)                    -> sims.single (one run, figure 2 generalised)
  depth_single (deep_fusion)                               -> sims.fusion_depth (9)
  toy_sweep (late_fusion)                                  -> sims.toy_sweep (6): --relu 1 linear nets only,
                                                              --relu 0 ReLU only; both (the paper's figure):
                                                              python -m sims.toy_sweep
  rand_sweep (late_fusion)                                 -> sims.rand_sweep, --repeat -> --draws (7)
  rho_sweep | ratio_sweep | init_sweep (deep_fusion)       -> sims.rho_sweep | ratio_sweep | init_sweep (10-12)
  xor_sweep                                                -> sims.xor with its sigma_A sweep (14)
  --mode fission                                           -> not supported (exit status 2)

--var_lin is read as a variance (sigma_A = sqrt(var_lin) is passed on and recorded). Options are
passed when their flag is given or the original default differs from the module's; a flag the
experiment does not use gets a note when given. --quick uses the module's quick setting in place
of --epoch, --repeat, --dataset_size, --hid_width and --in_dim. Each run also writes
original_command.json (original flags, modern command, notes) next to its results.
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, the mapping table kept as written."""


class _Unset:
    """Default of an original flag: its value, marked as not given on the command line."""

    def __init__(self, value):
        self.value = value

    def __str__(self):                   # what --help shows as the default
        return str(self.value)


# ---------------------------------------------------------------------- command line
def build_parser():
    """The original code's flags (same names, defaults and choices) and the toolkit's output options."""
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, epilog=EPILOG,
        description=__doc__.splitlines()[0] + "\nTranslates the original flags into one experiment module's "
                    "options, prints that command\n(-> python -m sims.<module> ...) and runs it. See "
                    "python -m sims.<module> --help for each experiment.")

    def flag(group, name, **kw):
        group.add_argument(f"--{name}", default=_Unset(ORIGINAL[name]), **kw)

    g = p.add_argument_group("experiment (the original flags)")
    flag(g, "mode", choices=MODES, help="network: shallow (one layer), early_fusion / late_fusion (two layers), "
                                         "deep_fusion (--depth, --fuse_depth); fission is not supported")
    flag(g, "sweep", choices=SWEEPS, help="single run or one of the paper's sweeps (see the mapping below)")
    flag(g, "data", choices=DATA, help="toy (THEORY §3a), multi (§3b; rand_sweep: random covariances §3c), "
                                        "xor (XOR + linear, §3d)")
    flag(g, "loss", choices=LOSSES, help="exponential / logistic: margin losses, trained on sign(y)")
    g = p.add_argument_group("training")
    flag(g, "epoch", type=int, help="number of epochs (sweeps: the maximum; they stop at loss < 1e-4)")
    flag(g, "lr", type=float, help="learning rate")
    flag(g, "reg", type=float, help="weight decay")
    flag(g, "init", type=float, help="initialisation scale (two-layer: per-entry std; deep_fusion: per-layer "
                                      "Frobenius norm)")
    flag(g, "hid_width", type=int, help="hidden width")
    flag(g, "relu", type=float, help="leaky-ReLU negative slope: 1 linear, 0 ReLU (toy_sweep: 1 linear nets "
                                      "only, 0 ReLU nets only; run python -m sims.toy_sweep for both)")
    flag(g, "bias", action="store_true", help="biases in every layer")
    g = p.add_argument_group("data")
    flag(g, "dataset_size", type=int, help="number of samples")
    flag(g, "rho", type=float, help="toy: correlation of x_A and x_B")
    flag(g, "ratio", type=float, help="toy: sigma_A / sigma_B")
    flag(g, "var_lin", type=float, help="xor: VARIANCE of the linear modality x_A (passed on as the standard "
                                         "deviation sigma_A = sqrt(var_lin))")
    flag(g, "in_dim", type=int, help="multi: total input dimension D")
    flag(g, "noise", type=float, help="label-noise standard deviation")
    g = p.add_argument_group("deep fusion and sweeps")
    flag(g, "depth", type=int, help="deep_fusion: total depth L")
    flag(g, "fuse_depth", type=int, help="deep_fusion --sweep single: fusion layer L_f")
    flag(g, "repeat", type=int, help="repeats per sweep point (rand_sweep: accepted draws)")
    g = p.add_argument_group("figure panels (the original's switches; the modules draw their panels anyway)")
    flag(g, "plot_weight", action="store_true", help="end-to-end weights")
    flag(g, "plot_Eg", action="store_true", help="generalisation error (multi data; sims.single: toy too)")
    flag(g, "vis_feat", action="store_true", help="hidden-unit features (sims.single: --features)")
    flag(g, "vis_contour", action="store_true", help="network output over the input plane (sims.single: "
                                                      "--contour; implies --vis_feat)")
    g = p.add_argument_group("output (this toolkit's options, passed to the module)")
    g.add_argument("--out", default=None, help="output folder (default: the module's results/<name>/, with a "
                                               "subfolder per setting for single runs)")
    g.add_argument("--seed", type=int, default=None, help="master seed (default: the module's, 0)")
    g.add_argument("--quick", action="store_true", help="the module's small setting (replaces the size flags)")
    g.add_argument("--workers", type=int, default=None, help="sweeps: worker processes (default: all cores)")
    g.add_argument("--force", action="store_true", help="sweeps: recompute points already in the cache")
    g.add_argument("--show", action="store_true", help="open the figure in a window")
    g.add_argument("--format", default=None, help="figure formats, comma separated (png,pdf,svg)")
    return p


def parse(parser, argv):
    """Parse ``argv``; return the namespace (defaults filled in) and the set of flags given."""
    args = parser.parse_args(argv)
    explicit = set()
    for name in ORIGINAL:
        value = getattr(args, name)
        if isinstance(value, _Unset):
            setattr(args, name, value.value)
        else:
            explicit.add(name)
    return args, explicit


def check_values(args):
    """Reject impossible flag values, naming the original flag (ValueError)."""
    rules = [("epoch", args.epoch >= 1, ">= 1"), ("lr", args.lr > 0, "> 0"), ("reg", args.reg >= 0, ">= 0"),
             ("init", args.init > 0, "> 0"), ("hid_width", args.hid_width >= 1, ">= 1"),
             ("relu", 0 <= args.relu <= 1, "in [0, 1] (1 linear, 0 ReLU)"),
             ("dataset_size", args.dataset_size >= 1, ">= 1"), ("rho", -1 < args.rho < 1, "in (-1, 1)"),
             ("ratio", args.ratio > 0, "> 0"), ("var_lin", args.var_lin > 0, "> 0"),
             ("noise", args.noise >= 0, ">= 0"), ("depth", args.depth >= 1, ">= 1"),
             ("repeat", args.repeat >= 1, ">= 1")]
    if args.data == "multi" or args.sweep == "rand_sweep":
        rules.append(("in_dim", args.in_dim >= 2 and args.in_dim % 2 == 0,
                      "even and >= 2 (two halves, one per modality)"))
    for name, ok, rule in rules:
        if not ok:
            raise ValueError(f"--{name} {getattr(args, name)!r}: must be {rule}")
    if args.mode == "deep_fusion" and args.sweep == "single" and not 1 <= args.fuse_depth <= args.depth:
        raise ValueError(f"--fuse_depth {args.fuse_depth}: must lie in 1..depth ({args.depth})")
    if args.data == "xor" and args.dataset_size % 4 and args.sweep in ("single", "xor_sweep"):
        raise ValueError(f"--dataset_size {args.dataset_size}: must be a multiple of 4 with --data xor "
                         "(each XOR corner dataset_size/4 times)")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers}: must be >= 1")


# ---------------------------------------------------------------------- translation
def _fmt(value):
    return format(value, ".12g") if isinstance(value, float) else str(value)


def _module_parser(module):
    """The argparse parser of an experiment module (for its defaults and options)."""
    if hasattr(module, "build_parser"):
        return module.build_parser()
    if hasattr(module, "AXIS"):                 # rho_sweep, ratio_sweep, init_sweep
        from . import _deep
        return _deep.sweep_parser(module.AXIS)
    return module._parser()                     # sims.fusion_depth


@dataclass
class Translation:
    """An original command translated into one experiment module's command line.

    Attributes
    ----------
    module : str
        Experiment module (``python -m sims.<module>``).
    argv : list of str
        Its options.
    notes : list of str
        One line per flag ignored or reinterpreted.
    out : str
        The folder the results are written to.
    record : dict
        Interpretations worth saving (e.g. var_lin read as a variance).
    """

    module: str
    argv: list
    notes: list = field(default_factory=list)
    out: str = ""
    record: dict = field(default_factory=dict)

    @property
    def command(self):
        """The equivalent modern command, shell-quoted."""
        return shlex.join(["python", "-m", f"sims.{self.module}"] + self.argv)


class _Builder:
    """Accumulates a module's options from the original flags, and which flags were used."""

    def __init__(self, module, args, explicit):
        self.module, self.args, self.explicit = module, args, explicit
        self.defaults = vars(_module_parser(importlib.import_module(f"sims.{module}")).parse_args([]))
        self.argv, self.notes, self.used, self.reasons, self.record = [], [], set(), {}, {}
        self.dropped = []

    def opt(self, name, option, value=None):
        """Pass original flag ``name`` as ``option`` (value converted by the caller if given).

        Passed when the flag was given or its original default differs from the module's;
        under --quick a size flag is left to the module's quick setting.
        """
        self.used.add(name)
        if self.args.quick and name in SIZE_FLAGS:
            if name in self.explicit:
                self.dropped.append(name)
            return
        value = getattr(self.args, name) if value is None else value
        dest = option.lstrip("-").replace("-", "_")
        if name in self.explicit or self.defaults.get(dest, object()) != value:
            self.argv += [option, _fmt(value)]

    def raw(self, *items):
        """Options that no flag maps to one-to-one."""
        self.argv += [str(i) for i in items]

    def use(self, *names):
        """Flags satisfied without an option (e.g. a panel the module always draws)."""
        self.used.update(names)

    def ignore(self, name, reason):
        """A flag this experiment does not use, with the reason given in the note."""
        self.reasons[name] = reason

    def require_default(self, why, *names):
        """Model flags the experiment cannot honour: an error unless they keep the original default."""
        for name in names:
            self.used.add(name)
            value = getattr(self.args, name)
            if value != ORIGINAL[name]:
                shown = "" if isinstance(value, bool) else f" {_fmt(value)}"
                raise ValueError(f"--{name}{shown} is not supported with --sweep {self.args.sweep}: {why}; "
                                 "use --sweep single for one run with it")

    def finish(self, out=None):
        """The Translation, with the output options and the notes on ignored flags."""
        a = self.args
        if a.quick:
            self.raw("--quick")
            if self.dropped:
                self.notes.append("--quick: the module's quick setting replaces " +
                                  ", ".join(f"--{n}" for n in self.dropped))
        if a.seed is not None:
            self.raw("--seed", a.seed)
        out_dir = a.out or out or self.defaults["out"]
        if a.out or out:
            self.raw("--out", out_dir)
        if a.format is not None:
            self.raw("--format", a.format)
        if a.show:
            self.raw("--show")
        for name in ("workers", "force"):
            given = getattr(a, name) not in (None, False)
            if given and name in self.defaults:
                self.raw(f"--{name}", *([] if name == "force" else [getattr(a, name)]))
            elif given:
                why = "runs in one process" if name == "workers" else "keeps no cache"
                self.notes.append(f"--{name}: sims.{self.module} {why}; ignored")
        for name in sorted(self.explicit - self.used - {"mode", "sweep"}):
            reason = self.reasons.get(name, "not a parameter of this experiment")
            self.notes.append(f"--{name}: {reason}; ignored by sims.{self.module}")
        return Translation(self.module, self.argv, self.notes, out_dir, self.record)


def _a_first(args):
    """Whether modality A (variance ratio²) is learned first on the toy data (|Σyx_A| >= |Σyx_B|)."""
    r, rho = args.ratio, args.rho
    return abs(r * r + rho * r) >= abs(1.0 + rho * r)


def _route_single(args):
    """The module of a ``--sweep single`` command (see the module docstring's table)."""
    linear = args.relu == 1.0 and not args.bias and args.loss == "mse"
    if args.mode in TWO_LAYER:
        if args.data == "toy" and linear and _a_first(args):
            return args.mode
        if args.data == "multi" and linear and args.reg == 0:
            return "generalization"
        if args.data == "xor" and args.relu < 1.0 and not args.bias and args.loss == "mse" and args.reg == 0 \
                and not args.vis_contour:
            return "xor"
    return "single"


def _sigma_a(b):
    """--var_lin (a variance) as the standard deviation the modules take; recorded."""
    var = b.args.var_lin
    b.record.update(var_lin=var, var_lin_reading="variance", sigma_a=math.sqrt(var))
    return float(format(math.sqrt(var), ".12g"))


def _two_layer_module(b):
    for name, option in (("rho", "--rho"), ("ratio", "--ratio"), ("dataset_size", "--n"), ("noise", "--noise"),
                         ("lr", "--lr"), ("epoch", "--epochs"), ("init", "--scale"), ("hid_width", "--width"),
                         ("reg", "--weight-decay")):
        b.opt(name, option)
    b.use("relu", "bias", "loss", "data", "plot_weight", "vis_feat")
    b.ignore("plot_Eg", f"sims.{b.module} draws no E_g panel (python -m sims.single draws one)")
    return b.finish()


def _generalization(b):
    a = b.args
    b.opt("dataset_size", "--n-values")
    for name, option in (("in_dim", "--dim"), ("noise", "--noise"), ("lr", "--lr"), ("epoch", "--epochs"),
                         ("init", "--scale"), ("hid_width", "--width")):
        b.opt(name, option)
    b.use("relu", "bias", "loss", "reg", "data", "plot_weight", "plot_Eg")
    b.notes.append(f"sims.generalization draws early and late fusion side by side (you asked for {a.mode})")
    return b.finish(out=os.path.join(b.defaults["out"], f"n{a.dataset_size}"))


def _xor(b, sweep):
    a = b.args
    if a.relu < 1.0:
        b.opt("relu", "--slope")
    else:
        b.use("relu")
        b.notes.append("--relu 1: a linear net cannot learn XOR; sims.xor trains ReLU nets (slope 0)")
    b.require_default("sims.xor trains bias-free two-layer nets with the squared loss", "bias", "loss", "reg")
    for name, option in (("dataset_size", "--n"), ("hid_width", "--width"), ("lr", "--lr"),
                         ("epoch", "--epochs"), ("init", "--scale")):
        b.opt(name, option)
    b.use("data", "plot_weight", "vis_feat")
    b.ignore("noise", "the XOR + linear data are noiseless")
    if sweep:
        b.opt("repeat", "--repeats")
        if "var_lin" in b.explicit:
            b.opt("var_lin", "--sigma-a", _sigma_a(b))
        else:
            b.ignore("var_lin", "swept")
        if a.mode not in TWO_LAYER:
            b.ignore("mode", "sims.xor compares two-layer early and late fusion")
        return b.finish()
    b.opt("var_lin", "--sigma-a", _sigma_a(b))
    b.raw("--sweep-sigma", "")
    b.notes.append(f"sims.xor draws early and late fusion side by side (you asked for {a.mode}); "
                   f"sigma_A = sqrt(var_lin) = {b.record['sigma_a']:.6g} (var_lin read as a variance)")
    return b.finish(out=os.path.join(b.defaults["out"], f"var_lin{a.var_lin:g}"))


def _single(b):
    a = b.args
    depth, fuse = {"shallow": (1, 1), "early_fusion": (2, 1), "late_fusion": (2, 2),
                   "deep_fusion": (a.depth, a.fuse_depth)}[a.mode]
    if a.mode == "deep_fusion":
        # the original's deep nets fix each layer's Frobenius norm (THEORY §5): scheme 'layer'
        b.raw("--depth", depth, "--fuse-depth", fuse, "--init", "layer")
        b.use("depth", "fuse_depth")
    else:
        if depth != b.defaults["depth"]:
            b.raw("--depth", depth)
        if fuse != depth:
            b.raw("--fuse-depth", fuse)
        for name in ("depth", "fuse_depth"):
            b.ignore(name, f"--mode {a.mode} fixes the depth")
    b.opt("data", "--data")
    if a.data == "toy":
        b.opt("rho", "--rho")
        b.opt("ratio", "--ratio")
    elif a.data == "multi":
        b.opt("in_dim", "--dim")
    else:
        b.opt("var_lin", "--sigma-a", _sigma_a(b))
        b.notes.append(f"sigma_A = sqrt(var_lin) = {b.record['sigma_a']:.6g} (var_lin read as a variance)")
    for name in ("rho", "ratio", "in_dim", "var_lin"):
        b.ignore(name, f"not a parameter of the {a.data} data")
    b.opt("dataset_size", "--n")
    if a.data != "xor":
        b.opt("noise", "--noise")
    else:
        b.ignore("noise", "the XOR + linear data are noiseless")
    for name, option in (("loss", "--loss"), ("lr", "--lr"), ("epoch", "--epochs"), ("init", "--scale"),
                         ("reg", "--weight-decay")):
        b.opt(name, option)
    if depth >= 2:
        b.opt("hid_width", "--width")
        b.opt("relu", "--slope")
    else:
        b.ignore("relu", "a one-layer net has no activation")
        b.ignore("hid_width", "a one-layer net has no hidden layer")
    if a.bias:
        b.raw("--bias")
    b.use("bias", "plot_weight")
    if a.data != "xor" and a.relu == 1.0 and not a.bias and a.loss == "mse":
        b.use("plot_Eg")
    b.ignore("plot_Eg", "E_g needs a linear, bias-free net trained with mse on the toy or multi data")
    if a.vis_feat or a.vis_contour:
        if a.data == "multi" or depth < 2:
            b.ignore("vis_feat", "needs a hidden layer and a two-dimensional input plane (toy or xor data)")
            b.ignore("vis_contour", "needs a two-dimensional input plane (toy or xor data)")
        else:
            b.raw("--features")
            b.use("vis_feat")
            if a.vis_contour:
                b.raw("--contour")
                b.use("vis_contour")
    return b.finish(out=os.path.join(b.defaults["out"], f"{a.mode}_{a.data}"))


def _toy_sweep(b):
    a = b.args
    if a.relu == 1.0:
        b.raw("--no-relu")
    elif a.relu == 0.0:
        b.raw("--no-linear")
        if "dataset_size" in b.explicit:
            b.opt("dataset_size", "--relu-n")
        elif not a.quick:
            b.notes.append("ReLU runs use sims.toy_sweep's --relu-n 2048 samples (the sample path's cost); "
                           "give --dataset_size 8192 for the original's size")
    else:
        raise ValueError(f"--relu {_fmt(a.relu)} is not supported with --sweep toy_sweep: it trains linear "
                         "(--relu 1) or ReLU (--relu 0) nets")
    b.used.add("relu")
    b.require_default("sims.toy_sweep trains noiseless, bias-free nets with the squared loss",
                      "bias", "loss", "reg", "noise")
    if a.relu == 1.0 or "dataset_size" not in b.explicit:
        b.opt("dataset_size", "--n")
    for name, option in (("lr", "--lr"), ("epoch", "--epochs"), ("init", "--scale"), ("hid_width", "--width"),
                         ("repeat", "--repeats")):
        b.opt(name, option)
    b.use("plot_weight")
    for name in ("rho", "ratio"):
        b.ignore(name, "swept (r in 3, 2, 1.5, 1; rho in linspace(-0.9, 0.9, 9))")
    b.ignore("data", "the sweep uses the toy data")
    return b.finish()


def _rand_sweep(b):
    b.require_default("sims.rand_sweep trains noiseless linear bias-free nets with the squared loss",
                      "relu", "bias", "loss", "reg", "noise")
    for name, option in (("repeat", "--draws"), ("in_dim", "--dim"), ("dataset_size", "--n"), ("lr", "--lr"),
                         ("epoch", "--epochs"), ("init", "--scale"), ("hid_width", "--width")):
        b.opt(name, option)
    b.use("plot_weight")
    if b.args.data == "multi":      # the original README's spelling of the random-covariance data
        b.use("data")
    b.ignore("data", "the sweep draws random covariances (THEORY §3c, the original's --data multi)")
    return b.finish()


def _deep_common(b, swept):
    b.require_default(f"sims.{b.module} trains linear bias-free nets with the squared loss",
                      "relu", "bias", "loss", "reg")
    for name, option in (("rho", "--rho"), ("ratio", "--ratio"), ("dataset_size", "--n"), ("noise", "--noise"),
                         ("depth", "--depth"), ("hid_width", "--width"), ("init", "--scale"), ("lr", "--lr"),
                         ("epoch", "--epochs")):
        if name == swept:
            b.ignore(name, "swept (its --values)")
        else:
            b.opt(name, option)
    b.use("plot_weight")
    b.ignore("fuse_depth", "every fusion layer L_f = depth, ..., 1 is run")
    b.ignore("data", "the deep experiments use the toy data")


def _fusion_depth(b):
    _deep_common(b, None)
    return b.finish()


def _deep_sweep(b, swept):
    _deep_common(b, swept)
    b.opt("repeat", "--repeats")
    return b.finish()


_SWEPT = {"rho_sweep": "rho", "ratio_sweep": "ratio", "init_sweep": "init"}


def plan(args, explicit):
    """Translate parsed original flags into one experiment module's command line.

    Parameters
    ----------
    args : argparse.Namespace
        The original flags with their defaults filled in (:func:`parse`), plus the output options.
    explicit : set of str
        The original flags given on the command line.

    Returns
    -------
    Translation

    Raises
    ------
    ValueError
        A value, mode or combination this toolkit cannot run, naming the flag.
    """
    check_values(args)
    if args.mode == "fission":
        raise ValueError(fission_message())
    sweep = args.sweep
    if sweep in SWEEP_MODE and args.mode not in SWEEP_MODE[sweep]:
        need = SWEEP_MODE[sweep][0]
        raise ValueError(f"--sweep {sweep} with --mode {args.mode}: this experiment (sims.{SWEEP_MODULE[sweep]}, "
                         f"figure {FIGURE[SWEEP_MODULE[sweep]]}) is defined for --mode {need}")
    if sweep == "single":
        module = _route_single(args)
        b = _Builder(module, args, explicit)
        if module in TWO_LAYER:
            return _two_layer_module(b)
        if module == "generalization":
            return _generalization(b)
        if module == "xor":
            return _xor(b, sweep=False)
        return _single(b)
    b = _Builder(SWEEP_MODULE[sweep], args, explicit)
    if sweep == "depth_single":
        return _fusion_depth(b)
    if sweep == "toy_sweep":
        return _toy_sweep(b)
    if sweep == "rand_sweep":
        return _rand_sweep(b)
    if sweep in _SWEPT:
        return _deep_sweep(b, _SWEPT[sweep])
    return _xor(b, sweep=True)


def fission_message():
    """The error for the original's --mode fission."""
    return ("--mode fission (the original's one-input, two-output 'fission' network) is not supported by "
            "this toolkit, which covers the fusion networks of the paper: --mode shallow, early_fusion, "
            "late_fusion or deep_fusion")


def translate(argv):
    """Parse original flags and translate them (argparse's error and SystemExit 2 on bad input).

    Parameters
    ----------
    argv : list of str
        E.g. ``['--mode', 'late_fusion', '--plot_weight']``.

    Returns
    -------
    Translation
    """
    parser = build_parser()
    args, explicit = parse(parser, [str(a) for a in argv])
    try:
        return plan(args, explicit)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv=None):
    """Translate the original flags, print the modern command, run it; returns its exit status."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    args, explicit = parse(parser, argv)
    if args.mode == "fission":
        print(f"{PROG}: error: {fission_message()}", file=sys.stderr)
        return 2
    try:
        tr = plan(args, explicit)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"-> {tr.command}")
    for note in tr.notes:
        print(f"   note: {note}")
    sys.stdout.flush()
    status = importlib.import_module(f"sims.{tr.module}").main(tr.argv)
    if status == 0:
        doc = dict(original="python main.py " + shlex.join(argv), equivalent=tr.command, module=tr.module,
                   argv=tr.argv, figure=FIGURE[tr.module], notes=tr.notes, interpretation=tr.record,
                   flags={k: getattr(args, k) for k in ORIGINAL}, explicit=sorted(explicit))
        C.atomic_write(os.path.join(tr.out, "original_command.json"), json.dumps(doc, indent=2), mode="w")
    return status


if __name__ == "__main__":
    sys.exit(main())
