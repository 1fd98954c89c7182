"""The one base class of the pure packages' errors about the data a user gave.

The pure packages (:mod:`bids_app.parcels`, :mod:`bids_app.fmri`, :mod:`bids_app.meg`,
:mod:`bids_app.stats` and :mod:`bids_app.blocks`) know nothing of exit codes or of the command
line (STYLE.md). Each raises its own :class:`ValueError` subclasses, and every one of them that
bad input data can cause derives from :class:`InputDataError`, defined here without any import
so that the pure packages import nothing above them. :mod:`bids_app.errors` maps this class, and
so all of them, to the bad-data exit code (65); ``tests/test_imports.py`` checks that every
error class of the pure packages derives from it.
"""

from __future__ import annotations

__all__ = ["InputDataError"]


class InputDataError(ValueError):
    """Input data that the science code cannot use as given; the message says what is wrong
    and how to fix it (the interfaces prepend the file concerned)."""
