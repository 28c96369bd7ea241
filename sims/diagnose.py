"""Diagnose your own data: which modality a fusion network learns first, for how long, and what to do.

Reads a data file (``--data FILE``, .npz or .csv, K >= 2 modalities) or a bundled example
(``--example diabetes`` or ``--example digits``, from scikit-learn's package data: the optional
extra ``pip install 'linfusion[examples]'``), holds out ``--test-fraction`` of the samples, and
runs :func:`theory.diagnose` on the rest (theory.md §12): each modality's strength, the order and
epochs at which two-layer late fusion learns them, the time ratio of every fusion layer of a
depth-``--depth`` network, the misattribution on each plateau, superficial preference, the
held-out deficit and a recommendation. With ``--confirm`` (on by default here; the library's
``diagnose`` defaults to off) it also trains those networks (the moment path for the squared
loss: seconds) and sets the simulation against the prediction.

Files. ``.npz``: one array per modality plus the target; the target is the array ``y`` unless
``--target KEY`` says otherwise, and every other array is a modality named by its key (in the
file's order), unless ``--modality NAME=key1,key2`` (repeated) picks and names them; arrays of
more dimensions are flattened per sample. ``.csv``: a header row, then numeric rows;
``--modality NAME=col1,col2`` once per modality and ``--target COLUMN``. Targets that are
exactly ±1 are treated as classification labels trained with the logistic loss (``--task``);
the moment theory is for the squared loss, and the report says what carries over (§12.1).

Figure: (a) the training loss of two-layer late fusion with the predicted plateaus, (b) each
modality's progress along its learning direction (it is learned when it crosses ½; theory.md
§12.2) with the closed-form times, (c) the epochs at which each modality is learned for every
fusion layer of the depth-L network, (d) the misattribution on each plateau. Simulation is a
wide band (or large dots), theory dashed in the modality's colour.

Run ``python -m sims.diagnose --example diabetes``, ``python -m sims.diagnose --example digits``,
``python -m sims.diagnose --data my.csv --modality audio=a1,a2 --modality video=v1,v2,v3 --target y``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from theory.diagnosis import check_inputs, diagnose

from . import _datafile
from . import _schedule as SCH
from . import _style as S
from ._cli import entry_point
from ._config import integer, option, real
from ._options import Seeded, Width

NAME = "diagnose"
KIND = "run"
main = entry_point(NAME)

_DATA = "data"
_TRAIN = "network and training"
_TASKS = ("auto", "regression", "classification")
_PREPROCESS = ("standardize", "center", "none")


def _checked_source(cfg):
    """The configuration's data, split, and checked as diagnose will check it."""
    source = (_datafile.load_file(cfg.data, cfg.modality, cfg.target) if cfg.data is not None
              else _datafile.load_example(cfg.example))
    split_ss, init_ss = np.random.SeedSequence(cfg.seed).spawn(2)
    xs, y, cols, xt, yt, note = _datafile.split(source, cfg.test_fraction, split_ss)
    where = f"data == {cfg.data!r}" if cfg.data is not None else f"example == {cfg.example!r}"
    try:
        check_inputs(xs, y, names=source.names, columns=cols, xs_test=xt, y_test=yt, task=cfg.task,
                     preprocess=cfg.preprocess)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    return source, (xs, y, cols, xt, yt, note), init_ss


