"""Synthetic T1w and BOLD images of the template anatomy (DESIGN 7).

The T1w is built from the surfaces: voxels inside the white surface are white matter, between
white and pial surfaces grey matter, inside the inner skull cerebrospinal fluid, and a 6-mm band
outside it scalp. Its voxel-to-world matrix has its centre at world (0, 0, 0), so scanner RAS equals
FreeSurfer's surface RAS (tkr) and the surfaces need no shift.

The BOLD run is a 4-D image with 3-mm voxels in the same world space: a baseline EPI contrast
blurred by an EPI-like point-spread function (Gaussian, sigma one voxel), and in each voxel of the
cortical ribbon the HRF-convolved block boxcars of its parcel scaled by the block's amplitude
(% signal change), a slow drift that the 1/510-Hz high-pass removes, white noise, and small rigid
head motion (a random walk) applied volume by volume with quadratic B-spline resampling, so that
realignment matters. (Linear interpolation would blur every volume differently at the tissue
edges, an artefact no realignment can undo and as large as the noise; the quadratic spline's
departure from the cubic one is a tenth of the noise and costs half the time.) The resampling is
linear, so the baseline and the block maps are prefiltered once per run and each moved volume
is a weighted sum of their coefficients, evaluated inside the head only.
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

LOGGER = logging.getLogger(__name__)

#: T1w voxel size (mm) and matrix: LIA orientation as FreeSurfer's conformed space.
T1_VOXEL_MM = 2.0
T1_SHAPE = (128, 128, 128)
#: BOLD voxel size (mm) and field of view (RAS, centred near the brain).
BOLD_VOXEL_MM = 3.0
BOLD_SHAPE = (56, 66, 48)
BOLD_CENTER_MM = (0.0, -18.0, 10.0)
#: Point-spread function of the simulated EPI (Gaussian sigma, voxels).
EPI_PSF_SIGMA_VOXELS = 1.0

# tissue intensities (arbitrary units)
_T1_CONTRAST = {"wm": 110.0, "gm": 70.0, "csf": 25.0, "scalp": 85.0}
_EPI_CONTRAST = {"wm": 600.0, "gm": 800.0, "csf": 1000.0, "scalp": 80.0}


def t1_affine() -> np.ndarray:
    """Voxel -> world (mm) of the synthetic T1w: LIA, centre voxel at the origin."""
    n = T1_SHAPE[0] * T1_VOXEL_MM / 2
    v = T1_VOXEL_MM
    return np.array([[-v, 0, 0, n], [0, 0, v, -n], [0, -v, 0, n], [0, 0, 0, 1.0]])


def bold_affine() -> np.ndarray:
    """Voxel -> world (mm) of the synthetic BOLD: RAS axes, 3-mm voxels."""
    aff = np.diag([BOLD_VOXEL_MM] * 3 + [1.0])
    aff[:3, 3] = np.asarray(BOLD_CENTER_MM) - BOLD_VOXEL_MM * (np.asarray(BOLD_SHAPE) - 1) / 2
    return aff


def _shell_mask(surfaces, affine, shape, step_mm=0.4) -> np.ndarray:
    """Voxels touched by the triangles of closed surfaces (dense barycentric sampling)."""
    inv = np.linalg.inv(affine)
    mask = np.zeros(shape, bool)
    for rr, tris in surfaces:
        a, b, c = rr[tris[:, 0]], rr[tris[:, 1]], rr[tris[:, 2]]
        longest = np.max(np.linalg.norm(np.stack([b - a, c - a, c - b]), axis=2))
        n = max(int(np.ceil(longest / step_mm)), 1)
        for i in range(n + 1):
            for j in range(n + 1 - i):
                u, w = i / n, j / n
                pts = a + u * (b - a) + w * (c - a)
                ijk = np.rint(pts @ inv[:3, :3].T + inv[:3, 3]).astype(int)
                ok = np.all((ijk >= 0) & (ijk < np.asarray(shape)), axis=1)
                mask[tuple(ijk[ok].T)] = True
    return mask


def _inside(surfaces, affine, shape) -> np.ndarray:
    """Voxels inside the closed surfaces (shell included)."""
    shell = _shell_mask(surfaces, affine, shape)
    return ndimage.binary_fill_holes(shell)


def tissue_masks(white, pial, inner_skull, affine, shape, scalp_mm=6.0) -> dict[str, np.ndarray]:
    """Boolean masks of wm, gm, csf and scalp on a voxel grid.

    ``white`` and ``pial`` are lists of ``(rr_mm, tris)`` (one per hemisphere); ``inner_skull``
    is one closed ``(rr_mm, tris)`` surface, all in world mm. The scalp is a band of
    ``scalp_mm`` outside the inner skull (MNE's template head surface is open at the neck).
    """
    wm = _inside(white, affine, shape)
    brain = _inside(pial, affine, shape) | wm
    skull = _inside([inner_skull], affine, shape) | brain
    voxel = float(np.abs(np.linalg.det(affine[:3, :3])) ** (1 / 3))
    band = max(int(round(scalp_mm / voxel)), 1)
    scalp = ndimage.binary_dilation(skull, iterations=band) & ~skull
    return {"wm": wm, "gm": brain & ~wm, "csf": skull & ~brain, "scalp": scalp}


def synth_t1(white, pial, inner_skull, rng: np.random.Generator) -> nib.Nifti1Image:
    """The synthetic T1w image (uint8, 2-mm LIA)."""
    masks = tissue_masks(white, pial, inner_skull, t1_affine(), T1_SHAPE)
    img = np.zeros(T1_SHAPE, np.float32)
    for tissue, value in _T1_CONTRAST.items():
        img[masks[tissue]] = value
    img = ndimage.gaussian_filter(img, 0.6)
    img += rng.normal(0, 2.0, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    out = nib.Nifti1Image(img, t1_affine())
    out.header.set_xyzt_units("mm", "sec")
    out.header.set_qform(t1_affine(), code=1)
    out.header.set_sform(t1_affine(), code=1)
    return out


def epi_templates(white, pial, inner_skull) -> tuple[np.ndarray, np.ndarray]:
    """Baseline EPI intensity and grey-matter fraction on the BOLD grid.

    Tissue masks are computed on a 1-mm grid and averaged into the 3-mm voxels (partial volume).
    """
    factor = 3
    fine_shape = tuple(s * factor for s in BOLD_SHAPE)
    fine_aff = bold_affine() @ np.diag([1 / factor] * 3 + [1.0])
    fine_aff[:3, 3] = bold_affine()[:3, 3] - (BOLD_VOXEL_MM - 1) / 2
    masks = tissue_masks(white, pial, inner_skull, fine_aff, fine_shape)

    def block_mean(x):
        x = x.reshape(BOLD_SHAPE[0], factor, BOLD_SHAPE[1], factor, BOLD_SHAPE[2], factor)
        return x.mean(axis=(1, 3, 5))

    base = np.zeros(BOLD_SHAPE)
    for tissue, value in _EPI_CONTRAST.items():
        base += value * block_mean(masks[tissue].astype(np.float32))
    base = ndimage.gaussian_filter(base, EPI_PSF_SIGMA_VOXELS)
    return base, block_mean(masks["gm"].astype(np.float32))


def voxel_parcels(mid_rr, vertex_parcel, gm_fraction, max_distance_mm=4.0) -> np.ndarray:
    """Parcel index of each BOLD voxel (nearest mid-thickness vertex), -1 outside cortex."""
    ijk = np.argwhere(gm_fraction > 0.15)
    xyz = ijk @ bold_affine()[:3, :3].T + bold_affine()[:3, 3]
    dist, nearest = cKDTree(mid_rr).query(xyz)
    out = np.full(BOLD_SHAPE, -1, int)
    keep = dist <= max_distance_mm
    out[tuple(ijk[keep].T)] = vertex_parcel[nearest[keep]]
    return out


def block_regressors(events: pd.DataFrame, n_volumes: int, tr: float) -> tuple[np.ndarray, list]:
    """HRF-convolved boxcar of each block (SPM canonical HRF, nilearn), volumes x blocks.

    A block's boxcar spans from its instruction onset to the end of its last picture.
    """
    from nilearn.glm.first_level import compute_regressor

    frame_times = np.arange(n_volumes) * tr
    columns, labels = [], []
    for block, rows in events.groupby("block", sort=True):
        onset = rows.onset.min()
        duration = (rows.onset + rows.duration).max() - onset
        reg, _ = compute_regressor(np.array([[onset], [duration], [1.0]]), "spm", frame_times)
        columns.append(reg[:, 0])
        labels.append(int(block))
    return np.column_stack(columns), labels


def random_motion(n_volumes: int, rng: np.random.Generator, *, step_mm=0.06, step_deg=0.05):
    """Rigid head motion as a random walk: (n_volumes, 6) = tx, ty, tz (mm), rx, ry, rz (deg)."""
    steps = np.column_stack([rng.normal(0, step_mm, (n_volumes, 3)),
                             rng.normal(0, step_deg, (n_volumes, 3))])
    steps[0] = 0
    return np.cumsum(steps, axis=0)


def slow_drift(n_volumes: int, tr: float, percent: float = 1.0) -> np.ndarray:
    """Fractional signal drift of each volume: a half cosine plus a linear trend, ``percent`` of
    the signal, slow enough for the 1/510-Hz high-pass to remove."""
    t = np.arange(n_volumes) * tr
    return percent / 100 * (np.cos(np.pi * t / (t[-1] + tr)) + 0.5 * t / t[-1])


def motion_world(params: np.ndarray) -> np.ndarray:
    """World map (4 x 4, RAS+ mm) of a rigid head motion: tissue at ``x`` before the motion is
    at ``motion_world(params) @ x`` after it.

    ``params`` are tx, ty, tz (mm) and rx, ry, rz (deg, Euler "xyz") of the motion about the
    centre of the BOLD field of view (:func:`random_motion`), the convention of the app's
    realignment parameters (which are in radians).
    """
    aff = bold_affine()
    rot = Rotation.from_euler("xyz", params[3:], degrees=True).as_matrix()
    center = aff[:3, :3] @ ((np.asarray(BOLD_SHAPE) - 1) / 2) + aff[:3, 3]
    world = np.eye(4)
    world[:3, :3] = rot
    world[:3, 3] = center + params[:3] - rot @ center
    return world


def _motion_matrix(params: np.ndarray) -> np.ndarray:
    """Voxel -> voxel map (4 x 4) from the moved image to the tissue it shows: a voxel of the
    moved image shows the tissue at the inverse motion of its position (:func:`motion_world`).
    """
    aff = bold_affine()
    return np.linalg.inv(aff) @ np.linalg.inv(motion_world(params)) @ aff


#: B-spline order of the motion resampling (docs/simulation.md: quadratic differs from cubic by
#: 0.4 intensity units (SD) for a typical displacement, a tenth of the noise; linear by 4.5).
MOTION_SPLINE_ORDER = 2


def _move(volume: np.ndarray, params: np.ndarray, order: int = MOTION_SPLINE_ORDER) -> np.ndarray:
    """Resample ``volume`` as seen after a rigid head motion, one volume at a time (the
    reference for :func:`synth_bold`)."""
    vox = _motion_matrix(params)
    return ndimage.affine_transform(volume, vox[:3, :3], vox[:3, 3], order=order, mode="nearest")


#: Edge padding before the spline prefilter, as scipy pads for ``mode="nearest"``.
_SPLINE_PAD = 12


def _spline_coefficients(volume: np.ndarray) -> np.ndarray:
    """B-spline coefficients of ``volume`` edge-padded by ``_SPLINE_PAD`` voxels.

    With these, ``map_coordinates(..., prefilter=False)`` at coordinates shifted by the pad gives
    what ``affine_transform(volume, ..., order=MOTION_SPLINE_ORDER, mode="nearest")`` gives.
    The prefilter is linear, so coefficients of a weighted sum of volumes are the weighted sum
    of their coefficients.
    """
    padded = np.pad(np.asarray(volume, np.float64), _SPLINE_PAD, mode="edge")
    return ndimage.spline_filter(padded, MOTION_SPLINE_ORDER, output=np.float64, mode="nearest")


def head_support(base: np.ndarray, *, floor: float = 0.01, margin_voxels: int = 3) -> np.ndarray:
    """Voxels where a moved volume can differ from zero: baseline above ``floor`` (intensity
    units; grey matter is 800), dilated by ``margin_voxels`` to cover the head's motion."""
    return ndimage.binary_dilation(base > floor, iterations=margin_voxels)


def synth_bold(
    base: np.ndarray,
    parcel_of_voxel: np.ndarray,
    amplitudes: np.ndarray,
    regressors: np.ndarray,
    *,
    tr: float,
    rng: np.random.Generator,
    noise_percent: float = 0.6,
    drift_percent: float = 1.0,
    motion: np.ndarray | None = None,
) -> nib.Nifti1Image:
    """One BOLD run.

    Parameters
    ----------
    base : ndarray, shape BOLD_SHAPE
        Baseline intensity (:func:`epi_templates`).
    parcel_of_voxel : ndarray of int, shape BOLD_SHAPE
        Parcel index per voxel of the cortical ribbon (-1: none); these voxels carry their
        parcel's full block response.
    amplitudes : ndarray, shape (n_parcels, n_blocks)
        Block amplitude (% signal change) per parcel, blocks in the order of ``regressors``.
    regressors : ndarray, shape (n_volumes, n_blocks)
        HRF-convolved block boxcars (peak about 1).
    motion : ndarray, shape (n_volumes, 6) or None
        Rigid motion applied to each volume (:func:`random_motion`).
    """
    n_vol = regressors.shape[0]
    # volume-major in memory (t, z, y, x): each volume is written in one piece, and the
    # transpose is the (x, y, z, t) array in NIfTI's own (Fortran) order
    data = np.empty((n_vol,) + BOLD_SHAPE[::-1], np.float32)
    inside = parcel_of_voxel >= 0
    drift = slow_drift(n_vol, tr, drift_percent)
    # volume k = base * (1 + drift[k]) + sum over blocks b of regressors[k, b] * base * map_b,
    # with map_b the fraction signal change of block b in each cortical voxel
    maps = np.zeros((regressors.shape[1],) + BOLD_SHAPE)
    maps[:, inside] = (amplitudes[parcel_of_voxel[inside]] / 100.0).T * base[inside]
    weights = np.column_stack([1.0 + drift, regressors])  # volumes x (1 + blocks)
    if motion is None:
        parts = np.concatenate([base[None], maps]).reshape(len(maps) + 1, -1)
    else:
        # resampling is linear too: prefilter the 1 + n_blocks parts once, then evaluate each
        # volume's spline only inside the head (beyond it the moved image is zero)
        parts = np.stack([_spline_coefficients(x) for x in (base, *maps)])
        support = head_support(base)
        support_ijk = np.argwhere(support).T  # 3 x n_support
        support_flat = np.flatnonzero(support)
    noise_sd = noise_percent / 100.0 * _EPI_CONTRAST["gm"]
    for k in range(n_vol):
        if motion is None:
            volume = (weights[k] @ parts).reshape(BOLD_SHAPE)
        else:
            coefficients = np.tensordot(weights[k], parts, axes=1)
            vox = _motion_matrix(motion[k])
            coords = vox[:3, :3] @ support_ijk + vox[:3, 3:] + _SPLINE_PAD
            volume = np.zeros(BOLD_SHAPE)
            volume.flat[support_flat] = ndimage.map_coordinates(
                coefficients, coords, order=MOTION_SPLINE_ORDER, mode="nearest", prefilter=False)
        volume += rng.normal(0.0, noise_sd, BOLD_SHAPE)
        data[k] = volume.T
    np.maximum(data, 0, out=data)
    img = nib.Nifti1Image(data.T, bold_affine())
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(bold_affine(), code=1)
    img.header.set_sform(bold_affine(), code=1)
    img.header["pixdim"][4] = tr
    img.set_data_dtype(np.int16)
    return img
