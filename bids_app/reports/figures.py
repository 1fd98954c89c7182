"""Figures of the reports (matplotlib only, so they render on headless nodes).

Each function draws one figure and saves it as PNG; none opens a window. Cortex maps use
nilearn's matplotlib surface plots on the fsaverage5 inflated meshes packaged with nilearn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

LOGGER = logging.getLogger(__name__)
_DPI = 90


def save(fig, path: Path, *, tight: bool = True) -> Path:
    """Save and close a figure (PNG); ``tight=False`` keeps the figure's size exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def motion_figure(motion: pd.DataFrame, path: Path, title: str) -> Path:
    """Translations (mm), rotations (degrees) and framewise displacement of a run."""
    fig, axes = plt.subplots(3, 1, figsize=(9, 5.5), sharex=True)
    for col in ("trans_x", "trans_y", "trans_z"):
        axes[0].plot(motion[col].to_numpy(), label=col[-1])
    axes[0].set_ylabel("translation (mm)")
    axes[0].legend(loc="upper left", ncol=3, fontsize=8)
    for col in ("rot_x", "rot_y", "rot_z"):
        axes[1].plot(np.degrees(motion[col].to_numpy()), label=col[-1])
    axes[1].set_ylabel("rotation (deg)")
    fd = motion["framewise_displacement"].fillna(0).to_numpy()
    axes[2].plot(fd, color="k")
    axes[2].set_ylabel("FD (mm)")
    axes[2].set_xlabel("volume (after dummy scans)")
    axes[0].set_title(title)
    return save(fig, path)


def block_values_figure(averaged: pd.DataFrame, path: Path, conditions: Sequence[str],
                        title: str) -> Path:
    """Normalised block values per parcel (rows) and condition (columns)."""
    table = averaged.pivot(index="parcel", columns="condition", values="normalized")
    table = table.reindex(columns=[c for c in conditions if c in table.columns])
    fig, ax = plt.subplots(figsize=(4 + 0.8 * len(table.columns), max(3, 0.12 * len(table))))
    lim = np.nanmax(np.abs(table.to_numpy())) or 1.0
    im = ax.imshow(table.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right")
    step = max(1, len(table) // 40)
    ax.set_yticks(range(0, len(table), step), table.index[::step], fontsize=6)
    fig.colorbar(im, ax=ax, label="normalised block value")
    ax.set_title(title)
    return save(fig, path)


def bar_figure(labels: Sequence[str], values: Sequence[float], path: Path, *, ylabel: str,
               title: str, highlight: Sequence[bool] | None = None) -> Path:
    """A simple bar chart (e.g. trials kept per block)."""
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(labels)), 3))
    colors = ["#d9534f" if h else "#4a78a8" for h in (highlight or [False] * len(labels))]
    ax.bar(range(len(labels)), values, color=colors)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save(fig, path)


def band_timecourse_figure(band_means: dict, path: Path, *, title: str) -> Path:
    """Mean relative power change over parcels and blocks per window, one line per band."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for band, points in band_means.items():
        points = np.asarray(points, float)
        ax.plot(points[:, 0] + 100.0, 100.0 * points[:, 1], marker="o", ms=2, label=band)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("window centre (ms after the picture)")
    ax.set_ylabel("power change from baseline (%)")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title(title)
    return save(fig, path)


def _fsaverage5_inflated():
    """nilearn's fsaverage5 inflated mesh and its sulcal depth (packaged, no download)."""
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")["inflated"]
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", mesh_type="inflated",
                                        data_type="sulcal")
    return mesh, sulc


def _draw_views(fig, axes, values_lh, values_rh, views, *, cmap, vmin, vmax) -> None:
    """Draw ``views`` ((hemi, view) pairs) of one map on ``axes`` (3-D axes)."""
    from nilearn import plotting
    from nilearn.surface import SurfaceImage

    mesh, sulc = _fsaverage5_inflated()
    image = SurfaceImage(mesh=mesh, data={"left": np.asarray(values_lh, float),
                                          "right": np.asarray(values_rh, float)})
    for ax, (hemi, view) in zip(axes, views):
        plotting.plot_surf(surf_map=image, hemi=hemi, view=view, bg_map=sulc, cmap=cmap, axes=ax,
                           figure=fig, colorbar=False, vmin=vmin, vmax=vmax, bg_on_data=True)


def _abs_max(*arrays) -> float:
    finite = np.concatenate([np.ravel(a) for a in arrays])
    finite = finite[np.isfinite(finite)]
    return float(np.max(np.abs(finite))) if finite.size and np.any(finite) else 1.0


def cortex_figure(values_lh: np.ndarray, values_rh: np.ndarray, path: Path, *, title: str,
                  cmap: str = "RdBu_r", symmetric: bool = True, categorical: bool = False,
                  vmax: float | None = None) -> Path:
    """Lateral and medial views of both hemispheres of fsaverage5 (inflated), matplotlib only.

    ``values_lh``/``values_rh`` have one value per fsaverage5 vertex (10,242); NaN is not
    drawn.
    """
    views = [("left", "lateral"), ("left", "medial"), ("right", "medial"), ("right", "lateral")]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), subplot_kw={"projection": "3d"})
    vmax = vmax or _abs_max(values_lh, values_rh)
    low = -vmax if symmetric else 0.0
    _draw_views(fig, axes, values_lh, values_rh, views, cmap=cmap,
                vmin=None if categorical else low, vmax=None if categorical else vmax)
    for ax, (hemi, view) in zip(axes, views):
        ax.set_title(f"{hemi} {view}", fontsize=9)
    if not categorical:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(low, vmax))
        fig.colorbar(sm, ax=axes, shrink=0.6, fraction=0.02)
    fig.suptitle(title)
    return save(fig, path)


def cortex_rows_figure(rows: Sequence[tuple[str, np.ndarray, np.ndarray]], path: Path, *,
                       title: str, cmap: str = "RdBu_r", scale: float = 100.0,
                       unit: str = "%") -> Path:
    """One row per map (label, per-vertex lh, rh): lateral views of both hemispheres, a common
    symmetric colour scale (values times ``scale``, in ``unit``)."""
    views = [("left", "lateral"), ("right", "lateral")]
    fig, axes = plt.subplots(len(rows), 2, figsize=(6.5, 2.4 * len(rows)),
                             subplot_kw={"projection": "3d"}, squeeze=False)
    vmax = scale * _abs_max(*[v for _, lh, rh in rows for v in (lh, rh)])
    for (label, lh, rh), row_axes in zip(rows, axes):
        _draw_views(fig, row_axes, scale * np.asarray(lh), scale * np.asarray(rh), views,
                    cmap=cmap, vmin=-vmax, vmax=vmax)
        row_axes[0].set_title(label, fontsize=9, loc="left")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(-vmax, vmax))
    fig.colorbar(sm, ax=axes, shrink=0.5, fraction=0.03, label=unit)
    fig.suptitle(title)
    return save(fig, path)
