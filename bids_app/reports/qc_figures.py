"""Quality-control figures of the participant report (issue 24), matplotlib only.

Slices of a volume with surface contours (the EPI over the T1w before and after registration,
the BEM inner skull over the T1w) are drawn as MNE's :func:`mne.viz.plot_bem` draws them: each
triangle mesh is cut by the slice plane and the cut drawn as line segments; the meshes are
never rendered in 3-D, so the figures are cheap and work on headless nodes. The MEG-MRI
coregistration is shown in three orthogonal 2-D projections (scalp, helmet, head points,
fiducials) instead of MNE's 3-D :func:`mne.viz.plot_alignment`, which needs PyVista.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402

from bids_app.reports.figures import save  # noqa: E402

#: (name, axis of the slice normal, in-plane axes (horizontal, vertical)) in RAS.
PLANES = (("sagittal", 0, (1, 2)), ("coronal", 1, (0, 2)), ("axial", 2, (0, 1)))


def mesh_slice_segments(rr: np.ndarray, tris: np.ndarray, axis: int,
                        position: float) -> np.ndarray:
    """Where the plane ``rr[:, axis] == position`` cuts a triangle mesh.

    Parameters
    ----------
    rr : ndarray, shape (n_vertices, 3)
        Vertices (any unit; the result is in the same).
    tris : ndarray of int, shape (n_triangles, 3)
        Triangles.
    axis : int
        0, 1 or 2: the axis normal to the plane.
    position : float
        The plane's coordinate on ``axis``.

    Returns
    -------
    segments : ndarray, shape (n_segments, 2, 2)
        One segment per cut triangle, as (start, end) points in the plane's two other axes
        (in increasing axis order).
    """
    rr = np.asarray(rr, float)
    tris = np.asarray(tris, int)
    other = [k for k in range(3) if k != axis]
    side = rr[:, axis] - position
    s = side[tris]                                          # (n_tris, 3)
    cut = (s.min(axis=1) < 0) & (s.max(axis=1) >= 0)
    tris, s = tris[cut], s[cut]
    points = []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        sa, sb = s[:, a], s[:, b]
        crosses = (sa < 0) != (sb < 0)
        t = np.where(crosses, sa / np.where(sa - sb == 0, 1, sa - sb), np.nan)
        pa, pb = rr[tris[:, a]][:, other], rr[tris[:, b]][:, other]
        points.append(pa + t[:, None] * (pb - pa))
    points = np.stack(points, axis=1)                       # (n, 3 edges, 2)
    valid = ~np.isnan(points[..., 0])                       # exactly two edges per triangle
    keep = valid.sum(axis=1) == 2
    return points[keep][valid[keep]].reshape(-1, 2, 2)


def slice_positions(bounds: np.ndarray, n: int = 3) -> np.ndarray:
    """``n`` slice positions per axis inside ``bounds`` (2 x 3: low, high corners), at
    evenly spaced quantiles that avoid the edges; shape (3, n)."""
    low, high = np.asarray(bounds, float)
    fractions = np.linspace(0.3, 0.7, n) if n > 1 else np.array([0.5])
    return low[:, None] + fractions[None, :] * (high - low)[:, None]


def slices_figure(volume: np.ndarray, affine: np.ndarray, path: Path, *, title: str,
                  meshes: Sequence[tuple[np.ndarray, np.ndarray, str]] = (),
                  points: np.ndarray | None = None, positions: np.ndarray | None = None,
                  vmax: float | None = None, label: str = "", slab_mm: float = 3.0,
                  linewidth: float = 0.7) -> Path:
    """Slices of a volume in three planes with mesh contours (and points near each slice).

    Parameters
    ----------
    volume : ndarray, shape (n_x, n_y, n_z)
        Image on a RAS-aligned grid.
    affine : ndarray, shape (4, 4)
        Diagonal voxel -> world (mm) of ``volume``.
    meshes : sequence of (rr, tris, colour)
        Surfaces in the same world (mm), cut by each slice.
    points : ndarray, shape (n, 3) | None
        Points (mm) drawn on the slices they lie within ``slab_mm`` of (e.g. source grid).
    positions : ndarray, shape (3, n_slices) | None
        Slice positions (mm) per axis; default: the middle 40 % of the volume.
    vmax : float | None
        Upper end of the grey scale (default: the 99.5th percentile).
    label : str
        Text in the top-left corner of the first panel (e.g. "before").

    The figure has a fixed size (no tight bounding box), so two figures drawn with the same
    arguments but different volumes overlay pixel for pixel (the report's flicker view).
    """
    affine = np.asarray(affine, float)
    voxel = np.diag(affine)[:3]
    origin = affine[:3, 3]
    shape = np.asarray(volume.shape[:3])
    far = origin + voxel * (shape - 1)
    if positions is None:
        positions = slice_positions(np.vstack([origin, far]))
    n = positions.shape[1]
    vmax = vmax if vmax is not None else float(np.percentile(volume, 99.5)) or 1.0
    fig, axes = plt.subplots(3, n, figsize=(2.6 * n, 7.2), squeeze=False,
                             gridspec_kw={"wspace": 0.02, "hspace": 0.12})
    fig.subplots_adjust(left=0.02, right=0.98, top=0.93, bottom=0.01)
    for (name, axis, (h, v)), row in zip(PLANES, axes):
        for pos, ax in zip(positions[axis], row):
            index = int(np.clip(np.round((pos - origin[axis]) / voxel[axis]), 0, shape[axis] - 1))
            cut = np.take(volume, index, axis=axis)         # axes (h, v) in increasing order
            ax.imshow(cut.T, origin="lower", cmap="gray", vmin=0, vmax=vmax,
                      extent=(origin[h], far[h], origin[v], far[v]), interpolation="nearest")
            for rr, tris, colour in meshes:
                segments = mesh_slice_segments(rr, tris, axis, pos)
                ax.add_collection(LineCollection(segments, colors=colour, linewidths=linewidth))
            if points is not None and len(points):
                near = np.abs(points[:, axis] - pos) <= slab_mm
                ax.plot(points[near, h], points[near, v], "o", ms=2.2, mew=0, color="#e31a1c")
            ax.set_xlim(origin[h], far[h])
            ax.set_ylim(origin[v], far[v])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name} {'xyz'[axis]} = {pos:.0f} mm", fontsize=7, pad=2)
    if label:
        axes[0, 0].text(0.03, 0.95, label, transform=axes[0, 0].transAxes, color="white",
                        fontsize=11, fontweight="bold", va="top",
                        bbox={"facecolor": "black", "alpha": 0.6, "lw": 0})
    fig.suptitle(title, fontsize=10)
    return save(fig, path, tight=False)


def coregistration_figure(*, scalp: tuple[np.ndarray, np.ndarray],
                          helmet: tuple[np.ndarray, np.ndarray] | None,
                          head_points: np.ndarray, distances_mm: np.ndarray,
                          fiducials_digitised: Mapping[str, np.ndarray],
                          fiducials_mri: Mapping[str, np.ndarray], path: Path,
                          title: str) -> Path:
    """MEG-MRI coregistration in three orthogonal projections (MRI frame, mm).

    Parameters
    ----------
    scalp, helmet : (rr, tris)
        The MRI scalp and the MEG helmet (mm, MRI frame); ``helmet`` may be None.
    head_points : ndarray, shape (n, 3)
        Digitised head points (mm, MRI frame), coloured by ``distances_mm`` to the scalp.
    fiducials_digitised, fiducials_mri : dict
        ``lpa``, ``nasion``, ``rpa`` (mm, MRI frame): digitised (circles) and of the MRI
        (crosses); either may be empty.
    """
    views = (("top (x, y)", (0, 1), 2), ("front (x, z)", (0, 2), 1), ("left side (y, z)",
                                                                     (1, 2), 0))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    distances_mm = np.asarray(distances_mm, float)
    scatter = None
    for ax, (name, (h, v), depth) in zip(axes, views):
        for (rr, tris), colour, alpha in ((helmet, "#9ecae1", 0.25), (scalp, "#d9c2a7", 0.35)):
            if rr is None:
                continue
            polys = np.asarray(rr)[np.asarray(tris)][:, :, [h, v]]
            ax.add_collection(PolyCollection(polys, facecolors=colour, edgecolors="none",
                                             alpha=alpha))
        if len(head_points):
            order = np.argsort(head_points[:, depth] * (-1 if name.startswith("left") else 1))
            scatter = ax.scatter(head_points[order, h], head_points[order, v], s=9,
                                 c=distances_mm[order], cmap="viridis_r", vmin=0, vmax=10,
                                 edgecolors="k", linewidths=0.2, zorder=3)
        for fids, marker, colour, what in ((fiducials_mri, "+", "#d62728", "MRI fiducial"),
                                           (fiducials_digitised, "o", "#d62728",
                                            "digitised fiducial")):
            for key, p in fids.items():
                ax.plot(p[h], p[v], marker, ms=9, mfc="none", mec=colour, mew=1.5, zorder=4,
                        label=what if key == "nasion" else None)
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("mm", fontsize=7)
        ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, labels, fontsize=7, loc="lower left")
    if scatter is not None:
        fig.colorbar(scatter, ax=axes, shrink=0.7, fraction=0.02,
                     label="head point to scalp (mm)")
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def psd_figure(psd: Mapping[str, Mapping[str, Sequence[float]]], freqs: Sequence[float],
               path: Path, *, title: str) -> Path:
    """Mean power spectrum per sensor type before and after Maxwell filtering.

    ``psd[ch_type][stage]`` is the mean over channels of log10 power (T²/Hz or (T/m)²/Hz) at
    ``freqs``; ``stage`` is ``before`` or ``after``.
    """
    fig, axes = plt.subplots(1, len(psd), figsize=(4.2 * len(psd), 3), squeeze=False)
    for ax, (ch_type, stages) in zip(axes[0], psd.items()):
        for stage, colour in (("before", "#7f7f7f"), ("after", "#1f77b4")):
            if stage in stages:
                ax.plot(freqs, 10 * np.asarray(stages[stage]), color=colour, lw=1, label=stage)
        ax.set_title({"mag": "magnetometers", "grad": "gradiometers"}.get(ch_type, ch_type),
                     fontsize=9)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("power (dB)")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10, y=1.04)
    return save(fig, path)


def trials_figure(labels: Sequence[str], kept: Sequence[int], rejected: Sequence[int],
                  left_out: Sequence[bool], path: Path, *, title: str) -> Path:
    """Trials kept and rejected per block (stacked); blocks left out are marked."""
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(labels)), 3))
    ax.bar(x, kept, color="#4a78a8", label="kept")
    ax.bar(x, rejected, bottom=kept, color="#d9534f", label="rejected (EOG)")
    for i in np.flatnonzero(np.asarray(left_out, bool)):
        ax.text(i, kept[i] + rejected[i], "left out", rotation=90, ha="center", va="bottom",
                fontsize=7, color="#d9534f")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("trials")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title)
    return save(fig, path)


def eog_figure(trace: Mapping[str, Sequence[float]], trials: Mapping[str, Sequence],
               threshold_uv: float | None, path: Path, *, title: str) -> Path:
    """The EOG over the run with the rejected trials, and each trial's peak-to-peak amplitude
    against the threshold.

    ``trace``: ``time_s``, ``low_uv``, ``high_uv`` (the range of the EOG in short bins, µV);
    ``trials``: ``onset_s``, ``ptp_uv``, ``kept`` per trial.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True)
    t = np.asarray(trace["time_s"], float)
    top.fill_between(t, trace["low_uv"], trace["high_uv"], color="0.3", lw=0)
    onset = np.asarray(trials["onset_s"], float)
    ptp = np.asarray(trials["ptp_uv"], float)
    kept = np.asarray(trials["kept"], bool)
    for o in onset[~kept]:
        top.axvspan(o, o + 1.0, color="#d9534f", alpha=0.3, lw=0)
    top.set_ylabel("EOG (µV)")
    bottom.plot(onset[kept], ptp[kept], "o", ms=3, color="#4a78a8", label="kept")
    bottom.plot(onset[~kept], ptp[~kept], "o", ms=3, color="#d9534f", label="rejected")
    if threshold_uv is not None:
        bottom.axhline(threshold_uv, color="#d9534f", ls="--", lw=1,
                       label=f"threshold {threshold_uv:g} µV")
    bottom.set_ylabel("trial peak-to-peak (µV)")
    bottom.set_xlabel("time in the recording (s)")
    bottom.legend(fontsize=7, loc="upper right")
    top.set_title(title, fontsize=10)
    return save(fig, path)


