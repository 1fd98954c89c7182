"""The template anatomy every simulated subject shares, with the app's own parcellation.

The simulator uses exactly the functions the app uses (template subject, parcellation, grids,
source space, BEM), so planted parcels are parcels the app will analyse.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bids_app.io.anatomy import make_parcellation, subject_grids, subject_surfaces
from bids_app.io.templates import write_fsaverage5
from bids_app.meg.headmodel import grid_source_space
from bids_app.parcels.options import ParcellationOptions
from bids_app.simulate.writer import TemplateAnatomy

LOGGER = logging.getLogger(__name__)


def prepare_template_anatomy(work_dir: Path, *, atlas: str = "auto",
                             options: ParcellationOptions | None = None) -> TemplateAnatomy:
    """Write the template into ``work_dir`` and build parcels, grids and source space (the BEM
    is built on first use, :attr:`TemplateAnatomy.bem`).

    ``atlas`` is found as the app finds it (:func:`bids_app.io.atlases.resolve_atlas`), so that
    the planted parcels are the ones the app analyses with the same ``--atlas``; ``options``
    (default: the app's) split it into parcels and choose the grids.
    """
    from bids_app.io.atlases import resolve_atlas

    template = write_fsaverage5(Path(work_dir) / "freesurfer")
    choice = resolve_atlas(atlas)
    if choice.note:
        LOGGER.warning("%s", choice.note)
    options = options or ParcellationOptions()
    parcellation = make_parcellation(
        atlas=choice.name, atlas_files=choice.files, parcellation_table=None, options=options,
        template_dir=template,
    )
    surfaces = subject_surfaces(template.parent, template.name)
    grids = subject_grids(surfaces, template, options)
    src = grid_source_space(template.name, template.parent, grids["meg"])
    fmri_vertices = grids["fmri"]
    mid = np.concatenate([0.5 * (s.white[v] + s.pial[v]) for s, v in zip(surfaces, fmri_vertices)])
    white = np.concatenate([s.white[v] for s, v in zip(surfaces, fmri_vertices)])
    vertex_parcel = parcellation.to_points(fmri_vertices)
    n_parcels = len(parcellation.included_names)
    centroids = np.array([white[vertex_parcel == k].mean(axis=0) for k in range(n_parcels)])
    return TemplateAnatomy(
        subjects_dir=template.parent,
        subject=template.name,
        white=[(s.white, s.tris) for s in surfaces],
        pial=[(s.pial, s.tris) for s in surfaces],
        inner_skull=_inner_skull(template),
        parcel_names=parcellation.included_names,
        vertex_parcel=vertex_parcel,
        mid_rr=mid,
        src=src,
        point_parcel=parcellation.to_points([s["vertno"] for s in src]),
        atlas=parcellation.atlas,
        parcel_centroids=centroids,
    )


def _inner_skull(template: Path):
    from bids_app.io.anatomy import read_surface

    return read_surface(template / "bem" / "inner_skull.surf")
