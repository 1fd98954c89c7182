"""FreeSurfer coordinate conventions needed to put surfaces and BOLD in one world.

FreeSurfer surfaces (``lh.white``, ``lh.pial`` as read by :func:`nibabel.freesurfer.read_geometry`)
are in *tkregister RAS* ("surface RAS") millimetres of the subject's conformed volume
(``orig.mgz``). Scanner RAS is the world of the NIfTI affines. FreeSurfer defines, for any volume
of shape ``n`` with voxel-to-scanner matrix ``N = [A | b]`` (``vox2ras``), the tkregister matrix
as the same matrix with the centre moved to 0 (``MRIxfmCRS2XYZtkreg``)::

    T = [A | -A @ (n / 2)]          # vox2ras-tkr

so voxel ``n / 2`` sits at tkregister ``0`` and at scanner ``c_ras = A @ (n / 2) + b``. Hence
``N @ inv(T)`` is the translation by ``c_ras``: tkregister RAS -> scanner RAS is a pure shift,
whatever the orientation. ``recon-all`` conforms its input keeping ``c_ras``, so the T1w given to
``recon-all`` (NIfTI or MGH) and ``orig.mgz`` / ``T1.mgz`` all give the same shift; for a conformed
(LIA) MGH volume the matrix equals :meth:`nibabel.freesurfer.mghformat.MGHHeader.get_vox2ras_tkr`.

``register.dat`` (tkregister, ``bbregister --reg``) maps the *target* (anatomy) tkregister RAS to
the *movable* (EPI) tkregister RAS; :func:`register_dat_to_affine` turns it into this package's
``t1w_to_epi`` scanner-RAS matrix.
"""

from __future__ import annotations

import numpy as np

from .errors import SurfaceSamplingError

__all__ = [
    "affine_and_shape",
    "freesurfer_tkr_vox2ras",
    "parse_register_dat",
    "register_dat_to_affine",
    "tkr_to_scanner",
]


def affine_and_shape(image_or_header) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Voxel-to-scanner-RAS affine and 3-D shape of a nibabel image or header.

    Accepts an image (``.affine``, ``.shape``), an MGH header (``get_vox2ras``) or a NIfTI
    header (``get_best_affine``).
    """
    if hasattr(image_or_header, "affine") and hasattr(image_or_header, "shape"):
        affine = image_or_header.affine
        shape = image_or_header.shape
    elif hasattr(image_or_header, "get_vox2ras"):
        affine = image_or_header.get_vox2ras()
        shape = image_or_header.get_data_shape()
    elif hasattr(image_or_header, "get_best_affine"):
        affine = image_or_header.get_best_affine()
        shape = image_or_header.get_data_shape()
    else:
        raise TypeError(
            "expected a nibabel image or an MGH/NIfTI header, got "
            f"{type(image_or_header).__name__}"
        )
    if len(shape) < 3:
        raise SurfaceSamplingError(f"the anatomical image must be 3-D, got shape {tuple(shape)}")
    return np.asarray(affine, dtype=float), tuple(int(s) for s in shape[:3])


def freesurfer_tkr_vox2ras(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """FreeSurfer's vox2ras-tkr of a volume.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        Voxel to scanner RAS (mm).
    shape : tuple of int
        Volume shape; the first three entries are used.

    Returns
    -------
    tkr : ndarray, shape (4, 4)
        Voxel to tkregister RAS (mm): same linear part, voxel ``shape / 2`` at the origin.
    """
    linear = np.asarray(affine, dtype=float)[:3, :3]
    tkr = np.eye(4)
    tkr[:3, :3] = linear
    tkr[:3, 3] = -linear @ (np.asarray(shape[:3], dtype=float) / 2.0)
    return tkr


def tkr_to_scanner(image_or_header) -> np.ndarray:
    """Matrix taking tkregister (surface) RAS to scanner RAS for a subject's anatomy.

    Parameters
    ----------
    image_or_header : nibabel image or header
        The T1w given to ``recon-all``, or the subject's ``orig.mgz`` / ``T1.mgz``.

    Returns
    -------
    matrix : ndarray, shape (4, 4)
        ``vox2ras @ inv(vox2ras_tkr)``: a translation by the volume's ``c_ras`` (mm).
    """
    affine, shape = affine_and_shape(image_or_header)
    return affine @ np.linalg.inv(freesurfer_tkr_vox2ras(affine, shape))


def parse_register_dat(text: str) -> np.ndarray:
    """Read the 4 x 4 matrix of a tkregister ``register.dat`` file's text.

    The format is four header lines (subject, in-plane and between-plane resolution,
    intensity), four matrix rows and the word ``round``.
    """
    expected = "register.dat must hold 4 header lines, a 4 x 4 matrix and 'round'"
    lines = [line.split() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 8:
        raise SurfaceSamplingError(f"{expected}; got {len(lines)} non-empty line(s)")
    try:
        matrix = np.array([[float(v) for v in row] for row in lines[4:8]])
    except ValueError as err:
        raise SurfaceSamplingError(f"{expected}; matrix rows are not numbers ({err})") from err
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise SurfaceSamplingError(f"{expected}; the matrix rows do not hold 4 finite numbers")
    return matrix


def register_dat_to_affine(register_dat: np.ndarray, t1w, epi) -> np.ndarray:
    """Convert a tkregister matrix to a scanner-RAS ``t1w_to_epi`` matrix.

    Parameters
    ----------
    register_dat : ndarray, shape (4, 4)
        Target (anatomy) tkregister RAS -> movable (EPI) tkregister RAS, as written by
        ``bbregister --reg`` or ``tkregister2``.
    t1w : nibabel image or header
        The registration target (``orig.mgz`` or the T1w given to ``recon-all``).
    epi : nibabel image or header
        The movable volume (the mean EPI that was registered).

    Returns
    -------
    t1w_to_epi : ndarray, shape (4, 4)
        Scanner RAS of the T1w -> scanner RAS of the EPI (mm), the convention of
        :class:`.CoregistrationResult`.
    """
    register_dat = np.asarray(register_dat, dtype=float)
    if register_dat.shape != (4, 4):
        raise SurfaceSamplingError(f"register.dat must be 4 x 4, got {register_dat.shape}")
    return tkr_to_scanner(epi) @ register_dat @ np.linalg.inv(tkr_to_scanner(t1w))
