"""Read a subject's FreeSurfer anatomy and derive its parcels and grids (DESIGN 4.1).

Every unusable input is explained with the file it concerns: a missing surface or
``sphere.reg``, a corrupt file, surfaces whose vertex counts disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_app.errors import BadDataError, MissingInputError
from bids_app.parcels.grid import grid_on_subject
from bids_app.parcels.options import ParcellationOptions
from bids_app.parcels.parcellation import (
    HEMIS,
    Parcellation,
    ParcellationError,
    build_parcellation,
    exclusion_patterns,
    read_annotation,
)

LOGGER = logging.getLogger(__name__)


def read_surface(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (mm, surface RAS) and triangles of a FreeSurfer surface, with clear errors."""
    from nibabel.freesurfer import read_geometry

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(
            f"The FreeSurfer surface {path} is missing; the reconstruction is incomplete "
            "(rerun recon-all, or point --fs-subjects-dir to a complete one)."
        )
    try:
        rr, tris = read_geometry(str(path))
    except Exception as err:  # nibabel raises various errors on truncated files
        raise BadDataError(f"The FreeSurfer surface {path} cannot be read ({err}); is it "
                           "empty or truncated?") from None
    if len(rr) == 0 or len(tris) == 0:
        raise BadDataError(f"The FreeSurfer surface {path} has no vertices.")
    return np.asarray(rr, float), np.asarray(tris, int)


@dataclass
class SubjectSurfaces:
    """White, pial and sphere.reg of one hemisphere (mm)."""

    hemi: str
    white: np.ndarray
    pial: np.ndarray
    sphere_reg: np.ndarray
    tris: np.ndarray


def subject_surfaces(subjects_dir: Path, subject: str) -> list[SubjectSurfaces]:
    """Read and check both hemispheres' surfaces of a FreeSurfer subject."""
    surf = Path(subjects_dir) / subject / "surf"
    out = []
    for hemi in HEMIS:
        white, tris = read_surface(surf / f"{hemi}.white")
        pial, _ = read_surface(surf / f"{hemi}.pial")
        sphere, _ = read_surface(surf / f"{hemi}.sphere.reg")
        counts = {f"{hemi}.white": len(white), f"{hemi}.pial": len(pial),
                  f"{hemi}.sphere.reg": len(sphere)}
        if len(set(counts.values())) != 1:
            raise BadDataError(
                f"The surfaces of {surf} disagree in vertex count ("
                + ", ".join(f"{k}: {v}" for k, v in counts.items())
                + "); they must come from one reconstruction."
            )
        out.append(SubjectSurfaces(hemi, white, pial, sphere, tris))
    return out


def fsaverage_sphere(hemi: str, template_dir: Path) -> np.ndarray:
    """The fsaverage sphere of the template subject (fsaverage5: grids up to ico-5)."""
    rr, _ = read_surface(Path(template_dir) / "surf" / f"{hemi}.sphere")
    return rr


def make_parcellation(
    *,
    atlas: str,
    atlas_files: tuple[Path, Path] | None,
    parcellation_table: Path | None,
    options: ParcellationOptions,
    template_dir: Path,
) -> Parcellation:
    """Build the parcellation of an atlas, or the data-driven fallback.

    Parameters
    ----------
    atlas : str
        Atlas name (:class:`bids_app.io.atlases.AtlasChoice`); names the outputs and chooses
        the packaged exclusion list.
    atlas_files : (Path, Path) or None
        Left and right hemisphere files, found before the run
        (:func:`bids_app.io.atlases.resolve_atlas`); None builds the data-driven fallback
        parcels on the template.
    parcellation_table : Path or None
        An edited ``atlas-<name>_dseg.tsv``.
    options : ParcellationOptions
        Exclusion patterns (empty: the atlas' list) and parcels per hemisphere.
    template_dir : Path
        The fsaverage5 template subject.

    Raises
    ------
    BadDataError
        An atlas file or the table cannot be used.
    """
    from bids_app.io.atlases import atlas_label
    from bids_app.parcels.fallback import fallback_labels

    template_dir = Path(template_dir)
    try:
        if atlas_files is not None:
            labels = [read_annotation(path, hemi) for path, hemi in zip(atlas_files, HEMIS)]
            LOGGER.info("Atlas '%s' read from %s and %s", atlas, *atlas_files)
        else:
            import mne

            labels = []
            for hemi in HEMIS:
                white, _ = read_surface(template_dir / "surf" / f"{hemi}.white")
                sphere, _ = read_surface(template_dir / "surf" / f"{hemi}.sphere")
                cortex = np.zeros(len(white), bool)
                cortex[mne.read_label(template_dir / "label" /
                                      f"{hemi}.cortex.label").vertices] = True
                labels.append(fallback_labels(hemi, white, sphere, cortex,
                                              options.n_included_per_hemi))
        patterns = list(options.exclude_regions) or exclusion_patterns(atlas)
        parcellation = build_parcellation(
            labels, atlas=atlas_label(atlas), exclude=patterns,
            n_included_per_hemi=options.n_included_per_hemi,
            subject=template_dir.name, subjects_dir=template_dir.parent,
        )
        if parcellation_table is not None:
            from bids_app.io.derivatives import read_table

            parcellation = parcellation.with_table(read_table(parcellation_table),
                                                   source=str(parcellation_table))
    except ParcellationError as err:
        raise BadDataError(str(err)) from None
    return parcellation


