"""Recompute published results from the published tables (issue 19, item 10).

A reader of the derivatives has only the tables. These helpers redo, from the files, what the
app did in memory: a participant's normalised MEG power from its relative change, the group
observations from the participant tables, the group statistics from the observation tables
(with the settings recorded in their sidecars). The tests compare the results with the written
tables *exactly*: any rounding in a written table turns values that differ in their last bits
into ties, and ties change rank correlations.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app.io.derivatives import (
    GROUP_TABLES,
    dseg_table_path,
    group_table_path,
    observations_table_path,
    read_table,
    sidecar_path,
)
from bids_app.io.group import find_participant_outputs
from bids_app.meg.dics import normalize_run
from bids_app.stats import run_group_statistics
from bids_app.stats.options import GroupStatsOptions


def meg_normalized_from_relchange(table: pd.DataFrame) -> np.ndarray:
    """``normalized`` of a participant MEG table recomputed from its ``relchange`` column
    (rows in the app's order: band, then block x window x parcel)."""
    out = []
    for _band, rows in table.groupby("band", sort=False):
        shape = (rows["block"].nunique(), rows["window_start_ms"].nunique(),
                 rows["parcel"].nunique())
        out.append(normalize_run(rows["relchange"].to_numpy().reshape(shape)).ravel())
    return np.concatenate(out)


def observations_from_participants(out: Path, task: str, atlas: str) -> dict[str, pd.DataFrame]:
    """The block averages of each participant table, keyed like the observation tables."""
    files = find_participant_outputs(out)
    files = files[(files.task == task) & (files.atlas == atlas)]
    found = {"meg": [], "bold": []}
    keys = {"meg": ["condition", "band", "window_start_ms", "parcel"],
            "bold": ["condition", "parcel"]}
    for row in files.itertuples():
        table = read_table(row.path)
        averaged = table.groupby(keys[row.suffix], sort=False)["normalized"].mean()
        found[row.suffix].append(averaged.rename("value").reset_index()
                                 .assign(subject=int(row.subject), run=int(row.run)))
    return {k: pd.concat(v, ignore_index=True) for k, v in found.items()}


def statistics_from_observations(out: Path, task: str, atlas: str) -> dict[str, pd.DataFrame]:
    """Every group table recomputed from the two observation tables and the settings in the
    sidecar of the Spearman table."""
    meg = read_table(observations_table_path(out, task, atlas, "meg"))
    bold = read_table(observations_table_path(out, task, atlas, "bold"))
    settings = json.loads(sidecar_path(group_table_path(out, task, atlas, "spearman"))
                          .read_text())
    parcels = read_table(dseg_table_path(out, atlas))
    parcels = parcels[parcels["included"].astype(bool)]
    obs = bold[["subject", "run"]].drop_duplicates()  # the order the app used
    # the order of conditions and bands (the configuration's) from the written table's rows
    layout = read_table(group_table_path(out, task, atlas, "spearman"))
    conditions = list(dict.fromkeys(layout["condition"]))
    bands = list(dict.fromkeys(layout["band"]))
    windows = sorted(meg["window_start_ms"].unique())
    names = parcels["name"].tolist()

    def dense(table, axes):
        index = pd.MultiIndex.from_tuples(
            [(s, r, *rest) for s, r in obs.itertuples(index=False)
             for rest in pd.MultiIndex.from_product(axes)], names=None)
        keyed = table.set_index(["subject", "run", *table.columns[3:-1]])["value"]
        values = keyed.reindex(index).to_numpy()
        assert not np.isnan(values).any()
        return values.reshape(len(obs), *[len(a) for a in axes])

    fmri = dense(bold, [conditions, names]).transpose(0, 2, 1)
    meg_values = dense(meg, [conditions, bands, windows, names]).transpose(0, 4, 1, 2, 3)
    recorded = {f.name: settings[f.name] for f in dataclasses.fields(GroupStatsOptions)
                if f.name in settings}
    return run_group_statistics(meg_values, fmri, parcels=names, hemis=parcels["hemi"].tolist(),
                                conditions=conditions, bands=bands, windows_ms=windows,
                                seed=settings["random_seed"],
                                options=GroupStatsOptions(**recorded))


def assert_same_table(written: pd.DataFrame, computed: pd.DataFrame, name: str) -> None:
    """Same columns, and every value equal: floats bit for bit (NaN where NaN)."""
    computed = computed.reset_index(drop=True)
    assert list(written.columns) == list(computed.columns), name
    assert len(written) == len(computed), name
    for column in written.columns:
        a, b = written[column].to_numpy(), computed[column].to_numpy()
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            a, b = a.astype(float), b.astype(float)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                worst = np.nanmax(np.abs(a - b))
                raise AssertionError(f"{name}.{column}: {int((~same).sum())} of {len(a)} values "
                                     f"differ (largest difference {worst:.3g})")
        else:
            assert [str(x) for x in a] == [str(x) for x in b], f"{name}.{column}"


def assert_group_tables_reproduce(out: Path, task: str, atlas: str) -> None:
    """The observation tables equal the block averages of the participant tables, and every
    group statistic recomputed from the observation tables equals the written one."""
    expected = observations_from_participants(out, task, atlas)
    for suffix in ("meg", "bold"):
        written = read_table(observations_table_path(out, task, atlas, suffix))
        keys = [c for c in written.columns if c not in ("session", "value")]
        merged = written.merge(expected[suffix], on=keys, suffixes=("", "_participants"),
                               validate="one_to_one")
        assert len(merged) == len(written) == len(expected[suffix])
        assert_same_table(merged[["value"]],
                          merged[["value_participants"]].set_axis(["value"], axis=1),
                          f"observations_{suffix}")
    recomputed = statistics_from_observations(out, task, atlas)
    for key in GROUP_TABLES:
        written = read_table(group_table_path(out, task, atlas, key))
        assert_same_table(written, recomputed[key], key)
