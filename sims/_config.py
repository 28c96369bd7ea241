"""Experiments as typed data: frozen configuration dataclasses whose fields are the options.

An experiment's configuration is a frozen dataclass deriving from :class:`Config`. Each
field is declared with :func:`option`, which carries the help text, the validation rule
(built from :mod:`linfusion.validation`), the value ``--quick`` gives it and the option
group. The same object is what :mod:`sims._cli` builds from the command line and what a
notebook user builds by hand::

    from sims import late_fusion
    cfg = late_fusion.Config(rho=0.5)            # checked here: Config(rho=1) raises
    result = late_fusion.run(cfg)

A field whose default is None means "the library's default" (for example ``scale=None``:
1e-9 for the per-entry scheme, 0.1 for the others, as :func:`linfusion.train` decides); the
command line never substitutes a second default of its own.
"""
from __future__ import annotations

import dataclasses
import functools
import shlex
import typing
from dataclasses import MISSING, dataclass

from linfusion.validation import check_choice, check_int, check_scalar

__all__ = ["Config", "option", "real", "integer", "reals", "integers", "choice", "flag_name",
           "LIBRARY_DEFAULT"]

#: shown in --help for a None default that lets the library decide
LIBRARY_DEFAULT = "the library's default"


def option(default, help, *, check=None, choices=None, group=None, quick=MISSING, cli=True, metavar=None,
           none_means=LIBRARY_DEFAULT, repeat=False):
    """A configuration field with its command-line metadata.

    Parameters
    ----------
    default : object
        Immutable default (a tuple, not a list). None with ``none_means`` for "decided
        elsewhere" (default: by the library).
    help : str
        One-line help text, without the default (the parser adds it once).
    check : callable, optional
        ``check(name, value) -> value``: converts and validates, raising ValueError or
        TypeError naming the field (see :func:`real`, :func:`integer`, ...).
    choices : tuple, optional
        Allowed values.
    group : str, optional
        Option group in ``--help``.
    quick : object, optional
        The value ``--quick`` gives this field (when not given explicitly).
    cli : bool
        False keeps the field off the command line (set by code only).
    metavar : str, optional
    none_means : str
        What a None value means, for ``--help``.
    repeat : bool
        A tuple field given by repeating its flag, one item per flag (``--modality a=x,y
        --modality b=z``), instead of one comma-separated value.
    """
    md = dict(help=help, check=check, choices=choices, group=group, cli=cli, metavar=metavar,
              none_means=none_means, repeat=repeat)
    if quick is not MISSING:
        md["quick"] = quick
    if isinstance(default, (list, dict, set)):
        raise TypeError(f"default {default!r} is mutable; use a tuple.")
    return dataclasses.field(default=default, metadata=md)


# ---------------------------------------------------------------------- rules
def real(lo=None, hi=None, *, lo_open=False, hi_open=False):
    """Rule: a finite real number in the interval (bounds optional)."""
    return functools.partial(_real, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


def _real(name, value, **bounds):
    return check_scalar(name, value, **bounds)


def integer(lo=None, hi=None):
    """Rule: an integer in [lo, hi]."""
    return functools.partial(_integer, lo=lo, hi=hi)


def _integer(name, value, **bounds):
    return check_int(name, value, **bounds)


def reals(lo=None, hi=None, *, lo_open=False, hi_open=False, min_len=1):
    """Rule: a non-empty tuple of finite reals, each in the interval."""
    return functools.partial(_many, rule=real(lo, hi, lo_open=lo_open, hi_open=hi_open), min_len=min_len)


def integers(lo=None, hi=None, *, min_len=1):
    """Rule: a non-empty tuple of integers, each in [lo, hi]."""
    return functools.partial(_many, rule=integer(lo, hi), min_len=min_len)


def _many(name, value, *, rule, min_len):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        value = (value,)
    out = tuple(rule(f"{name}[{i}]", v) for i, v in enumerate(value))
    if len(out) < min_len:
        raise ValueError(f"{name} == {out!r}, must hold at least {min_len} value(s).")
    return out


def choice(*values):
    """Rule: one of ``values``."""
    return functools.partial(_choice, values=values)


def _choice(name, value, *, values):
    return check_choice(name, value, values)


def _boolean(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} == {value!r}, must be True or False.")
    return value


def flag_name(name):
    """The command-line flag of field ``name``: ``fuse_depth`` -> ``--fuse-depth``."""
    return "--" + name.replace("_", "-")


# ---------------------------------------------------------------------- the base class
@dataclass(frozen=True)
class Config:
    """Base of every experiment configuration: checks each field, then the cross-field rules.

    Subclasses declare fields with :func:`option` and may override :meth:`validate` for
    rules that involve several fields (raise ValueError naming them).
    """

    def __post_init__(self):
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                if f.default is None:        # "decided elsewhere"
                    continue
                raise TypeError(f"{f.name} == None, must be given (default {f.default!r}).")
            kind = hints[f.name]
            if kind is bool:
                value = _boolean(f.name, value)
            elif _is_tuple(kind) and isinstance(value, list):
                value = tuple(value)
            check = f.metadata.get("check")
            if check is not None:
                value = check(f.name, value)
            elif f.metadata.get("choices") is not None:
                value = check_choice(f.name, value, f.metadata["choices"])
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self):
        """Rules between fields (override); raise ValueError naming the fields."""

    @classmethod
    def quick(cls, **given):
        """The small setting: the fields' ``quick`` values, then ``given`` on top."""
        return cls(**{**cls.quick_values(), **given})

    @classmethod
    def quick_values(cls):
        """What ``--quick`` changes: field name -> value (fields' ``quick`` metadata, then ``QUICK``)."""
        out = {f.name: f.metadata["quick"] for f in dataclasses.fields(cls) if "quick" in f.metadata}
        out.update(getattr(cls, "QUICK", {}))
        return out

    def replace(self, **changes):
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Field name -> value (tuples as lists), for JSON."""
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    def changed(self):
        """Fields whose value differs from the class default, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("cli", True) and getattr(self, f.name) != f.default}

    def command(self, module):
        """The ``python -m`` command that rebuilds this configuration exactly."""
        words = ["python", "-m", module]
        for name, value in self.changed().items():
            if isinstance(value, bool):
                words.append(flag_name(name) if value else "--no-" + name.replace("_", "-"))
            elif value is None:
                continue
            elif isinstance(value, tuple) and _field(type(self), name).metadata.get("repeat"):
                for item in value:
                    words += [flag_name(name), format_value(item)]
            elif isinstance(value, tuple):
                words.append(f"{flag_name(name)}={format_value(value)}")
            else:
                words += [flag_name(name), format_value(value)]
        return shlex.join(words)


def format_value(value):
    """A value as the command line writes it (floats to 12 significant digits)."""
    if isinstance(value, tuple):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


def _field(cls, name):
    return next(f for f in dataclasses.fields(cls) if f.name == name)


@functools.lru_cache(maxsize=None)
def _hints(cls):
    return typing.get_type_hints(cls)


def _is_tuple(kind):
    return kind is tuple or typing.get_origin(kind) is tuple


def field_kind(cls, name):
    """(scalar type, is_tuple, optional) of a field's annotation."""
    kind = _hints(cls)[name]
    optional = False
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        optional = len(inner) < len(args)
        kind = inner[0]
        args = typing.get_args(kind)
    if _is_tuple(kind):
        return (args[0] if args else str), True, optional
    return kind, False, optional