def subject_grids(surfaces: list[SubjectSurfaces], template_dir: Path,
                  options: ParcellationOptions) -> dict[str, list[np.ndarray]]:
    """Subject vertex numbers of the MEG and fMRI grids (``options.meg_grid``,
    ``options.fmri_grid``), per hemisphere (lh, rh)."""
    out: dict[str, list[np.ndarray]] = {"meg": [], "fmri": []}
    for s in surfaces:
        sphere = fsaverage_sphere(s.hemi, template_dir)
        out["meg"].append(grid_on_subject(sphere, s.sphere_reg, options.meg_grid))
        out["fmri"].append(grid_on_subject(sphere, s.sphere_reg, options.fmri_grid))
    return out


def head_mri_trans(*, meg_file: Path, t1w: Path | None, subject: str, subjects_dir: Path,
                   mode: str, trans_file: Path | None = None):
    """The head -> MRI transform of a subject, and how it was obtained.

    ``trans_file`` (a ``-trans.fif`` from the derivatives) wins; otherwise ``mode="landmarks"``
    uses the anatomical landmarks of the MEG ``coordsystem.json`` and of the T1w sidecar
    (:func:`mne_bids.get_head_mri_trans`), and ``mode="fiducials"`` (template anatomy) fits the
    template's fiducials to the digitised ones (:class:`mne.coreg.Coregistration`).
    """
    import mne
    import mne_bids

    if trans_file is not None:
        try:
            return mne.read_trans(trans_file, verbose="error"), f"read from {trans_file}"
        except (OSError, ValueError) as err:
            raise BadDataError(f"Cannot read the transform {trans_file}: {err}") from None
    if mode == "fiducials":
        info = mne.io.read_info(meg_file, verbose="error")
        coreg = mne.coreg.Coregistration(info, subject, subjects_dir, fiducials="auto")
        coreg.fit_fiducials(verbose="error")
        return coreg.trans, "template fiducials fitted to the digitised fiducials"
    if t1w is None:
        raise MissingInputError(
            f"No T1w image for {meg_file.name}: the head-MRI transform needs the T1w with "
            "AnatomicalLandmarkCoordinates in its sidecar, or a -trans.fif in the derivatives."
        )
    try:
        meg_path = mne_bids.get_bids_path_from_fname(meg_file)
        t1_path = mne_bids.get_bids_path_from_fname(t1w)
        trans = mne_bids.get_head_mri_trans(meg_path, t1_bids_path=t1_path, fs_subject=subject,
                                            fs_subjects_dir=subjects_dir, verbose="error")
    except (RuntimeError, ValueError, KeyError, FileNotFoundError) as err:
        raise BadDataError(
            f"Cannot compute the head-MRI transform from the BIDS landmarks of {meg_file.name} "
            f"and {Path(t1w).name}: {err}. Add AnatomicalLandmarkCoordinates to the T1w sidecar "
            "(and the MEG coordsystem.json), or provide a -trans.fif in the derivatives."
        ) from None
    return trans, "BIDS anatomical landmarks (MEG coordsystem.json and T1w sidecar)"


def write_label_gifti(path: Path, vertex_row: np.ndarray, names: list[str]) -> Path:
    """Write per-vertex parcel rows (-1 none) as a GIFTI label file, atomically."""
    import nibabel as nib

    from bids_app.io.derivatives import atomic_write_bytes

    table = nib.gifti.GiftiLabelTable()
    unknown = nib.gifti.GiftiLabel(key=-1, red=0.0, green=0.0, blue=0.0, alpha=0.0)
    unknown.label = "n/a"
    table.labels.append(unknown)
    rng = np.random.default_rng(0)
    for key, name in enumerate(names):
        r, g, b = rng.uniform(0.2, 1.0, 3)
        label = nib.gifti.GiftiLabel(key=key, red=r, green=g, blue=b, alpha=1.0)
        label.label = name
        table.labels.append(label)
    array = nib.gifti.GiftiDataArray(np.asarray(vertex_row, np.int32),
                                     intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")
    img = nib.gifti.GiftiImage(labeltable=table, darrays=[array])
    return atomic_write_bytes(Path(path), img.to_bytes())


def scalp_surface(subject: str, subjects_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The scalp of a FreeSurfer subject (vertices in m, MRI surface RAS; triangles), or None.

    Searched as MNE's coregistration searches it: ``bem/<subject>-head-dense.fif``,
    ``bem/<subject>-head.fif``, any ``bem/*-head.fif`` (the template subject's), then
    ``bem/outer_skin.surf`` and watershed's ``bem/watershed/<subject>_outer_skin_surface``.
    """
    import mne

    bem = Path(subjects_dir) / subject / "bem"
    fifs = [bem / f"{subject}-head-dense.fif", bem / f"{subject}-head.fif",
            *sorted(bem.glob("*-head.fif"))]
    for path in fifs:
        if path.is_file():
            surf = mne.read_bem_surfaces(path, verbose="error")[0]
            return np.asarray(surf["rr"], float), np.asarray(surf["tris"], int)
    for path in (bem / "outer_skin.surf", bem / "watershed" / f"{subject}_outer_skin_surface"):
        if path.is_file():
            rr, tris = read_surface(path)
            return rr / 1000.0, tris
    return None


def mri_fiducials(subject: str, subjects_dir: Path) -> dict[str, np.ndarray]:
    """The MRI fiducials of ``bem/*-fiducials.fif`` (m, MRI surface RAS), or {} without one."""
    import mne
    from mne.io.constants import FIFF

    names = {FIFF.FIFFV_POINT_LPA: "lpa", FIFF.FIFFV_POINT_NASION: "nasion",
             FIFF.FIFFV_POINT_RPA: "rpa"}
    for path in sorted((Path(subjects_dir) / subject / "bem").glob("*-fiducials.fif")):
        points, _ = mne.io.read_fiducials(path, verbose="error")
        return {names[p["ident"]]: np.asarray(p["r"], float) for p in points
                if p["ident"] in names}
    return {}
