"""Translating the original code's flags with the table of :mod:`sims._original`.

:func:`translate` (or :func:`translate_args` on parsed flags) picks the first route that
takes the command and builds the module's field values. Rules: a field is set when its
flag was given, or when the original's default differs from the module's; the module's
``Config`` checks every value (errors name the original flag); ``--quick`` uses the
module's quick setting instead of the size flags (:data:`sims._original.SIZE_FLAGS`); a
flag that the chosen experiment does not use is accepted (the original accepted it) and,
when given, earns a one-line note; ``--mode fission`` is refused
(:data:`sims._original.FISSION`). :func:`mapping_text` (``--help``) and
:func:`mapping_markdown` (``docs/original_commands.md``) are generated from the table.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import math
import os
import shlex
import textwrap
from dataclasses import dataclass, field

from . import _config
from ._original import FISSION, FLAGS, ROUTES, SIZE_FLAGS, SWEEP_MODE, Route, TranslationError

__all__ = ["Translation", "translate", "translate_args", "build_parser", "parse", "route_of", "mapping_text",
           "mapping_markdown", "PROG", "OUTPUT_OPTIONS"]

PROG = "python -m sims"
DESCRIPTION = "Figures of the paper from the original code's command line: python -m sims --mode ... --sweep ..."
#: the toolkit's own options, passed on to the module
OUTPUT_OPTIONS = ("out", "seed", "quick", "workers", "force", "show", "format", "style")


# ---------------------------------------------------------------------- translating
@dataclass
class Translation:
    """An original command translated into one experiment module's configuration.

    Attributes
    ----------
    module : str
    route : Route
    fields : dict
        The module's fields this command sets (field -> value).
    argv : list of str
        ``fields`` and the output options as the module's command line.
    notes : list of str
        One line per flag ignored or reinterpreted.
    out : str
        The output folder.
    quick : bool
    config : object or None
        The module's ``Config`` built from ``fields`` (None for a module without one).
    record : dict
        Interpretations worth saving (e.g. var_lin read as a variance).
    trains : str
        What it trains, in words.
    """

    module: str
    route: Route
    fields: dict
    argv: list
    notes: list
    out: str
    quick: bool
    config: object = None
    record: dict = field(default_factory=dict)
    trains: str = ""

    @property
    def command(self):
        """The equivalent experiment command, shell-quoted."""
        return shlex.join(["python", "-m", f"sims.{self.module}"] + self.argv)

    def settings(self):
        """Every field of the module as this command runs it (module defaults, quick, then ``fields``)."""
        module = importlib.import_module(f"sims.{self.module}")
        if self.config is not None:
            return dataclasses.asdict(self.config)
        out = dict(_legacy_defaults(module))         # a module without a Config (until converted)
        out.update(self.fields)
        return out


def _legacy_defaults(module):
    """Defaults of a module not yet on a typed configuration, from its own parser."""
    if hasattr(module, "build_parser"):
        parser = module.build_parser()
    elif hasattr(module, "AXIS"):
        from . import _deep
        parser = _deep.sweep_parser(module.AXIS)
    else:
        parser = module._parser()
    return vars(parser.parse_args([]))


def _module_defaults(module):
    if hasattr(module, "Config"):
        return {f.name: f.default for f in dataclasses.fields(module.Config)}
    return _legacy_defaults(module)


def _resolved_default(defaults, name, fields):
    """A field's default as the module runs it (None defers to the library: scale by its scheme)."""
    value = defaults.get(name, _MISSING)
    if value is None and name == "scale":
        from linfusion.architecture import default_scale
        scheme = next((src[k] for src in (fields, defaults) for k in ("init", "init_scheme") if k in src), "entry")
        scheme = "layer" if scheme == "both" else scheme      # the deep sweeps' layer-and-balanced choice
        return default_scale(scheme) if scheme in ("entry", "layer", "balanced") else None
    return value


_MISSING = object()


def route_of(args):
    """The first route of :data:`ROUTES` that takes these original flags."""
    for route in ROUTES:
        if route.applies(args):
            return route
    raise TranslationError(f"--sweep {args.sweep}: no experiment takes this command")   # pragma: no cover


