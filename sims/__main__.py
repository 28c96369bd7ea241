"""The original code's command line: ``python -m sims --mode ... --sweep ...`` runs the paper's figures.

Every command of the original code's README runs with ``python main.py`` replaced by
``python -m sims``: the original flags (the same names, defaults, choices and meanings)
are translated into one experiment module's configuration by the table of
:mod:`sims._original` (:mod:`sims._translate` applies it), the equivalent experiment command is printed
(``-> python -m sims.<module> ...``) and run, and ``original_command.json`` (the original
flags, the experiment command and the notes) is written next to its results. The mapping
is listed by ``python -m sims --help`` and in ``docs/original_commands.md``, both generated
from that table.
"""
from __future__ import annotations

import importlib
import shlex
import sys

from . import _io, _original, _original_mnist, _translate
from ._translate import PROG, build_parser, parse, translate

__all__ = ["main", "build_parser", "parse", "translate"]


def main(argv=None):
    """Translate the original flags, print the experiment command, run it; returns its exit status."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if argv and argv[0] in _original_mnist.NAMES:
        return _mnist(argv[1:])
    parser = build_parser()
    args, options = parse(argv, parser)
    try:
        tr = _translate.translate_args(args, options)
    except _original.TranslationError as exc:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(f"-> {tr.command}")
    for note in tr.notes:
        print(f"   note: {note}")
    sys.stdout.flush()
    status = importlib.import_module(f"sims.{tr.module}").main(tr.argv)
    if status in (0, None):
        doc = dict(original="python main.py " + shlex.join(argv), equivalent=tr.command, module=tr.module,
                   argv=tr.argv, figure=tr.route.figure, trains=tr.trains, notes=tr.notes, interpretation=tr.record,
                   flags={k: getattr(args, k) for k in _original.FLAGS}, explicit=sorted(args.explicit))
        _io.write_set(tr.out, {"original_command.json": _io.json_text(doc)})
    return status


def _mnist(argv):
    """``python -m sims mnist <the original MNIST script's flags>``: run it as sims.mnist."""
    module_argv, command, notes = _original_mnist.translate(argv)
    print(f"-> {command}")
    for note in notes:
        print(f"   note: {note}")
    sys.stdout.flush()
    return importlib.import_module("sims.mnist").main(module_argv)


if __name__ == "__main__":
    sys.exit(main())
