"""Exceptions of the MEG package.

Every class derives from :class:`MEGInputError`, itself a
:class:`~bids_app.input_errors.InputDataError` (a :class:`ValueError`), so the command line maps
all of them to the "bad data" exit code (65). Messages say what is wrong, what is
allowed and how to fix it; the interfaces prepend the name of the file.
"""

from __future__ import annotations

from bids_app.input_errors import InputDataError

__all__ = [
    "CalibrationError",
    "EventsOutsideError",
    "MEGInputError",
    "MissingEOGError",
    "NoSensorsError",
    "SamplingRateError",
    "TooFewTrialsError",
]


class MEGInputError(InputDataError):
    """Base class: a MEG recording cannot be processed as given."""


class NoSensorsError(MEGInputError):
    """The recording has none of the sensors used for source estimation (gradiometers)."""


class MissingEOGError(MEGInputError):
    """EOG rejection was required but the recording has no EOG channel."""


class EventsOutsideError(MEGInputError):
    """Stimulus events (with the epoch around them) fall outside the recording."""


class SamplingRateError(MEGInputError):
    """The sampling rate (or the recording's low-pass) is too low for a frequency band."""


class TooFewTrialsError(MEGInputError):
    """No block keeps enough trials (``[meg] min_trials_per_block``) after EOG rejection."""


class CalibrationError(MEGInputError):
    """A fine-calibration or cross-talk file does not belong to this MEG system."""
