"""MEG head models: grid source space, single-layer BEM (or sphere), forward model (DESIGN 4.1).

These wrap MNE's building blocks; like MNE they take a FreeSurfer ``subject`` and
``subjects_dir`` where MNE reads surfaces itself. :func:`content_key` hashes what a forward model
depends on, so that the workflow can cache forward models by content: every simulated subject
shares one anatomy and one head position, and computes its forward model once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import mne
import numpy as np

from bids_app.input_errors import InputDataError
from bids_app.meg.options import HeadModelOptions

LOGGER = logging.getLogger(__name__)


class HeadModelError(InputDataError):
    """A head model cannot be built from the given anatomy; the message names the file."""


def grid_source_space(subject: str, subjects_dir: str | Path,
                      vertices: Sequence[np.ndarray]) -> mne.SourceSpaces:
    """A surface source space holding exactly the given vertices of each hemisphere.

    Parameters
    ----------
    vertices : sequence of ndarray
        Subject vertex numbers of the grid (left, right); duplicates are dropped and the
        source space keeps them sorted, as MNE requires.
    """
    src = mne.setup_source_space(subject, spacing="all", subjects_dir=subjects_dir,
                                 add_dist=False, verbose="error")
    for s, vertno in zip(src, vertices):
        vertno = np.unique(np.asarray(vertno, int))
        s["inuse"] = np.zeros(s["np"], int)
        s["inuse"][vertno] = 1
        s["vertno"] = vertno
        s["nuse"] = len(vertno)
        s["use_tris"] = None
        s["nuse_tri"] = 0
    return src


def inner_skull_path(subject: str, subjects_dir: str | Path) -> Path | None:
    """The inner-skull surface of a subject (``bem/inner_skull.surf`` or watershed's)."""
    bem = Path(subjects_dir) / subject / "bem"
    for candidate in (bem / "inner_skull.surf",
                      bem / "watershed" / f"{subject}_inner_skull_surface"):
        if candidate.is_file():
            return candidate
    return None


def bem_solution(subject: str, subjects_dir: str | Path, options: HeadModelOptions, *,
                 full_resolution: bool = False) -> mne.bem.ConductorModel:
    """Single-layer (inner skull) BEM solution, the surface downsampled to ``options.bem_ico``
    (the surface as it is with ``full_resolution``, or when it is not an icosahedral mesh), with
    conductivity ``options.bem_conductivity``.

    Raises
    ------
    HeadModelError
        No inner-skull surface, or one that MNE cannot use (the file is named).
    """
    path = inner_skull_path(subject, subjects_dir)
    if path is None:
        raise HeadModelError(
            f"No inner-skull surface in {Path(subjects_dir) / subject / 'bem'} (inner_skull.surf "
            "or watershed/); create it with 'mne watershed_bem' (FreeSurfer) or use a sphere "
            "model."
        )
    ico = None if full_resolution else options.bem_ico
    try:
        surfaces = mne.make_bem_model(subject, ico=ico, conductivity=(options.bem_conductivity,),
                                      subjects_dir=subjects_dir, verbose="error")
    except (ValueError, RuntimeError) as err:
        if ico is None:
            raise HeadModelError(f"The inner-skull surface {path} cannot be used: {err}") from None
        LOGGER.info("Inner skull of %s is not an ico-5 mesh (%s); using it at full resolution",
                    subject, err)
        return bem_solution(subject, subjects_dir, options, full_resolution=True)
    return mne.make_bem_solution(surfaces, verbose="error")


def sphere_model(info: mne.Info) -> mne.bem.ConductorModel:
    """A sphere model fitted to the digitised head shape (when no BEM surface exists)."""
    try:
        return mne.make_sphere_model("auto", "auto", info, verbose="error")
    except (RuntimeError, ValueError) as err:
        raise HeadModelError(
            f"Cannot fit a sphere to the head shape ({err}): the recording needs digitised "
            "head points, or give the subject a BEM surface."
        ) from None


def forward_model(info: mne.Info, trans: mne.transforms.Transform, src: mne.SourceSpaces,
                  bem: mne.bem.ConductorModel, *, n_jobs: int = 1) -> mne.Forward:
    """MEG forward model (free orientation) of ``src`` for the sensors of ``info``."""
    meg = mne.pick_info(info, mne.pick_types(info, meg=True, ref_meg=False, exclude=[]))
    return mne.make_forward_solution(meg, trans, src, bem, meg=True, eeg=False, n_jobs=n_jobs,
                                     verbose="error")


def content_key(info: mne.Info, trans: mne.transforms.Transform, src: mne.SourceSpaces,
                bem: mne.bem.ConductorModel) -> str:
    """A hash of everything a forward model depends on (sensors, head position, transform,
    source points and conductor model)."""
    digest = hashlib.sha256()
    meg = mne.pick_types(info, meg=True, ref_meg=False, exclude=[])
    for idx in meg:
        ch = info["chs"][idx]
        digest.update(ch["ch_name"].encode())
        digest.update(np.round(np.asarray(ch["loc"], float), 9).tobytes())
        digest.update(str(int(ch["coil_type"])).encode())
    dev_head = info["dev_head_t"]["trans"] if info["dev_head_t"] is not None else np.eye(4)
    digest.update(np.round(np.asarray(dev_head, float), 9).tobytes())
    digest.update(np.round(np.asarray(trans["trans"], float), 9).tobytes())
    for s in src:
        digest.update(np.asarray(s["vertno"], np.int64).tobytes())
        digest.update(np.round(s["rr"][s["vertno"]], 6).tobytes())
    if bem["is_sphere"]:
        digest.update(json.dumps({"r0": np.round(bem["r0"], 6).tolist(),
                                  "layers": [round(float(layer["rad"]), 6)
                                             for layer in bem["layers"]]}).encode())
    else:
        for surf in bem["surfs"]:
            digest.update(np.round(surf["rr"], 6).tobytes())
        digest.update(np.round(np.asarray(bem["sigma"], float), 6).tobytes())
    return digest.hexdigest()[:16]
