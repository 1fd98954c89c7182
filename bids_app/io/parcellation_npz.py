"""``parcellation.npz``: the parcellation of one subject, as the anatomy stage hands it to the
fMRI and MEG steps.

A private file of the work folder (never a derivative): :class:`~bids_app.interfaces.anatomy.
Parcellate` writes it with :func:`write_parcellation`; ``SampleParcels``, ``SurfaceFileParcels``
and ``FsaverageParcels`` (:mod:`bids_app.interfaces.fmri`) and ``BandPower``
(:mod:`bids_app.interfaces.meg`) read it with :func:`read_parcellation`. These two functions are
the only code that knows its layout: a NumPy ``.npz`` (no pickled objects) holding

=================== ========= =============== ===========================================
array               dtype     shape           content
=================== ========= =============== ===========================================
``names``           str       (n_parcels,)    the included parcels' names; position =
                                              parcel index used below
``hemis``           str       (n_parcels,)    hemisphere of each parcel, ``lh`` or ``rh``
``fmri_parcel``     int64     (n_fmri,)       parcel index of each fMRI grid point (left
                                              hemisphere's points, then the right's; the
                                              order of ``fmri_grid.npz``), -1: none
``meg_parcel``      int64     (n_sources,)    parcel index of each source of the MEG source
                                              space (left ``vertno``, then right), -1: none
``meg_vertices_lh`` int64     (n_sources_lh,) the source space's vertex numbers on the
                                              subject's left surface (its ``vertno``)
``meg_vertices_rh`` int64     (n_sources_rh,) the same for the right hemisphere
``atlas``           str       ()              the atlas entity of the outputs
=================== ========= =============== ===========================================
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: The arrays of a ``parcellation.npz``, in the order of the table above.
ARRAYS = ("names", "hemis", "fmri_parcel", "meg_parcel", "meg_vertices_lh", "meg_vertices_rh",
          "atlas")


def write_parcellation(path: str | Path, *, names: Sequence[str], hemis: Sequence[str],
                       fmri_parcel: np.ndarray, meg_parcel: np.ndarray,
                       meg_vertices: Sequence[np.ndarray], atlas: str) -> Path:
    """Write ``parcellation.npz`` (the arrays of the module's table; ``meg_vertices`` is the
    pair left, right)."""
    path = Path(path)
    if len(names) != len(hemis):
        raise ValueError(f"{len(names)} parcel names but {len(hemis)} hemispheres")
    left, right = meg_vertices
    np.savez(path, names=np.array(list(names), dtype=str), hemis=np.array(list(hemis), dtype=str),
             fmri_parcel=np.asarray(fmri_parcel, dtype=np.int64),
             meg_parcel=np.asarray(meg_parcel, dtype=np.int64),
             meg_vertices_lh=np.asarray(left, dtype=np.int64),
             meg_vertices_rh=np.asarray(right, dtype=np.int64),
             atlas=np.array(str(atlas)))
    return path


def read_parcellation(path: str | Path) -> dict:
    """The arrays of a ``parcellation.npz`` by name; ``names`` and ``hemis`` as lists of str,
    ``atlas`` as a str."""
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in ARRAYS if key not in data.files]
        if missing:  # a work folder of another version of the app
            raise ValueError(f"{path} lacks {', '.join(missing)}: it was written by another "
                             "version of the app; remove the work folder and run again")
        out = {key: data[key] for key in ARRAYS}
    out["names"] = [str(n) for n in out["names"]]
    out["hemis"] = [str(h) for h in out["hemis"]]
    out["atlas"] = str(out["atlas"])
    return out