@dataclass(frozen=True)
class Config(Seeded, Width):
    """Diagnose a data file or a bundled example (theory.md §12)."""

    data: str | None = option(None, "data file: .npz (one array per modality and the target) or .csv (a header "
                              "row, then numbers)", check=_datafile.check_path, group=_DATA, metavar="FILE",
                              none_means="none: give --data or --example")
    example: str | None = option(None, "bundled example (needs scikit-learn): diabetes (demographics, body, serum; "
                                 "disease progression) or digits (left and right image halves; digit >= 5, ±1)",
                                 choices=_datafile.EXAMPLES, group=_DATA, none_means="none")
    modality: tuple[str, ...] = option((), "one modality, NAME=col1,col2 (.csv columns or .npz array keys); repeat "
                                       "for every modality", repeat=True, group=_DATA, metavar="NAME=COLUMNS")
    target: str | None = option(None, "target column (.csv) or array key (.npz)", group=_DATA,
                                none_means="y for .npz; required for .csv")
    test_fraction: float = option(0.2, "fraction of the samples held out (drawn with --seed) for the held-out "
                                  "deficit; 0: none", check=real(0.0, 0.9, hi_open=True), group=_DATA)
    preprocess: str = option("standardize", "standardize (inputs and a regression target to zero mean, unit "
                             "variance), center, or none (as given); theory.md §12.1", choices=_PREPROCESS,
                             group=_DATA)
    task: str = option("auto", "auto (classification when the target is exactly ±1), regression or "
                       "classification (logistic loss)", choices=_TASKS, group=_DATA)
    scale: float | None = option(None, "per-entry init scale of the two-layer network (> 0)",
                                 check=real(0.0, lo_open=True), group=_TRAIN, none_means="the library's: 1e-9")
    lr: float = option(0.04, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True), group=_TRAIN)
    depth: int = option(4, "depth L of the fusion-depth table (>= 2)", check=integer(lo=2, hi=12), group=_TRAIN)
    deep_scale: float | None = option(None, "per-layer scale of the balanced start of the depth-L networks, in "
                                      "(0, 1)", check=real(0.0, 1.0, lo_open=True, hi_open=True), group=_TRAIN,
                                      none_means="the library's: 0.1")
    confirm: bool = option(True, "also train the networks and set them against the prediction", group=_TRAIN)
    max_epochs: int = option(200000, "upper bound on the epochs of every map and training run",
                             check=integer(lo=100), group=_TRAIN)

    QUICK = {"width": 20, "depth": 3}

    def validate(self):
        if (self.data is None) == (self.example is None):
            raise ValueError("data and example: give exactly one, --data FILE or --example "
                             f"({' or '.join(_datafile.EXAMPLES)}).")
        if self.example is not None and (self.modality or self.target is not None):
            raise ValueError(f"modality == {self.modality!r} and target == {self.target!r} describe a --data file, "
                             "must be unset with --example.")
        for spec in self.modality:
            _datafile.parse_modality(spec)
        _checked_source(self)


# --------------------------------------------------------------------------- run and theory
def run(cfg, execution=None):
    """Load, split, diagnose (and confirm); a dict with the report and the data's description."""
    source, (xs, y, cols, xt, yt, note), init_ss = _checked_source(cfg)
    report = diagnose(xs, y, names=source.names, columns=cols, xs_test=xt, y_test=yt, task=cfg.task,
                      preprocess=cfg.preprocess, width=cfg.width, scale=cfg.scale, lr=cfg.lr, depth=cfg.depth,
                      deep_scale=cfg.deep_scale, confirm=cfg.confirm, max_epochs=cfg.max_epochs, rng=init_ss)
    n_all = source.y.shape[0]
    held = (f"{n_all - y.shape[0]} held out (--test-fraction {cfg.test_fraction:g}, seed {cfg.seed})"
            if xt is not None else "none held out")
    return {"report": report, "source": source.description + note, "split": f"{n_all} samples, {held}"}


def predict(cfg, result):
    """The report (it holds the prediction, and the simulation when confirmed)."""
    return result["report"]


# --------------------------------------------------------------------------- output
def summary(cfg, result, report):
    """The data, the split and the report's text."""
    lines = [f"data: {result['source']}", f"split: {result['split']}", "", report.text()]
    if report.confirmation is not None:
        bad = _unusable(report)
        if bad:
            lines.append(f"{len(bad)} of {1 + len(report.confirmation.depths)} trained networks are not usable "
                         f"({', '.join(sorted({r.status for r in bad}))}); their times are NaN.")
    return "\n".join(lines)


