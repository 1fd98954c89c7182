"""A tiny MEG+fMRI BIDS dataset for testing discovery, checks and the command line.

Its files are small but real and consistent with each other, so every input check passes: a
FIF recording at 250 Hz (above twice the highest band edge, 90 Hz) lasting 120 s with MEG
channels, 4-D NIfTI BOLD runs of 45 volumes whose header says TR 3 s like the sidecar, and
events whose blocks lie inside both recordings with room for the baseline after the 5 dummy
scans. It is not meant for the analysis itself (that uses the simulator).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

CONDITIONS = ("object_object", "action_action", "object_action")


def _events(n_blocks_per_condition: int = 1) -> pd.DataFrame:
    rows = []
    t = 40.0
    block = 0
    for rep in range(n_blocks_per_condition):
        for cond in CONDITIONS:
            block += 1
            rows.append((t - 2.0, 2.0, "instruction", "n/a"))
            for k in range(3):
                rows.append((t + 3.0 * k, 0.3, cond, block))
            t += 30.0
    return pd.DataFrame(rows, columns=["onset", "duration", "trial_type", "block"])


def write_events(path: Path, events: pd.DataFrame | None = None) -> Path:
    events = _events() if events is None else events
    path.parent.mkdir(parents=True, exist_ok=True)
    events.to_csv(path, sep="\t", index=False, na_rep="n/a")
    return path


def write_meg(path: Path, duration_s: float = 120.0, sfreq: float = 250.0,
              types: tuple[str, ...] = ("grad",) * 4 + ("mag",) * 2) -> Path:
    import mne

    names = [f"MEG{i:04d}" for i in range(len(types))] + ["EOG061", "STI101"]
    info = mne.create_info(names, sfreq, list(types) + ["eog", "stim"])
    data = np.random.default_rng(0).normal(size=(len(names), int(duration_s * sfreq))) * 1e-12
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.io.RawArray(data, info, verbose="error").save(path, overwrite=True, verbose="error")
    return path


def write_nifti(path: Path, shape=(4, 4, 4, 45), tr: float = 3.0) -> Path:
    """A NIfTI image of random values; 4-D images record ``tr`` (s) in their header."""
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).normal(100, 1, size=shape).astype("float32")
    img = nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))
    img.header.set_xyzt_units("mm", "sec")
    if len(shape) == 4:
        img.header.set_zooms((3.0, 3.0, 3.0, tr))
    nib.save(img, path)
    return path


def make_skeleton(
    root: Path,
    subjects=("01", "02"),
    runs=("01", "02"),
    *,
    meg_session: str | None = None,
    bold_session: str | None = None,
    task: str = "naming",
) -> Path:
    """Write the skeleton dataset at ``root`` and return it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "skeleton", "BIDSVersion": "1.10.0", "DatasetType": "raw"})
    )
    (root / f"task-{task}_bold.json").write_text(
        json.dumps({"RepetitionTime": 3.0, "TaskName": task})
    )
    for sub in subjects:
        for run in runs:
            meg_dir = root / f"sub-{sub}" / (f"ses-{meg_session}" if meg_session else "") / "meg"
            func_dir = root / f"sub-{sub}" / (f"ses-{bold_session}" if bold_session else "") / "func"
            ses_m = f"_ses-{meg_session}" if meg_session else ""
            ses_b = f"_ses-{bold_session}" if bold_session else ""
            stem_m = f"sub-{sub}{ses_m}_task-{task}_run-{run}"
            stem_b = f"sub-{sub}{ses_b}_task-{task}_run-{run}"
            write_meg(meg_dir / f"{stem_m}_meg.fif")
            write_events(meg_dir / f"{stem_m}_events.tsv")
            write_nifti(func_dir / f"{stem_b}_bold.nii.gz")
            write_events(func_dir / f"{stem_b}_events.tsv")
        anat_dir = root / f"sub-{sub}" / (f"ses-{bold_session}" if bold_session else "") / "anat"
        ses_b = f"_ses-{bold_session}" if bold_session else ""
        write_nifti(anat_dir / f"sub-{sub}{ses_b}_T1w.nii.gz", shape=(8, 8, 8))
    return root


def fingerprint(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Everything under ``root``, to show that it did not change (or did): the content hash of
    every file, every folder, and where every symbolic link points (links are not followed).
    Paths in ``skip`` and below them are left out."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        if any(path == s or s in path.parents for s in skip):
            continue
        name = str(path.relative_to(root))
        if path.is_symlink():
            out[name] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[name + "/"] = "dir"
        else:
            out[name] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


def tables(folder: Path) -> dict[str, bytes]:
    """Every table (``.tsv``, ``.tsv.gz``) written under ``folder``, by relative path, with its
    bytes (for byte-for-byte comparisons of two runs); ``sourcedata`` is left out."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(Path(folder).rglob("*")) if p.name.endswith((".tsv", ".tsv.gz"))
            and "sourcedata" not in p.parts}
