"""Parcellations on fsaverage: reading labels, excluding regions, splitting, and the table.

A parcellation is defined on the fsaverage5 vertices (the first 10,242 vertices of fsaverage, an
icosahedral subdivision of order 5). Because fsaverage's icosahedral vertex sets are nested, the
same labels give the parcel of any grid point of order <= 5 (ico-4: the first 2,562 vertices).

Building follows DESIGN 4.1:

1. the atlas labels of each hemisphere (``read_annotation``);
2. labels matching the exclusion patterns (anterior frontal, deep medial, inferior temporal,
   medial wall: ``bids_app/data/parcellations/<atlas>-exclude.txt``) stay whole and are marked
   ``included = False``;
3. the other labels are split into compact parts with MNE's PCA split (:meth:`mne.Label.split`)
   until ``n_included_per_hemi`` parcels remain per hemisphere (70 in the paper): repeatedly the
   label with the most vertices per part gets one more part (ties broken by name), so parts end
   up of similar size;
4. the table (``index, name, hemi, n_vertices, included``) lists every parcel; a user may edit
   its ``included`` column and give it back (:meth:`Parcellation.with_table`).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app.input_errors import InputDataError

LOGGER = logging.getLogger(__name__)

N_FSAVERAGE5 = 10242
HEMIS = ("lh", "rh")
TABLE_COLUMNS = ("index", "name", "hemi", "n_vertices", "included")


class ParcellationError(InputDataError):
    """An atlas or parcellation table cannot be used; the message names the file and the fix."""


@dataclass
class AtlasLabels:
    """Labels of one hemisphere on fsaverage5: a label index per vertex and the label names."""

    hemi: str
    vertex_label: np.ndarray  # int, shape (10242,), -1 = no label
    names: list[str]  # without hemisphere suffix


def read_annotation(path: str | Path, hemi: str, *, n_vertices: int = N_FSAVERAGE5) -> AtlasLabels:
    """Read a FreeSurfer ``.annot`` (or GIFTI ``.label.gii``) on fsaverage for one hemisphere.

    Annotations on fsaverage (163,842 vertices), fsaverage6 (40,962) or fsaverage5 (10,242)
    are accepted: their first ``n_vertices`` vertices are the fsaverage5 ones.
    """
    import nibabel as nib
    from nibabel.freesurfer import read_annot

    path = Path(path)
    try:
        if path.name.endswith(".gii") or path.name.endswith(".gii.gz"):
            img = nib.load(path)
            labels = np.asarray(img.agg_data(), int)
            table = img.labeltable.get_labels_as_dict()
            keys = sorted(table)
            lookup = {k: i for i, k in enumerate(keys)}
            names = [str(table[k]) for k in keys]
            labels = np.array([lookup.get(v, -1) for v in labels])
        else:
            labels, _, names = read_annot(str(path))
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    except Exception as err:  # nibabel raises various errors for broken files
        raise ParcellationError(f"Cannot read the annotation {path}: {err}") from None
    if labels.size not in (N_FSAVERAGE5, 40962, 163842) or labels.size < n_vertices:
        raise ParcellationError(
            f"The annotation {path} has {labels.size} vertices; an annotation on fsaverage "
            "(163,842), fsaverage6 (40,962) or fsaverage5 (10,242) is needed."
        )
    return AtlasLabels(hemi=hemi, vertex_label=np.asarray(labels[:n_vertices], int), names=names)


def exclusion_patterns(atlas: str) -> list[str]:
    """The packaged exclusion patterns of ``atlas`` (empty when there is no list for it)."""
    resource = resources.files("bids_app") / "data" / "parcellations" / f"{atlas}-exclude.txt"
    if not resource.is_file():
        return []
    lines = resource.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _excluded(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns)


def split_counts(sizes: dict[str, int], target: int) -> dict[str, int]:
    """Parts per label so that the parts total ``target``: the label with the most vertices per
    part gets one more part until the total is reached (ties: alphabetical order)."""
    parts = {name: 1 for name in sizes}
    if len(parts) >= target:
        return parts
    while sum(parts.values()) < target:
        name = max(sorted(parts), key=lambda n: sizes[n] / parts[n])
        parts[name] += 1
    return parts


@dataclass
class Parcellation:
    """Parcels on fsaverage5 with the table of DESIGN 6."""

    atlas: str
    table: pd.DataFrame
    labels: dict[str, np.ndarray]  # hemi -> row index of ``table`` per fsaverage5 vertex, -1 none

    @property
    def included(self) -> pd.DataFrame:
        """Rows of the included parcels, in table order."""
        return self.table[self.table["included"].astype(bool)]

    @property
    def included_names(self) -> list[str]:
        return self.included["name"].tolist()

    @property
    def included_hemis(self) -> list[str]:
        return self.included["hemi"].tolist()

    def parcel_of_vertices(self, hemi: str, vertices: np.ndarray) -> np.ndarray:
        """Index into :attr:`included_names` of fsaverage vertices (-1: not in an included parcel).

        ``vertices`` are fsaverage vertex numbers below 10,242 (the grids of order <= 5).
        """
        vertices = np.asarray(vertices, int)
        if vertices.size and vertices.max() >= N_FSAVERAGE5:
            raise ParcellationError("grid vertices beyond fsaverage5 (order > 5) are not supported")
        position = np.full(len(self.table), -1)
        rows = self.included["index"].to_numpy()
        position[rows] = np.arange(len(rows))
        row = self.labels[hemi][vertices]
        return np.where(row >= 0, position[np.maximum(row, 0)], -1)

    def to_points(self, vertices_by_hemi: Sequence[np.ndarray]) -> np.ndarray:
        """Parcel index of every grid point, left hemisphere then right."""
        return np.concatenate([self.parcel_of_vertices(h, v)
                               for h, v in zip(HEMIS, vertices_by_hemi)])

    def with_table(self, table: pd.DataFrame, *, source: str = "the table") -> Parcellation:
        """Apply an edited table (its ``included`` column); names must match this one."""
        missing = [c for c in TABLE_COLUMNS if c not in table.columns]
        if missing:
            raise ParcellationError(f"{source} lacks the column(s) {', '.join(missing)}.")
        if table["name"].tolist() != self.table["name"].tolist():
            raise ParcellationError(
                f"The parcels of {source} do not match the '{self.atlas}' parcellation built with "
                "the same settings (names differ); write a fresh table with the current settings "
                "and edit only its 'included' column."
            )
        included = table["included"].map(_as_bool)
        if included.isna().any():
            raise ParcellationError(f"{source}: 'included' must be true/false for every parcel.")
        new = self.table.copy()
        new["included"] = included.astype(bool).to_numpy()
        return Parcellation(atlas=self.atlas, table=new, labels=self.labels)


def _as_bool(value):
    text = str(value).strip().lower()
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text)


def build_parcellation(
    atlas_labels: Sequence[AtlasLabels],
    *,
    atlas: str,
    exclude: Sequence[str],
    n_included_per_hemi: int,
    subject: str,
    subjects_dir: str | Path,
) -> Parcellation:
    """Split and exclude atlas labels (see the module docstring).

    Parameters
    ----------
    atlas_labels : sequence of AtlasLabels
        Left and right hemisphere labels on fsaverage5.
    atlas : str
        Short name used in file names (``atlas-<atlas>``).
    exclude : sequence of str
        fnmatch patterns of label names (without ``-lh``/``-rh``) to exclude.
    n_included_per_hemi : int
        Included parcels wanted per hemisphere.
    subject, subjects_dir
        A FreeSurfer subject with fsaverage5 surfaces (the template), for the PCA split.
    """
    import mne

    rows, labels = [], {}
    for hemi_labels in atlas_labels:
        hemi = hemi_labels.hemi
        vertex_label = hemi_labels.vertex_label
        members = {name: np.flatnonzero(vertex_label == k)
                   for k, name in enumerate(hemi_labels.names)}
        members = {n: v for n, v in members.items() if v.size}
        keep = {n: v for n, v in members.items() if not _excluded(n, exclude)}
        if len(keep) > n_included_per_hemi:
            LOGGER.warning("%s: %d labels remain after exclusion, more than the %d parcels wanted "
                           "per hemisphere; they are kept unsplit.", hemi, len(keep),
                           n_included_per_hemi)
        parts = split_counts({n: len(v) for n, v in keep.items()}, n_included_per_hemi)
        hemi_row = np.full(N_FSAVERAGE5, -1)
        for name, vertices in members.items():
            pieces = [(f"{name}-{hemi}", vertices)]
            if name in keep and parts[name] > 1:
                label = mne.Label(vertices, hemi=hemi, name=f"{name}-{hemi}", subject=subject)
                split = label.split(parts[name], subject=subject, subjects_dir=subjects_dir)
                pieces = [(p.name, np.asarray(p.vertices)) for p in split]
            for piece_name, piece_vertices in pieces:
                if piece_vertices.size == 0:
                    continue
                hemi_row[piece_vertices] = len(rows)
                rows.append({"index": len(rows), "name": piece_name, "hemi": hemi,
                             "n_vertices": int(piece_vertices.size), "included": name in keep})
        labels[hemi] = hemi_row
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    counts = table[table.included].groupby("hemi").size().to_dict()
    LOGGER.info("Parcellation %s: %d parcels, included %s", atlas, len(table), counts)
    return Parcellation(atlas=atlas, table=table, labels=labels)
