"""The one driver of every experiment: command line, checks, run, figure, files, summary.

An experiment module defines

- ``NAME`` (``python -m sims.<NAME>``), ``KIND`` ('theory': trains nothing; 'run': trains a
  few networks in this process; 'sweep': trains through :mod:`linfusion.sweep`);
- ``Config``, a frozen :class:`sims._config.Config` subclass (its fields are the options);
- ``run(cfg, execution=None) -> result``, ``predict(cfg, result) -> prediction``,
  ``plot(cfg, result, prediction) -> Figure or None`` (None: nothing usable to draw),
  ``summary(cfg, result, prediction) -> str`` and
  ``outputs(cfg, result, prediction) -> dict`` with ``arrays`` (for the .npz), optionally
  ``table`` (rows for the .csv) and ``record`` (numbers for the .json);
- optionally ``set_threads(n)``, what ``--workers n`` does for a 'run' module whose engine
  is not the compiled kernels (default: :func:`linfusion.set_threads`).

:func:`main` builds the parser from the configuration's fields (no abbreviations, each
default shown once, ``--quick`` listing what it changes), checks every value and every
path before any work, runs, writes the files as one set and prints one summary with one
wall time. Exit status: 0 with a figure, 1 when there was nothing usable to draw (for
example every run diverged: the summary counts them and the arrays are still written),
2 for a usage error, 130 when interrupted (Ctrl-C: one line, cached sweep points kept).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass

from . import _config, _io

__all__ = ["Execution", "build_parser", "parse", "main", "entry_point", "describe_quick"]


@dataclass(frozen=True)
class Execution:
    """How an experiment runs (not what it computes).

    Attributes
    ----------
    workers : int, optional
        Sweeps: worker processes (capped at the points and the cores); single runs: the
        threads of the training kernels. None: all cores.
    cache : str, optional
        Sweeps: cache folder (default ``<out>/cache``); None: no cache.
    force : bool
        Sweeps: recompute points already in the cache.
    scheduler : str, optional
        Sweeps: a Dask scheduler address, or 'dask' for ``DASK_SCHEDULER_ADDRESS``.
    progress : bool
        Show progress bars.
    """

    workers: int | None = None
    cache: str | None = None
    force: bool = False
    scheduler: str | None = None
    progress: bool = True


class _Help(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; the defaults are written into each help once."""


# ---------------------------------------------------------------------- parser
def describe_quick(config_cls):
    """What ``--quick`` changes, as ``--n 2048, --width 20``."""
    q = config_cls.quick_values()
    return ", ".join(f"{_config.flag_name(k)} {_config.format_value(v)}" for k, v in q.items()) or "nothing"


def _default_text(f):
    if f.default is None:
        return f.metadata.get("none_means", _config.LIBRARY_DEFAULT)
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    return _config.format_value(f.default)


def _scalar_parser(kind, name):
    def convert(text):
        if kind is bool:
            raise argparse.ArgumentTypeError("is a switch")
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
    convert.__name__ = kind.__name__
    return convert


def _list_parser(kind):
    def convert(text):
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: must be comma-separated {kind.__name__} values") from None
    convert.__name__ = f"comma-separated {kind.__name__}s"
    return convert


