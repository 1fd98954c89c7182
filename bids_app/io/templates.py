"""The fsaverage template anatomy, written as a FreeSurfer subject from installed packages only.

``write_fsaverage5(subjects_dir)`` creates ``<subjects_dir>/fsaverage5`` (FreeSurfer's own name
for the ico-5 resolution of fsaverage, 10,242 vertices per hemisphere) from:

* nilearn's packaged fsaverage5 meshes (``nilearn/datasets/data/fsaverage5``): white, pial,
  inflated, sphere, curvature, sulcal depth, and the flat cortex patch (whose vertices define the
  cortex; the others are the medial wall);
* MNE's packaged fsaverage files (``mne/data/fsaverage``): the inner-skull surface (an ico-5 mesh,
  downsampled to ico-4 for the BEM), the head surface and the fiducials.

The fsaverage sphere is its own registration target, so ``sphere.reg`` is a copy of ``sphere``.
The head frame is the Neuromag frame of the fiducials, and ``fsaverage5-trans.fif`` the exact
head -> MRI transform of that frame. Writing is idempotent and byte-stable; nothing is
downloaded.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)

TEMPLATE = "fsaverage5"
N_VERTICES = 10242
_NILEARN_NAMES = {"white": "white", "pial": "pial", "inflated": "infl", "sphere": "sphere"}
_HEMI = {"lh": "left", "rh": "right"}
#: Header line of the written surfaces (nibabel's default holds the time: not byte-stable).
_STAMP = "created by megfmri-fusion from packaged fsaverage5 files"


def nilearn_fsaverage5_dir() -> Path:
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data" / "fsaverage5"


def mne_fsaverage_dir() -> Path:
    import mne

    return Path(mne.__file__).parent / "data" / "fsaverage"


def _gifti(name: str):
    import nibabel as nib

    return nib.load(nilearn_fsaverage5_dir() / f"{name}.gii.gz").agg_data()


def cortex_mask(hemi: str) -> np.ndarray:
    """Vertices of the cortex (True) versus the medial wall (False) of an fsaverage5 hemisphere.

    The cortex is the set of vertices of FreeSurfer's flat cortex patch packaged with nilearn;
    the patch leaves out the medial wall (777 of 10,242 vertices on the left).
    """
    _, tris = _gifti(f"flat_{_HEMI[hemi]}")
    mask = np.zeros(N_VERTICES, bool)
    mask[np.unique(tris)] = True
    return mask


def template_fiducials() -> dict[str, np.ndarray]:
    """fsaverage's LPA, nasion and RPA in MRI (surface RAS) coordinates (m)."""
    import mne
    from mne.io.constants import FIFF

    fids, _ = mne.io.read_fiducials(mne_fsaverage_dir() / "fsaverage-fiducials.fif")
    by_id = {f["ident"]: np.asarray(f["r"], float) for f in fids}
    return {"lpa": by_id[FIFF.FIFFV_POINT_LPA], "nasion": by_id[FIFF.FIFFV_POINT_NASION],
            "rpa": by_id[FIFF.FIFFV_POINT_RPA]}


def template_head_mri_trans():
    """The head -> MRI transform of the template: the Neuromag frame of its fiducials."""
    import mne

    f = template_fiducials()
    mri_head = mne.transforms.get_ras_to_neuromag_trans(f["nasion"], f["lpa"], f["rpa"])
    return mne.transforms.Transform("head", "mri", np.linalg.inv(mri_head))


def write_fsaverage5(subjects_dir: str | Path, *, name: str = TEMPLATE) -> Path:
    """Write the template subject ``<subjects_dir>/<name>`` (idempotent) and return its folder.

    The folder is assembled in a temporary sibling and renamed into place, so a crash or a
    parallel job never leaves a partial subject.
    """
    import mne
    from nibabel.freesurfer import write_geometry, write_morph_data

    subjects_dir = Path(subjects_dir)
    target = subjects_dir / name
    if (target / "bem" / f"{name}-trans.fif").is_file():
        return target
    subjects_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=subjects_dir))
    try:
        for folder in ("surf", "bem", "label", "mri"):
            (tmp / folder).mkdir()
        for hemi, side in _HEMI.items():
            for surf, nl in _NILEARN_NAMES.items():
                rr, tris = _gifti(f"{nl}_{side}")
                write_geometry(tmp / "surf" / f"{hemi}.{surf}", rr.astype(np.float64),
                               tris.astype(np.int32), create_stamp=_STAMP)
            shutil.copyfile(tmp / "surf" / f"{hemi}.sphere", tmp / "surf" / f"{hemi}.sphere.reg")
            for morph, nl in (("curv", "curv"), ("sulc", "sulc")):
                write_morph_data(tmp / "surf" / f"{hemi}.{morph}",
                                 np.asarray(_gifti(f"{nl}_{side}"), np.float32))
            label = cortex_mask(hemi)
            white, _ = _gifti(f"white_{side}")
            cortex = np.flatnonzero(label)
            mne.write_label(tmp / "label" / f"{hemi}.cortex.label",
                            mne.Label(cortex, pos=white[cortex] / 1000.0, hemi=hemi,
                                      subject=name, name="cortex"), verbose="error")
        mne_dir = mne_fsaverage_dir()
        skull = mne.read_bem_surfaces(mne_dir / "fsaverage-inner_skull-bem.fif", verbose=False)[0]
        write_geometry(tmp / "bem" / "inner_skull.surf", skull["rr"] * 1000.0, skull["tris"],
                       create_stamp=_STAMP)
        shutil.copyfile(mne_dir / "fsaverage-head.fif", tmp / "bem" / f"{name}-head.fif")
        shutil.copyfile(mne_dir / "fsaverage-fiducials.fif", tmp / "bem" / f"{name}-fiducials.fif")
        mne.write_trans(tmp / "bem" / f"{name}-trans.fif", template_head_mri_trans(),
                        overwrite=True, verbose="error")
        (tmp / "README").write_text(
            "fsaverage at ico-5 resolution (fsaverage5), written by megfmri-fusion from nilearn's "
            "and MNE-Python's packaged files. sphere.reg is a copy of sphere (fsaverage is its "
            "own registration target). label/?h.cortex.label: vertices of the flat cortex patch "
            "(the rest is the medial wall).\n"
        )
        try:
            os.replace(tmp, target)
        except OSError:  # another job finished first: keep its copy
            if not (target / "bem" / f"{name}-trans.fif").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    LOGGER.info("Template anatomy written to %s", target)
    return target
