"""Exceptions of the group statistics package.

:class:`GroupStatsError` is a :class:`~bids_app.input_errors.InputDataError` (a
:class:`ValueError`), so the command line maps it to the bad-data exit code (65) and prints the message without a traceback. Messages name the offending array or
option and, for options, the allowed values.
"""

from __future__ import annotations

from bids_app.input_errors import InputDataError

__all__ = ["GroupStatsError", "check_choice"]


class GroupStatsError(InputDataError):
    """The group-level inputs or options cannot be analysed as given."""


def check_choice(name: str, value, allowed) -> None:
    """Raise :class:`GroupStatsError` unless ``value`` is one of ``allowed``.

    The message reads "Invalid value for 'name': allowed are 'a', 'b', got 'x'".
    """
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise GroupStatsError(f"Invalid value for {name!r}: allowed are {listed}, got {value!r}")