def build_parser(module):
    """The argparse parser of an experiment module, built from its ``Config`` fields."""
    cfg_cls = module.Config
    doc = (module.__doc__ or "").strip()
    p = argparse.ArgumentParser(prog=f"python -m sims.{module.NAME}", description=doc.split("\n\n")[0],
                                formatter_class=_Help, allow_abbrev=False, argument_default=argparse.SUPPRESS,
                                epilog=EXIT_STATUS)
    groups = {name: p.add_argument_group(name) for name in _GROUP_ORDER}
    quick = cfg_cls.quick_values()
    for f in dataclasses.fields(cfg_cls):
        if not f.metadata.get("cli", True):
            continue
        group_name = f.metadata.get("group") or "experiment"
        g = groups.get(group_name) or groups.setdefault(group_name, p.add_argument_group(group_name))
        kind, is_list, _ = _config.field_kind(cfg_cls, f.name)
        text = f.metadata.get("help", "")
        extra = f"default: {_default_text(f)}"
        if f.name in quick:
            extra += f"; --quick: {_config.format_value(quick[f.name])}"
        kw = dict(help=f"{text} ({extra})".replace("%", "%%"), dest=f.name)
        if f.metadata.get("metavar"):
            kw["metavar"] = f.metadata["metavar"]
        if kind is bool and not is_list:
            g.add_argument(_config.flag_name(f.name), action=argparse.BooleanOptionalAction, **kw)
            continue
        if is_list and f.metadata.get("repeat"):
            g.add_argument(_config.flag_name(f.name), action="append", type=_scalar_parser(kind, f.name), **kw)
            continue
        kw["type"] = _list_parser(kind) if is_list else _scalar_parser(kind, f.name)
        if f.metadata.get("choices") is not None and not is_list:
            kw["choices"] = f.metadata["choices"]
        g.add_argument(_config.flag_name(f.name), **kw)
    g = p.add_argument_group("output")
    g.add_argument("--quick", action="store_true", default=False,
                   help=f"a small setting that runs in seconds: {describe_quick(cfg_cls)} "
                        "(options given explicitly keep their values)"
                        + ("; the sweep runs in this process unless --workers or --scheduler is given"
                           if module.KIND == "sweep" else ""))
    g.add_argument("--out", default=os.path.join("results", module.NAME),
                   help=f"output folder (default: results/{module.NAME})")
    g.add_argument("--format", default="png", type=_list_parser(str),
                   help="figure formats, comma separated, among png, pdf, svg (default: png)")
    g.add_argument("--style", default="screen", choices=("screen", "paper", "talk"),
                   help="figure style: screen, paper (8 pt, no title), talk (large) (default: screen)")
    g.add_argument("--show", action="store_true", default=False,
                   help="also open the figure in a window (needs a display)")
    if module.KIND == "run":
        g.add_argument("--workers", type=int, default=None,
                       help="threads of the training kernels (default: all cores)")
    elif module.KIND == "sweep":
        g = p.add_argument_group("sweep execution")
        g.add_argument("--workers", type=int, default=None,
                       help="worker processes, capped at the points and the cores (default: all cores)")
        g.add_argument("--cache", default=None, help="cache folder of finished points (default: <out>/cache)")
        g.add_argument("--force", action="store_true", default=False, help="recompute points already cached")
        g.add_argument("--scheduler", default=None,
                       help="Dask scheduler address, or 'dask' for $DASK_SCHEDULER_ADDRESS (needs "
                            "linfusion[dask]) (default: local processes)")
    return p


_GROUP_ORDER = ("experiment", "data", "network and training")
EXIT_STATUS = ("exit status: 0 figure written; 1 nothing usable to draw (for example every run\n"
               "diverged: the summary counts the runs by outcome; arrays, table and record are\n"
               "still written); 2 usage error; 130 interrupted")
_NUMBER_LIST = re.compile(r"^-[0-9.]")


def _join_negative_lists(parser, argv):
    """``--values -0.5,0.5`` -> ``--values=-0.5,0.5``: argparse would read ``-0.5,0.5`` as an option."""
    list_flags = {a.option_strings[0] for a in parser._actions
                  if a.option_strings and getattr(a.type, "__name__", "").startswith("comma-separated")}
    out, i = [], 0
    while i < len(argv):
        tok = argv[i]
        if tok in list_flags and i + 1 < len(argv) and _NUMBER_LIST.match(argv[i + 1]):
            out.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def _usage_message(exc, cfg_cls):
    """A configuration error with the flag it concerns: ``--lr: lr == -1.0, must be > 0.``"""
    text = str(exc)
    m = re.match(r"([a-z_][a-z0-9_]*)", text)
    if m and m.group(1) in {f.name for f in dataclasses.fields(cfg_cls)}:
        return f"{_config.flag_name(m.group(1))}: {text}"
    return text


def parse(module, argv=None):
    """Parse and check a command line: (Config, options namespace); argparse's exit 2 on bad input."""
    parser = build_parser(module)
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    ns = parser.parse_args(_join_negative_lists(parser, argv))
    names = {f.name for f in dataclasses.fields(module.Config)}
    given = {k: v for k, v in vars(ns).items() if k in names}
    try:
        cfg = module.Config.quick(**given) if ns.quick else module.Config(**given)
    except (ValueError, TypeError) as exc:
        parser.error(_usage_message(exc, module.Config))
    try:
        _check_options(module, ns)
    except ValueError as exc:
        parser.error(str(exc))
    return cfg, ns


