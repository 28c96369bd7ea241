"""Shared pieces of the experiment modules: command-line options, figure style, saving
and loading results, and the theory-over-simulation overlay conventions.

Every experiment writes, under ``--out`` (default ``results/<name>/``):

- ``<name>.<fmt>`` for each format in ``--format`` (default png): the figure;
- ``<name>.npz``: the arrays behind the figure;
- ``<name>.json``: the exact configuration, the seed and the versions of every package;
- ``<name>.csv`` (sweeps): a tidy table with one row per run.

:func:`load` reads any of them back. Files are written atomically (write, then rename).
"""
from __future__ import annotations

import argparse
import csv
import importlib.metadata
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["COLORS", "THEORY_STYLE", "base_parser", "add_toy_args", "add_train_args", "finish_args",
           "save", "load", "versions", "atomic_write", "figure", "announce", "show_or_close", "Timer", "fail"]

#: simulation colours: A blue, B magenta, loss black (the paper's); theory in black dashes
COLORS = {"a": "tab:blue", "b": "tab:pink", "loss": "black", "eg": "tab:green",
          "early": "tab:orange", "late": "tab:purple"}
THEORY_STYLE = dict(color="black", linestyle="--", linewidth=1.2)
FUSION_COLORS = {1: "tab:red", 2: "tab:orange", 3: "tab:green", 4: "tab:blue"}
_UMASK = os.umask(0)
os.umask(_UMASK)


def base_parser(name, description, *, workers=False):
    """An ArgumentParser with the options every experiment shares.

    ``--out DIR`` (default ``results/<name>/``), ``--seed``, ``--quick``, ``--show``,
    ``--format png,pdf,svg``, ``--workers`` (worker processes of a sweep; for an experiment
    of single runs, the threads its kernels use); with ``workers=True`` (sweeps) also
    ``--force``, ``--cache DIR`` and ``--scheduler ADDRESS``.
    """
    p = argparse.ArgumentParser(prog=f"python -m sims.{name}", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("output")
    g.add_argument("--out", default=os.path.join("results", name), help="output folder")
    g.add_argument("--seed", type=int, default=0, help="master seed (data and initial weights)")
    g.add_argument("--quick", action="store_true", help="a small setting that runs in seconds")
    g.add_argument("--show", action="store_true", help="open the figure in a window")
    g.add_argument("--format", default="png", help="figure formats, comma separated (png,pdf,svg)")
    g.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: all cores)" if workers else
                   "threads the training kernels use (default: all cores)")
    if workers:
        g.add_argument("--force", action="store_true", help="recompute points already in the cache")
        g.add_argument("--cache", default=None, help="cache folder (default: <out>/cache)")
        g.add_argument("--scheduler", default=None,
                       help="Dask scheduler address (or set DASK_SCHEDULER_ADDRESS); needs linfusion[dask]")
    return p


def add_toy_args(p, *, rho=0.0, ratio=2.0, n=8192, noise=0.0):
    """Options of the toy data (THEORY.md §3a)."""
    g = p.add_argument_group("data (toy)")
    g.add_argument("--rho", type=float, default=rho, help="correlation of x_A and x_B, in (-1, 1)")
    g.add_argument("--ratio", type=float, default=ratio, help="sigma_A / sigma_B (> 0)")
    g.add_argument("--n", type=int, default=n, help="number of samples")
    g.add_argument("--noise", type=float, default=noise, help="label-noise standard deviation")
    return g


def add_train_args(p, *, lr=0.04, epochs=1000, init="entry", scale=1e-9, width=100, depth=2,
                   slope=1.0, tol=0.0, record_every=1):
    """Options of the network and of gradient descent."""
    g = p.add_argument_group("network and training")
    g.add_argument("--lr", type=float, default=lr, help="learning rate (tau = 1/lr epochs)")
    g.add_argument("--epochs", type=int, default=epochs, help="maximum number of epochs")
    g.add_argument("--init", default=init, choices=("entry", "layer", "balanced"),
                   help="initialisation scheme (entry: N(0, scale^2) per weight; layer: Frobenius "
                        "norm per layer; balanced: rank-one balanced chain)")
    g.add_argument("--scale", type=float, default=scale, help="initialisation scale u0")
    g.add_argument("--width", type=int, default=width, help="hidden width h")
    g.add_argument("--depth", type=int, default=depth, help="total depth L")
    g.add_argument("--slope", type=float, default=slope, help="leaky-ReLU slope (1 linear, 0 ReLU)")
    g.add_argument("--bias", action="store_true", help="give every layer a bias")
    g.add_argument("--loss", default="mse", choices=("mse", "exponential", "logistic"))
    g.add_argument("--weight-decay", type=float, default=0.0, help="weight decay lambda")
    g.add_argument("--tol", type=float, default=tol, help="stop once the loss is below tol (0: never)")
    g.add_argument("--record-every", type=int, default=record_every, help="record every k epochs")
    return g