_BIG = ("curve_epochs", "curve_loss", "curve_progress", "epochs", "loss", "progress", "test_loss")


def _strip(d):
    """The report's dict without the per-epoch curves (they go to the .npz)."""
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in _BIG}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def outputs(cfg, result, report):
    """Arrays: the theory curves, the depth table and the simulations; record: the JSON report."""
    late = report.late
    arrays = {"theory_epochs": late.curve_epochs, "theory_loss_rel": late.curve_loss,
              "theory_progress": late.curve_progress, "late_t_closed_epochs": late.t, "late_t_map_epochs": late.t_map,
              "depth_fuse_depth": np.array([d.fuse_depth for d in report.depths]),
              "depth_t_epochs": np.array([d.t for d in report.depths]),
              "depth_ratio": np.array([d.ratio for d in report.depths]),
              "sigma": report.sigma, "syx": report.syx}
    c = report.confirmation
    if c is not None:
        arrays.update(sim_epochs=c.late.epochs, sim_loss_rel=c.late.loss, sim_progress=c.late.progress,
                      sim_t_epochs=c.late.t, sim_t_exact_epochs=c.late.t_exact)
        if c.late.test_loss is not None:
            arrays["sim_test_loss_rel"] = c.late.test_loss
        if c.depths:
            arrays["sim_depth_t_epochs"] = np.array([r.t for r in c.depths])
    record = _strip(report.to_dict())
    record["data"] = result["source"]
    record["split"] = result["split"]
    return {"arrays": arrays, "record": record}


# --------------------------------------------------------------------------- figure
def _loss_panel(ax, report, colors):
    late, c = report.late, report.confirmation
    classification = report.task == "classification"
    sim = (c.late.epochs, c.late.loss) if c is not None and c.late.usable else None
    # classification: the expansion's squared loss is not the logistic loss; drawn only without a run
    theory = None if classification and sim is not None else (late.curve_epochs, late.curve_loss)
    levels = [] if classification else [p.loss for p in late.plateaus]
    SCH.draw_loss(ax, sim=sim, theory=theory, levels=levels)
    if sim is not None and c.late.test_loss is not None:
        ax.plot(c.late.epochs, c.late.test_loss, **S.sim_kw(S.COLORS["eg"]), label="held-out loss")
    ax.set_ylim(-0.03, 1.08 if sim is None or c.late.test_loss is None else max(1.08, 1.02 * float(
        np.nanmax(c.late.test_loss))))
    what = "late fusion" if not classification else "logistic" if sim is not None else "expansion"
    ax.set_title(f"(a) loss, {what}", fontsize="medium")


def _progress_panel(ax, report, colors):
    late, c = report.late, report.confirmation
    sim = (c.late.epochs, c.late.progress) if c is not None and c.late.usable else None
    SCH.draw_progress(ax, report.names, colors, sim=sim, theory=(late.curve_epochs, late.curve_progress))
    SCH.mark_times(ax, late.t, colors)
    values = [late.curve_progress] + ([sim[1]] if sim is not None else [])
    hi = max(float(np.nanmax(v)) for v in values)
    ax.set_ylim(-0.05, min(max(1.15, 1.05 * hi), 2.5))
    ax.set_ylabel("progress")
    ax.set_title("(b) learned at progress ½", fontsize="medium")


