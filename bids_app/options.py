"""Typed options of the processing steps: how they are declared (pure, standard library only).

Each step of the method has one frozen dataclass of settings beside its pure code
(:mod:`bids_app.meg.options`, :mod:`bids_app.fmri.options`, :mod:`bids_app.parcels.options`,
:mod:`bids_app.stats.options`, :class:`bids_app.blocks.DesignOptions`). A field is declared with
:func:`option`: its one default (the published method's value where it has one), its
documentation with units, and what it allows (choices, a :class:`Range` of numbers or a text
pattern). The same declaration serves everywhere:

- the configuration (:mod:`bids_app.config`) is made of these fields, so that a TOML file, the
  command line and ``docs/configuration.md`` use the same names, defaults and checks;
- a workflow factory takes the objects it needs; a nipype interface takes each object as one
  hashed input (:func:`as_dict`) and rebuilds it (:func:`from_dict`);
- the pure function takes the object, and the derivative's sidecar records ``as_dict(options)``.

The path of one option through the layers is drawn in ``docs/architecture.md``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar


@dataclass(frozen=True)
class Range:
    """The numbers an option allows, declared next to its documentation.

    ``low`` and ``high`` are the bounds (``None``: unbounded on that side), inclusive unless
    ``low_open`` / ``high_open``. Every number an option holds (the value, each item of a list,
    each band edge) must lie in the range; NaN and infinities never do.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)

    def __str__(self) -> str:
        """``>= 1``, ``> 0``, ``in (0, 1]``, ``any finite value``..."""
        low, high = number_text(self.low), number_text(self.high)
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{low}, {high}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {high}"
        return "any finite value"


def number_text(x: float | None) -> str:
    """A bound as text: ``1``, ``0.5``, or empty for no bound."""
    return "" if x is None else str(int(x)) if float(x).is_integer() else f"{x:g}"


#: Ranges shared by many options.
ANY = Range()
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_1 = Range(1)
OPEN_SHARE = Range(0, 1, low_open=True, high_open=True)


def option(default: Any, doc: str, *, allowed: tuple | None = None, bounds: Range | None = None,
           pattern: tuple[str, str] | None = None, factory: bool = False):
    """Declare an option with its one default, its documentation and what it allows.

    ``allowed`` lists the choices of a text option, ``bounds`` is the :class:`Range` of every
    number a numeric option holds, ``pattern`` is ``(regular expression, description)`` that
    every text of the option must match. ``factory``: ``default`` is a function making the
    default (lists and tables). The configuration checks them wherever a value comes from
    (command line, TOML file, saved configuration) and shows them in ``docs/configuration.md``.
    """
    metadata = {"doc": doc, "allowed": allowed, "bounds": bounds, "pattern": pattern}
    if factory:
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


T = TypeVar("T")


def as_dict(options: Any) -> dict[str, Any]:
    """The settings of an options object as plain data (tuples as lists): a nipype input, a
    sidecar's record, TOML."""
    return {name: _plain(value) for name, value in dataclasses.asdict(options).items()}


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """The options object ``cls`` rebuilt from :func:`as_dict` data (e.g. a nipype input)."""
    return cls(**data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