def registration_figures(t1w: np.ndarray, epi_before: np.ndarray, epi_after: np.ndarray,
                         affine: np.ndarray, surfaces: Sequence[tuple[np.ndarray, np.ndarray]],
                         folder: Path, *, run: str) -> dict[str, str]:
    """The before/after slices of the mean EPI with the white (blue) and pial (red) contours,
    and the T1w with the same contours: ``{"before": png, "after": png, "t1w": png}``.

    ``surfaces`` alternates white and pial meshes (mm, the world of ``affine``), e.g.
    lh white, lh pial, rh white, rh pial.
    """
    meshes = [(rr, tris, "#2c7fb8" if k % 2 == 0 else "#e34a33")
              for k, (rr, tris) in enumerate(surfaces)]
    vmax = float(np.percentile(epi_after[epi_after > 0], 99.5)) if np.any(epi_after > 0) else 1.0
    out = {}
    for key, volume, label, scale in (("before", epi_before, "EPI before", vmax),
                                      ("after", epi_after, "EPI after", vmax),
                                      ("t1w", t1w, "T1w", None)):
        path = Path(folder) / f"registration_{key}.png"
        slices_figure(volume, affine, path, meshes=meshes, vmax=scale, label=label,
                      title=f"{run}: mean EPI and T1w, white (blue) and pial (red) surfaces")
        out[key] = str(path)
    return out


def headmodel_figure(volume: np.ndarray | None, affine: np.ndarray,
                     inner_skull: tuple[np.ndarray, np.ndarray], sources: np.ndarray,
                     path: Path, *, title: str) -> Path:
    """The BEM inner skull (green) over slices of the T1w, with the source grid points
    (red) within 3 mm of each slice; ``volume`` None draws on black (template anatomy
    without an MRI). ``inner_skull`` and ``sources`` are in the world (mm) of ``affine``."""
    rr, tris = inner_skull
    bounds = np.vstack([rr.min(axis=0) - 5, rr.max(axis=0) + 5])
    if volume is None:
        voxel = 2.0
        shape = tuple(int(n) for n in np.ceil((bounds[1] - bounds[0]) / voxel) + 1)
        volume, affine = np.zeros(shape), np.diag([voxel] * 3 + [1.0])
        affine[:3, 3] = bounds[0]
    return slices_figure(volume, affine, path, title=title, meshes=[(rr, tris, "#00d84a")],
                         points=sources, positions=slice_positions(bounds), linewidth=1.4)