def _depth_panel(ax, report, colors):
    lf = np.array([d.fuse_depth for d in report.depths])
    t = np.array([d.t for d in report.depths])
    c = report.confirmation
    for k, (name, color) in enumerate(zip(report.names, colors)):
        ax.plot(lf, t[:, k], marker="o", markersize=3.5, markerfacecolor="none", **S.theory_kw(color))
        if c is not None and c.depths:
            ts = np.array([r.t[k] for r in c.depths])
            ax.plot(lf, ts, linestyle="none", marker="o", markersize=9, color=color, alpha=0.45, markeredgewidth=0)
    ax.set_yscale("log")
    ax.set_xticks(lf)
    ax.set_xticklabels([f"{x}" + ("\nearly" if x == 1 else "\nlate" if x == report.depth else "") for x in lf])
    ax.set_xlim(lf[0] - 0.4, lf[-1] + 0.4)
    ax.set_xlabel(r"fusion layer $L_f$")
    ax.set_ylabel("epoch learned")
    ax.set_title(f"(c) fusion depth, L = {report.depth}", fontsize="medium")


def _misattribution_panel(ax, report, colors):
    plateaus = report.late.plateaus
    n_mod = len(report.names)
    width = 0.8 / n_mod
    for j, p in enumerate(plateaus):
        for k in p.learned:
            v = p.misattribution[k]
            if np.isfinite(v):
                ax.bar(j + (k - (n_mod - 1) / 2) * width, 100 * v, width=width * 0.9, color=colors[k], alpha=0.8)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(plateaus)))
    ax.set_xticklabels([report.names[p.learned[0]] if j == 0 else "+ " + report.names[p.learned[-1]]
                        for j, p in enumerate(plateaus)])
    ax.set_xlim(-0.6, max(len(plateaus), 1) - 0.4)
    lo, hi = ax.get_ylim()
    span = max(abs(lo), abs(hi), 5.0)
    ax.set_ylim(-1.15 * span if lo < 0 else -0.1 * span, 1.15 * span)
    ax.set_xlabel("plateau: modalities learned")
    ax.set_ylabel("over-credit [%]")
    ax.set_title("(d) misattribution", fontsize="medium")


def _loss_handle(simulated):
    from matplotlib.lines import Line2D
    style = S.sim_kw(S.COLORS["loss"]) if simulated else S.theory_kw(S.COLORS["loss"])
    return Line2D([], [], label="training loss", **style)


def _unusable(report):
    c = report.confirmation
    return [] if c is None else [r for r in (c.late, *c.depths) if not r.usable]


def plot(cfg, result, report):
    """The one-page figure: (a) loss, (b) progress, (c) times per fusion layer, (d) misattribution.

    None (nothing usable to draw) when the map diverges at the learning rate and no trained
    network is usable either.
    """
    c = report.confirmation
    if report.late.diverged and (c is None or not c.late.usable):
        return None
    colors = SCH.modality_colors(len(report.names))
    fig, axes = S.figure(2, 2, width=3.5, height=2.7)
    _loss_panel(axes[0, 0], report, colors)
    _progress_panel(axes[0, 1], report, colors)
    _depth_panel(axes[1, 0], report, colors)
    _misattribution_panel(axes[1, 1], report, colors)
    theory = ("theory (small-weight expansion): dashed" if report.task == "classification"
              else "theory (exact map): dashed")
    simulated = c is not None and c.late.usable
    handles = SCH.style_handles(report.names, colors, theory_label=theory, marker_label="closed form (leading order)",
                                simulation=simulated)
    if c is not None and c.late.usable and c.late.test_loss is not None:
        from matplotlib.lines import Line2D
        handles.insert(len(report.names), Line2D([], [], label="held-out loss", **S.sim_kw(S.COLORS["eg"])))
    handles.insert(len(report.names), _loss_handle(simulated))
    bad = _unusable(report)
    if bad:
        from matplotlib.lines import Line2D
        n_runs = 1 + len(c.depths)
        handles.append(Line2D([], [], linestyle="none", label=f"{len(bad)} of {n_runs} trained networks\n"
                              f"not usable ({', '.join(sorted({r.status for r in bad}))}), not drawn"))
    fig.legend(handles=handles, loc="outside right center")
    order = " → ".join(report.order)
    S.title(fig, f"Diagnosis: late fusion learns {order}")
    return fig



if __name__ == "__main__":
    sys.exit(main())
