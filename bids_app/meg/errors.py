"""Exceptions of the MEG package.

Every class derives from :class:`MEGInputError`, itself a :class:`ValueError`, so the command
line maps all of them to the "bad data" exit code (65). Messages say what is wrong, what is
allowed and how to fix it; the interfaces prepend the name of the file.
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "EventsOutsideError",
    "MEGInputError",
    "MissingEOGError",
    "NoSensorsError",
    "SamplingRateError",
]


class MEGInputError(ValueError):
    """Base class: a MEG recording cannot be processed as given."""


class NoSensorsError(MEGInputError):
    """The recording has none of the sensors used for source estimation (gradiometers)."""


class MissingEOGError(MEGInputError):
    """EOG rejection was required but the recording has no EOG channel."""


class EventsOutsideError(MEGInputError):
    """Stimulus events (with the epoch around them) fall outside the recording."""


class SamplingRateError(MEGInputError):
    """The sampling rate (or the recording's low-pass) is too low for a frequency band."""


class CalibrationError(MEGInputError):
    """A fine-calibration or cross-talk file does not belong to this MEG system."""
