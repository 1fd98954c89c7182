"""Participant outputs written as the participant level writes them, for group-level tests.

A study of ``n_subjects`` x ``n_runs`` observations with the default conditions, bands and 22
windows, on a small parcellation, written through :func:`bids_app.io.derivatives.write_table`
(so in the app's own table format) into a derivatives folder, beside a minimal raw dataset.
The group level runs on it in seconds instead of the hour a participant level would take.

Values lie on a grid of ``step`` (0.01 by default): block averages of such values often agree
in their first ten digits while differing in the last bit of the float, which is what written
tables must not blur (issue 19, item 10).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app.config import DEFAULT_BANDS, DEFAULT_CONDITIONS, Config
from bids_app.io.derivatives import participant_path, write_table

ATLAS = "test"
TASK = "naming"


def parcel_table(n_per_hemi: int = 10) -> pd.DataFrame:
    names = [f"p{i}-{hemi}" for hemi in ("lh", "rh") for i in range(n_per_hemi)]
    return pd.DataFrame({"index": range(len(names)), "name": names,
                         "hemi": [n[-2:] for n in names], "n_vertices": 10, "included": True})


def write_study(root: Path, *, n_subjects: int = 6, n_runs: int = 1, blocks: int = 2,
                n_per_hemi: int = 10, step: float = 0.01, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/bids`` (a raw dataset with no data) and ``root/out`` (participant outputs).

    Returns the two folders.
    """
    rng = np.random.default_rng(seed)
    bids, out = Path(root) / "bids", Path(root) / "out"
    bids.mkdir(parents=True, exist_ok=True)
    (bids / "dataset_description.json").write_text(json.dumps(
        {"Name": "group test", "BIDSVersion": "1.10.0", "DatasetType": "raw"}))
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset_description.json").write_text(json.dumps(
        {"Name": "megfmri-fusion derivatives", "BIDSVersion": "1.10.0",
         "DatasetType": "derivative", "GeneratedBy": [{"Name": "megfmri-fusion"}]}))
    parcels = parcel_table(n_per_hemi)
    write_table(parcels, out / f"atlas-{ATLAS}_dseg.tsv", description="test parcels")
    names = parcels["name"].tolist()
    windows = [round(w, 3) for w in Config().window_starts_ms()]  # as the app writes them

    def grid(size: int) -> np.ndarray:
        return np.round(rng.normal(size=size) / step) * step

    for s in range(1, n_subjects + 1):
        for r in range(1, n_runs + 1):
            ent = {"sub": f"{s:02d}", "task": TASK, "run": f"{r:02d}", "atlas": ATLAS}
            bold = pd.DataFrame(
                [(c, b, p) for c in DEFAULT_CONDITIONS for b in range(blocks) for p in names],
                columns=["condition", "block", "parcel"])
            bold["value"] = grid(len(bold))
            bold["normalized"] = grid(len(bold))
            write_table(bold, participant_path(out, {**ent, "desc": "blocks"}, "func", "bold",
                                               ".tsv"), description="test fMRI blocks")
            meg = pd.DataFrame(
                [(c, b, band, w, p) for c in DEFAULT_CONDITIONS for b in range(blocks)
                 for band in DEFAULT_BANDS for w in windows for p in names],
                columns=["condition", "block", "band", "window_start_ms", "parcel"])
            meg["relchange"] = grid(len(meg))
            meg["normalized"] = grid(len(meg))
            write_table(meg, participant_path(out, {**ent, "desc": "dics"}, "meg", "meg",
                                              ".tsv.gz"), description="test MEG power")
    return bids, out