def _check_options(module, ns):
    """Every option that is not science, and every path, before any work."""
    bad = [f for f in ns.format if f not in _io.FORMATS]
    if not ns.format or bad:
        raise ValueError(f"--format {','.join(ns.format)!r}: formats must be among {', '.join(_io.FORMATS)}")
    _io.check_folder(ns.out, "--out")
    workers = getattr(ns, "workers", None)
    if workers is not None and workers < 1:
        raise ValueError(f"--workers {workers}: must be >= 1")
    if module.KIND == "sweep":
        cache = ns.cache if ns.cache is not None else os.path.join(ns.out, "cache")
        _io.check_folder(cache, "--cache")
        if ns.scheduler is not None:
            from linfusion.sweep import preflight
            try:
                preflight(scheduler=ns.scheduler)
            except (ImportError, TypeError) as exc:
                raise ValueError(f"--scheduler {ns.scheduler!r}: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"--scheduler: {exc}") from None


def _execution(module, ns):
    if module.KIND == "sweep":
        # --quick: a few runs, which starting worker processes would slow down
        workers = 1 if ns.quick and ns.workers is None and ns.scheduler is None else ns.workers
        return Execution(workers=workers, cache=ns.cache if ns.cache is not None else os.path.join(ns.out, "cache"),
                         force=ns.force, scheduler=ns.scheduler)
    return Execution(workers=getattr(ns, "workers", None))


# ---------------------------------------------------------------------- running
def _one_line_warnings():
    """Warnings as one line each on stderr, written around any progress bar, without source lines."""
    def show(message, category, filename, lineno, file=None, line=None):
        text = f"warning: {message}"
        try:
            from tqdm import tqdm
            tqdm.write(text, file=sys.stderr)
        except ImportError:
            print(text, file=sys.stderr)
    warnings.showwarning = show


def _has_display():
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(name, argv=None):
    """Run experiment ``name`` (``sims.<name>``) from the command line; returns the exit status."""
    module = importlib.import_module(name if "." in name else f"sims.{name}")
    cfg, ns = parse(module, argv)
    started = time.perf_counter()
    execution = _execution(module, ns)
    _one_line_warnings()
    show = ns.show
    if show and not _has_display():
        warnings.warn("--show: no display found; the figure is only saved.")
        show = False
    import matplotlib
    if not show:
        matplotlib.use("Agg")
    try:
        if module.KIND == "run" and execution.workers is not None:
            threads = getattr(module, "set_threads", None)      # a module whose engine is not the kernels'
            if threads is None:
                import linfusion
                threads = linfusion.set_threads
            threads(execution.workers)
        result = module.run(cfg, execution)
        prediction = module.predict(cfg, result)
        from . import _style
        _style.use(ns.style)
        fig = module.plot(cfg, result, prediction)
        outs = module.outputs(cfg, result, prediction)
        text = module.summary(cfg, result, prediction)
        files = {}
        if fig is not None:
            for fmt in ns.format:
                files[f"{module.NAME}.{fmt}"] = _io.figure_bytes(fig, fmt)
        files[f"{module.NAME}.npz"] = _io.npz_bytes(outs["arrays"])
        if outs.get("table") is not None:
            files[f"{module.NAME}.csv"] = _io.csv_text(outs["table"])
        seconds = time.perf_counter() - started
        doc = {**_io.provenance(f"sims.{module.NAME}", cfg, argv), "style": ns.style,
               "wall_seconds": round(seconds, 3), "result": outs.get("record", {})}
        files[f"{module.NAME}.json"] = _io.json_text(doc)
        written = _io.write_set(ns.out, files)
    except KeyboardInterrupt:
        where = f"; finished points are kept in {execution.cache}" if module.KIND == "sweep" else ""
        print(f"interrupted: nothing written{where}", file=sys.stderr)
        return 130
    print(text)
    print(f"wrote {', '.join(str(p) for p in written)}")
    print(f"wall time {time.perf_counter() - started:.1f} s")
    if fig is None:
        print("error: no usable run to draw; see the summary above (arrays and table written)", file=sys.stderr)
        return 1
    import matplotlib.pyplot as plt
    if show:
        plt.show()
    plt.close(fig)
    return 0


def entry_point(name):
    """The ``main(argv=None)`` of experiment ``name``: :func:`main` bound to it."""
    def main_(argv=None):
        return main(name, argv)
    main_.__name__ = main_.__qualname__ = "main"
    main_.__module__ = f"sims.{name}"
    main_.__doc__ = f"Run ``python -m sims.{name}`` with ``argv`` (default: the command line); returns the exit status."
    return main_