def translate_args(args, options):
    """Translate parsed original flags (:func:`sims.__main__.parse`) into a :class:`Translation`.

    Parameters
    ----------
    args : argparse.Namespace
        The original flags with their defaults, and ``explicit`` (the set of flags given).
    options : dict
        The toolkit's output options (``out``, ``seed``, ``quick``, ``workers``, ``force``,
        ``show``, ``format``, ``style``); None or False when not given.

    Raises
    ------
    TranslationError
        A mode, value or combination this toolkit cannot run, naming the original flag.
    """
    if args.mode == "fission":
        raise TranslationError(FISSION)
    need = SWEEP_MODE.get(args.sweep)
    route = route_of(args)
    if need is not None and args.mode != need:
        raise TranslationError(f"--sweep {args.sweep} with --mode {args.mode}: this experiment "
                               f"(sims.{route.module}, figure {route.figure}) is defined for --mode {need}")
    module = importlib.import_module(f"sims.{route.module}")
    defaults = _module_defaults(module)
    quick = bool(options.get("quick"))
    fields, used, notes, dropped, unless = {}, {"mode", "sweep"}, [], [], {}
    for name in route.keep:
        used.add(name)
        value = getattr(args, name)
        if value != FLAGS[name].default:
            shown = "" if isinstance(value, bool) else f" {_fmt(value)}"
            raise TranslationError(f"--{name}{shown} is not supported with --sweep {args.sweep}: {route.keep_why}; "
                                   "use --sweep single for one run with it")
    for name, to in route.flags.items():
        if to.when is not None and not to.when(args):
            unless[name] = to.unless
            continue
        used.add(name)
        if to.field is None:
            continue
        if quick and name in SIZE_FLAGS:
            if name in args.explicit:
                dropped.append(name)
            continue
        value = to.convert(getattr(args, name))
        if name in args.explicit or _resolved_default(defaults, to.field, route.fixed) != value:
            fields[to.field] = value
    fields.update(route.fixed)
    if route.derive is not None:
        fields.update(route.derive(args))
    if options.get("seed") is not None:
        fields["seed"] = options["seed"]
    if route.notes is not None:
        notes += route.notes(args)
    if dropped:
        notes.append("--quick: the module's quick setting replaces " + ", ".join(f"--{n}" for n in dropped))
    for name in sorted(args.explicit - used):
        reason = unless.get(name) or route.unused.get(name) or "not a parameter of this experiment"
        notes.append(f"--{name}: {reason}; ignored by sims.{route.module}")
    config = _config_of(module, fields, quick, route)
    home = os.path.join("results", route.module)
    out = options.get("out") or (os.path.join(home, route.out(args)) if route.out else home)
    argv = _argv(fields)
    if quick:
        argv.append("--quick")
    if options.get("out") or route.out:
        argv += ["--out", out]
    kind = getattr(module, "KIND", "sweep" if "force" in defaults else "run")
    for name in ("format", "style"):
        if options.get(name):
            argv += [f"--{name}", str(options[name])]
    if options.get("show"):
        argv.append("--show")
    if options.get("workers") is not None:
        argv += ["--workers", str(options["workers"])]
    if options.get("force"):
        if kind == "sweep":
            argv.append("--force")
        else:
            notes.append(f"--force: sims.{route.module} keeps no cache; ignored")
    record = {}
    if "var_lin" in used and route.flags.get("var_lin") is not None and route.flags["var_lin"].field:
        record = dict(var_lin=args.var_lin, var_lin_reading="variance", sigma_a=math.sqrt(args.var_lin))
    values = {k: getattr(args, k) for k in FLAGS}
    return Translation(route.module, route, fields, argv, notes, out, quick, config, record,
                       route.trains.format(**values))


def _config_of(module, fields, quick, route):
    """The module's Config from the translated fields (its checks), errors naming the original flag."""
    if not hasattr(module, "Config"):
        return None
    try:
        return module.Config.quick(**fields) if quick else module.Config(**fields)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        names = {to.field: flag for flag, to in route.flags.items() if to.field}
        names.update({name: name for name in FLAGS if name not in names.values()})   # derived: depth, fuse_depth
        first = text.split(" ", 1)[0].split("[", 1)[0]
        if first in names:
            raise TranslationError(f"--{names[first]}: {text}") from None
        raise TranslationError(text) from None


def _argv(fields):
    """Fields as a module's command line (``--flag value``; lists as ``--flag=a,b``)."""
    out = []
    for name, value in fields.items():
        flag = _config.flag_name(name)
        if isinstance(value, bool):
            if value:
                out.append(flag)
        elif isinstance(value, tuple):
            out.append(f"{flag}={_config.format_value(value)}")
        else:
            out += [flag, _fmt(value)]
    return out


def _fmt(value):
    return _config.format_value(value)


# ---------------------------------------------------------------------- generated text
def _flag_text(name, to):
    how = f" = {to.how}" if to.how else ""
    cond = f" ({to.when_text})" if to.when_text else ""
    return f"--{name} -> {to.field}{how}{cond}"


def _route_lines(route, width):
    wrap = functools.partial(textwrap.wrap, width=width, initial_indent="      ", subsequent_indent="        ",
                             break_on_hyphens=False)
    lines = textwrap.wrap(route.when, width=width, initial_indent="  ", subsequent_indent="    ")
    lines.append(f"    -> sims.{route.module} (figure {route.figure})")
    lines += wrap("trains " + route.trains.format(**{k: f"--{k}" for k in FLAGS}))
    mapped = [_flag_text(n, to) for n, to in route.flags.items() if to.field is not None]
    if mapped:
        lines += wrap("; ".join(mapped))
    if route.fixed:
        lines += wrap("sets " + ", ".join(f"{k} = {_config.format_value(v) or '()'}" for k, v in route.fixed.items()))
    if route.derive_text:
        lines += wrap(route.derive_text)
    if route.keep:
        lines += wrap("error unless at the original default: " + ", ".join(f"--{k}" for k in route.keep))
    return lines