def finish_args(p, argv, check=None):
    """Parse ``argv``; run ``check(args)`` and turn its ValueError into argparse's error.

    An impossible setting (``--rho 1``) then exits with status 2 and a message that names
    the option, like any other argparse error.
    """
    args = p.parse_args(argv)
    fmts = [f.strip() for f in args.format.split(",") if f.strip()]
    if not fmts or any(f not in ("png", "pdf", "svg") for f in fmts):
        p.error(f"--format {args.format!r}: formats must be among png, pdf, svg")
    args.formats = fmts
    for name in ("lr", "scale"):
        if hasattr(args, name) and not getattr(args, name) > 0:
            p.error(f"--{name} {getattr(args, name)!r}: must be > 0")
    if hasattr(args, "epochs") and args.epochs < 1:
        p.error(f"--epochs {args.epochs}: must be >= 1")
    if hasattr(args, "rho") and isinstance(args.rho, float) and not -1.0 < args.rho < 1.0:
        p.error(f"--rho {args.rho!r}: must lie in (-1, 1)")
    if hasattr(args, "ratio") and isinstance(args.ratio, float) and not args.ratio > 0:
        p.error(f"--ratio {args.ratio!r}: must be > 0")
    if args.workers is not None and args.workers < 1:
        p.error(f"--workers {args.workers}: must be >= 1")
    if check is not None:
        try:
            check(args)
        except (ValueError, TypeError) as exc:
            p.error(str(exc))
    if args.workers is not None and not hasattr(args, "force"):   # single runs: kernel threads
        import linfusion
        linfusion.set_threads(args.workers)
    if not args.show:
        import matplotlib
        matplotlib.use("Agg")
    return args


def versions():
    """Versions of Python and every package the results depend on."""
    import matplotlib
    import scipy

    import linfusion
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": importlib.metadata.version("numba"), "matplotlib": matplotlib.__version__,
            "linfusion": linfusion.__version__, "platform": platform.platform()}


def atomic_write(path, data, mode="wb"):
    """Write ``data`` (bytes or str) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)          # mkstemp creates 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, argparse.Namespace):
        return _jsonable(vars(obj))
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def save(out, name, *, fig=None, formats=("png",), arrays=None, config=None, table=None):
    """Write the figure, the arrays, the configuration and the table of one experiment.

    Parameters
    ----------
    out : str or Path
        Output folder (created).
    name : str
        File stem.
    fig : matplotlib Figure, optional
    formats : sequence of str
        Figure formats.
    arrays : dict of str -> array_like, optional
        Saved to ``<name>.npz``.
    config : dict or argparse.Namespace, optional
        Saved to ``<name>.json`` with the versions of every package and the command line.
    table : list of dict, optional
        Saved to ``<name>.csv`` (one row per run; columns are the union of the keys).

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out)
    written = []
    if fig is not None:
        for fmt in formats:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight")
            atomic_write(out / f"{name}.{fmt}", buf.getvalue())
            written.append(out / f"{name}.{fmt}")
    if arrays is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        atomic_write(out / f"{name}.npz", buf.getvalue())
        written.append(out / f"{name}.npz")
    if config is not None:
        cfg = _jsonable(config)
        cfg.pop("show", None)
        doc = {"experiment": name, "config": cfg, "versions": versions(),
               "command": " ".join(sys.argv), "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write(out / f"{name}.json", json.dumps(doc, indent=2), mode="w")
        written.append(out / f"{name}.json")
    if table is not None:
        cols = []
        for row in table:
            cols += [k for k in row if k not in cols]
        buf = io.StringIO()
        wr = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        wr.writeheader()
        for row in table:
            wr.writerow({k: _jsonable(row.get(k, "")) for k in cols})
        atomic_write(out / f"{name}.csv", buf.getvalue(), mode="w")
        written.append(out / f"{name}.csv")
    return written


def load(path):
    """Load what :func:`save` wrote.

    Parameters
    ----------
    path : str or Path
        A ``.npz`` (returns a dict of arrays), ``.json`` (the configuration document),
        ``.csv`` (a list of row dicts, numbers converted), or a stem / folder+stem without
        suffix (returns a dict with keys ``arrays``, ``config`` and ``table`` for whichever
        exist).
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return [{k: _number(v) for k, v in row.items()} for row in rows]
    if path.is_dir():
        path = path / path.name
    found = {}
    for key, suf in (("arrays", ".npz"), ("config", ".json"), ("table", ".csv")):
        p = path.with_suffix(suf)
        if p.exists():
            found[key] = load(p)
    if not found:
        raise FileNotFoundError(f"no results at {path} (.npz, .json or .csv)")
    return found


def _number(v):
    for conv in (int, float):
        try:
            return conv(v)
        except (TypeError, ValueError):
            pass
    if v in ("True", "False"):
        return v == "True"
    return v


def figure(nrows=1, ncols=1, *, width=4.2, height=3.2, **kw):
    """A figure with the toolkit's style: one panel is width x height inches."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             constrained_layout=True, **kw)
    return fig, axes


def announce(report, written, fig, args):
    """Print the experiment's summary and the files it wrote; show or close its figure."""
    print(report)
    print("  wrote " + ", ".join(str(p) for p in written))
    show_or_close(fig, args)


def show_or_close(fig, args):
    """Show the figure when ``--show`` was given; close it otherwise."""
    import matplotlib.pyplot as plt
    if getattr(args, "show", False):
        plt.show()
    plt.close(fig)


class Timer:
    """Wall time of a block, for the experiment's summary line."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def fail(message):
    """Print an error for a run that could not produce its figure, and return exit status 1."""
    print(f"error: {message}", file=sys.stderr)
    return 1


def parse_quick(p, argv, quick, check=None):
    """:func:`finish_args` where ``--quick`` changes the defaults in ``quick`` (dest -> value).

    Options given explicitly on the command line still win over the quick values.
    """
    if "--quick" in (sys.argv[1:] if argv is None else list(argv)):
        p.set_defaults(**quick)
    return finish_args(p, argv, check)
