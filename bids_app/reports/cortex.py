"""Parcel values on the fsaverage5 cortex: per-vertex parcel labels from the participant
level's label GIFTIs (``hemi-{L,R}_space-fsaverage5_atlas-<a>_dseg.label.gii``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def vertex_labels(output_dir: Path, atlas: str) -> dict[str, np.ndarray] | None:
    """Parcel row of every fsaverage5 vertex per hemisphere (-1 outside), or None."""
    import nibabel as nib

    from bids_app.io.derivatives import surface_dseg_path

    out = {}
    for hemi in ("lh", "rh"):
        path = surface_dseg_path(output_dir, atlas, hemi)
        if not path.is_file():
            return None
        out[hemi] = np.asarray(nib.load(path).agg_data(), int)
    return out


def parcel_values_on_vertices(values: Mapping[str, float], labels: dict[str, np.ndarray],
                              table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex arrays (lh, rh) of a value per parcel name; NaN where no value."""
    name_of = dict(zip(table["index"].astype(int), table["name"]))
    out = []
    for hemi in ("lh", "rh"):
        rows = labels[hemi]
        out.append(np.array([values.get(name_of.get(int(r), ""), np.nan) if r >= 0 else np.nan
                             for r in rows], float))
    return out[0], out[1]
