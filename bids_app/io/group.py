"""Gather the participant outputs into the group level's observations (DESIGN 5.1).

The group level reads only the participant derivatives in the output folder: each run's
``desc-blocks_bold.tsv`` and ``desc-dics_meg.tsv.gz``. An observation is a (subject, run) pair
with both files for the task; its value is the ``normalized`` column averaged over the blocks of
each condition. The result is written as the two observation tables of DESIGN 6 and returned as
arrays in the layout the statistics expect:

* ``meg``: shape (n_obs, n_parcels, n_conditions, n_bands, n_windows)
* ``fmri``: shape (n_obs, n_parcels, n_conditions)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app.errors import BadDataError, MissingInputError, NoMatchError
from bids_app.io.derivatives import read_table

LOGGER = logging.getLogger(__name__)

_NAME = re.compile(
    r"sub-(?P<subject>[A-Za-z0-9]+)(_ses-(?P<session>[A-Za-z0-9]+))?_task-(?P<task>[A-Za-z0-9]+)"
    r"(_acq-[A-Za-z0-9]+)?(_run-(?P<run>[0-9]+))?_atlas-(?P<atlas>[A-Za-z0-9]+)_desc-"
    r"(?P<desc>blocks|dics)_(?P<suffix>bold|meg)\.tsv(\.gz)?$"
)


@dataclass
class GroupData:
    """Observations of one task, ready for the statistics."""

    task: str
    atlas: str
    observations: pd.DataFrame  # subject, session, run (one row per observation)
    parcels: list[str]
    hemis: list[str]
    conditions: list[str]
    bands: list[str]
    windows_ms: list[float]
    meg: np.ndarray
    fmri: np.ndarray
    meg_table: pd.DataFrame  # long observation tables (DESIGN 6)
    fmri_table: pd.DataFrame


def find_participant_outputs(output_dir: Path) -> pd.DataFrame:
    """List every participant table in ``output_dir`` with its entities."""
    rows = []
    for path in sorted(Path(output_dir).glob("sub-*/**/*_desc-*_*.tsv*")):
        match = _NAME.match(path.name)
        if match:
            rows.append({**match.groupdict(), "path": path})
    return pd.DataFrame(rows, columns=["subject", "session", "task", "run", "atlas", "desc",
                                       "suffix", "path"])


def observation_files(output_dir: Path, *, task: str, atlas: str,
                      min_observations: int) -> list[tuple[dict, Path, Path]]:
    """(observation, MEG table, BOLD table) of every (subject, run) of ``task`` with both.

    Raises
    ------
    MissingInputError
        No participant output for the task and atlas.
    BadDataError
        Fewer than ``min_observations`` observations.
    """
    files = find_participant_outputs(output_dir)
    files = files[(files.task == task) & (files.atlas == atlas)]
    if files.empty:
        raise MissingInputError(
            f"No participant outputs for task '{task}' and atlas '{atlas}' in {output_dir}. Run "
            "the participant level (with the same atlas) into this folder first."
        )
    pairs = _pair_files(files)
    if len(pairs) < min_observations:
        raise BadDataError(
            f"Only {len(pairs)} (subject, run) observation(s) with both MEG and fMRI outputs for "
            f"task '{task}' in {output_dir}; the group statistics need at least "
            f"{min_observations} (stats.min_observations). Process more participants first."
        )
    return pairs


def included_parcels(parcel_table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Names and hemispheres of the parcels an ``atlas-<atlas>_dseg.tsv`` table includes, in
    order (the rows of the group arrays)."""
    included = parcel_table[parcel_table["included"].astype(bool)]
    return included["name"].tolist(), included["hemi"].tolist()


def _pair_files(files: pd.DataFrame) -> list[tuple[dict, Path, Path]]:
    """(observation, meg file, bold file) for every (subject, run) with both modalities.

    Runs pair by run label; when a run label occurs twice in one modality (sessions that each
    hold both modalities), by session and run label, as at the participant level.
    """
    pairs = []
    for subject, sub_files in files.groupby("subject", sort=True):
        meg = sub_files[sub_files.suffix == "meg"]
        bold = sub_files[sub_files.suffix == "bold"]
        by_session = meg.run.duplicated().any() or bold.run.duplicated().any()
        keys = ["session", "run"] if by_session else ["run"]
        merged = meg.merge(bold, on=keys, suffixes=("_meg", "_bold"))
        for _, row in merged.iterrows():
            session = row["session"] if by_session else None
            pairs.append(({"subject": subject, "session": session, "run": row["run"]},
                          row["path_meg"], row["path_bold"]))
    return pairs


