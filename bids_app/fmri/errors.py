"""Exceptions of the fMRI package.

Every class derives from :class:`FMRIInputError`, itself a
:class:`~bids_app.input_errors.InputDataError` (a :class:`ValueError`), so the command line maps
all of them to the "bad data" exit code (65). Messages name the problem, what is allowed and how to
fix it.
"""

from __future__ import annotations

from bids_app.input_errors import InputDataError

__all__ = [
    "BoldImageError",
    "EventTimingError",
    "FMRIInputError",
    "RegistrationError",
    "RepetitionTimeError",
    "SurfaceSamplingError",
]


class FMRIInputError(InputDataError):
    """Base class: fMRI input data cannot be processed as given."""


class BoldImageError(FMRIInputError):
    """The BOLD image is unusable: not 4-D, too few volumes, non-finite values, bad affine."""


class RepetitionTimeError(FMRIInputError):
    """The repetition time (``RepetitionTime`` in the BOLD sidecar) is missing or invalid."""


class EventTimingError(FMRIInputError):
    """The blocks of the events do not fit in the kept volumes of the run."""


class RegistrationError(FMRIInputError):
    """An image given to realignment or coregistration cannot be registered."""


class SurfaceSamplingError(FMRIInputError):
    """Surface coordinates, parcel labels or surface data are inconsistent."""