def mapping_text(width=100):
    """The table for ``python -m sims --help``, generated from :data:`ROUTES`."""
    lines = ["mapping (routes tried in this order; original flag -> the module's field):"]
    for route in ROUTES:
        lines += _route_lines(route, width)
    lines += ["  --mode fission", "    -> refused (exit status 2)", ""]
    lines += textwrap.wrap(_RULES, width=width)
    return "\n".join(lines)


_RULES = ("A field is set when its flag is given or when the original's default differs from the module's. "
          "The module checks every value. --quick uses the module's quick setting instead of "
          + ", ".join(f"--{f}" for f in SIZE_FLAGS) + ". A flag the experiment does not use is accepted and, when "
          "given, noted. Each run also writes original_command.json (original flags, experiment command, notes) "
          "next to its results.")


def mapping_markdown():
    """The table for ``docs/original_commands.md``, generated from :data:`ROUTES`."""
    lines = ["Routes are tried in this order; the first that takes the command runs it.", "",
             "| original command | experiment (figure) | original flag -> field | set always | must keep the original "
             "default |", "|---|---|---|---|---|"]
    for route in ROUTES:
        mapped = "<br>".join(_flag_text(n, to).replace("|", "/") for n, to in route.flags.items()
                             if to.field is not None)
        if route.derive_text:
            mapped += "<br>" + route.derive_text
        fixed = ", ".join(f"`{k} = {_config.format_value(v) or '()'}`" for k, v in route.fixed.items()) or "—"
        keep = ", ".join(f"`--{k}`" for k in route.keep) or "—"
        lines.append(f"| {route.when.replace('|', '/')} | `sims.{route.module}` ({route.figure}) | {mapped or '—'} | "
                     f"{fixed} | {keep} |")
    lines += ["| `--mode fission` | refused, exit status 2 | | | |", "", _RULES]
    return "\n".join(lines)


# ---------------------------------------------------------------------- the command line
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The generated mapping kept as written."""


def build_parser():
    """The original code's flags (same names, defaults and choices) and the toolkit's output options."""
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, allow_abbrev=False, argument_default=argparse.SUPPRESS,
        epilog=mapping_text(),
        description=DESCRIPTION + "\nTranslates the original flags into one experiment module's "
                    "configuration, prints that command\n(-> python -m sims.<module> ...) and runs it. See "
                    "python -m sims.<module> --help for each experiment.")
    g = p.add_argument_group("the original flags")
    for name, flag in FLAGS.items():
        text = f"{flag.help} (original default: {_fmt(flag.default) if flag.type is not bool else 'off'})"
        if flag.type is bool:
            g.add_argument(f"--{name}", action="store_true", help=text)
        else:
            g.add_argument(f"--{name}", type=flag.type, choices=flag.choices, help=text)
    g = p.add_argument_group("output (this toolkit's options, passed to the module)")
    g.add_argument("--out", help="output folder (default: the module's results/<module>/, with a subfolder per "
                                 "setting for single runs)")
    g.add_argument("--seed", type=int, help="master seed (default: the module's, 0)")
    g.add_argument("--quick", action="store_true", help="the module's small setting (replaces the size flags)")
    g.add_argument("--workers", type=int, help="sweeps: worker processes; single runs: kernel threads "
                                               "(default: all cores)")
    g.add_argument("--force", action="store_true", help="sweeps: recompute points already in the cache")
    g.add_argument("--show", action="store_true", help="also open the figure in a window")
    g.add_argument("--format", help="figure formats, comma separated, among png, pdf, svg (default: png)")
    g.add_argument("--style", choices=("screen", "paper", "talk"), help="figure style (default: screen)")
    return p


def parse(argv, parser=None):
    """Parse original flags: (namespace with every original flag and ``explicit``, output options)."""
    parser = parser or build_parser()
    ns = vars(parser.parse_args([str(a) for a in argv]))
    explicit = {k for k in ns if k in FLAGS}
    args = argparse.Namespace(**{k: ns.get(k, f.default) for k, f in FLAGS.items()}, explicit=explicit)
    options = {k: ns.get(k) for k in OUTPUT_OPTIONS}
    return args, options


def translate(argv):
    """Translate original flags (argparse's error and SystemExit 2 on bad input).

    Parameters
    ----------
    argv : list of str
        E.g. ``['--mode', 'late_fusion', '--plot_weight']``.

    Returns
    -------
    Translation
    """
    parser = build_parser()
    args, options = parse(argv, parser)
    try:
        return translate_args(args, options)
    except TranslationError as exc:
        parser.error(str(exc))