def gather(
    output_dir: Path,
    *,
    task: str,
    atlas: str,
    conditions: Sequence[str],
    bands: Sequence[str],
    windows_ms: Sequence[float],
    parcel_table: pd.DataFrame,
    min_observations: int,
) -> GroupData:
    """Read the participant outputs of ``task`` and build the observation arrays.

    Parameters
    ----------
    parcel_table : DataFrame
        The ``atlas-<atlas>_dseg.tsv`` table; its included parcels, in order, are the rows of
        the arrays.

    Raises
    ------
    MissingInputError
        No participant output for the task/atlas.
    BadDataError
        Fewer than ``min_observations`` observations, or conditions, bands, windows or parcels
        that do not match across participants (the files are named).
    """
    pairs = observation_files(output_dir, task=task, atlas=atlas,
                              min_observations=min_observations)
    parcels, hemis = included_parcels(parcel_table)
    conditions, bands = list(conditions), list(bands)
    windows = np.round(np.asarray(windows_ms, float), 3)

    n = len(pairs)
    meg = np.full((n, len(parcels), len(conditions), len(bands), len(windows)), np.nan)
    fmri = np.full((n, len(parcels), len(conditions)), np.nan)
    obs_rows, meg_long, fmri_long = [], [], []
    for i, (obs, meg_path, bold_path) in enumerate(pairs):
        obs_rows.append(obs)
        bold_avg = _block_average(read_table(bold_path), ["condition", "parcel"], bold_path)
        meg_table = read_table(meg_path)
        meg_table["window_start_ms"] = np.round(meg_table["window_start_ms"].astype(float), 3)
        meg_avg = _block_average(meg_table, ["condition", "band", "window_start_ms", "parcel"],
                                 meg_path)
        fmri[i] = _to_array(bold_avg, [("parcel", parcels), ("condition", conditions)],
                            bold_path)
        meg[i] = _to_array(meg_avg, [("parcel", parcels), ("condition", conditions),
                                     ("band", bands), ("window_start_ms", list(windows))],
                           meg_path)
        meg_long.append(meg_avg.assign(**_obs_columns(obs)))
        fmri_long.append(bold_avg.assign(**_obs_columns(obs)))
    observations = pd.DataFrame(obs_rows, columns=["subject", "session", "run"])
    LOGGER.info("Task %s: %d observations (subject x run) from %d subjects, %d parcels",
                task, n, observations.subject.nunique(), len(parcels))
    meg_cols = ["subject", "session", "run", "condition", "band", "window_start_ms", "parcel",
                "value"]
    fmri_cols = ["subject", "session", "run", "condition", "parcel", "value"]
    return GroupData(
        task=task, atlas=atlas, observations=observations, parcels=parcels, hemis=hemis,
        conditions=conditions, bands=bands, windows_ms=list(windows), meg=meg, fmri=fmri,
        meg_table=pd.concat(meg_long, ignore_index=True)[meg_cols],
        fmri_table=pd.concat(fmri_long, ignore_index=True)[fmri_cols],
    )


def _obs_columns(obs: dict) -> dict:
    return {"subject": obs["subject"], "session": obs["session"] or "n/a", "run": obs["run"]}


def _block_average(table: pd.DataFrame, keys: list[str], path: Path) -> pd.DataFrame:
    """Mean of ``normalized`` over the blocks of each condition -> column ``value``."""
    missing = set(keys) | {"normalized"}
    missing -= set(table.columns)
    if missing:
        raise BadDataError(f"{path} lacks the column(s) {', '.join(sorted(missing))}.")
    return (table.groupby(keys, sort=False)["normalized"].mean().rename("value").reset_index())


def _to_array(table: pd.DataFrame, axes: list[tuple[str, list]], path: Path) -> np.ndarray:
    """Place ``value`` on a dense grid; every expected entry must be present."""
    for column, expected in axes:
        found = set(table[column].tolist())
        missing = [x for x in expected if x not in found]
        if missing:
            raise BadDataError(
                f"{path} has no values for {column} {', '.join(map(str, missing[:5]))}"
                f"{' ...' if len(missing) > 5 else ''}; every participant must be processed "
                "with the same conditions, bands, windows and parcellation."
            )
    index = pd.MultiIndex.from_product([values for _, values in axes],
                                       names=[name for name, _ in axes])
    series = table.set_index([name for name, _ in axes])["value"]
    series = series[~series.index.duplicated()]
    dense = series.reindex(index)
    return dense.to_numpy().reshape([len(values) for _, values in axes])


def tasks_in(output_dir: Path, atlas: str | None = None) -> list[str]:
    """Tasks with participant outputs (optionally for one atlas)."""
    files = find_participant_outputs(output_dir)
    if atlas is not None:
        files = files[files.atlas == atlas]
    if files.empty:
        raise NoMatchError(f"No participant outputs found in {output_dir}.")
    return sorted(files.task.unique())
