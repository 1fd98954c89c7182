"""Truncated data files are found from their structure, before any work (issue 19.5).

A FIF or NIfTI file cut anywhere is reported; a complete file never is, whether written by MNE,
by MEGIN's acquisition and MaxFilter software (the real recordings of the shared data), as
several gzip members, or with bytes after its data.
"""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_app.io.integrity import fif_problem, nifti_problem
from skeleton import write_meg, write_nifti


def _tag_boundaries(data: bytes) -> list[int]:
    """Byte positions where a tag of a FIF file starts (the places a cut leaves no partial
    tag behind: the hardest truncations to see)."""
    pos, out = 0, []
    while True:
        _kind, _type, size, nxt = struct.unpack(">iIii", data[pos:pos + 16])
        if nxt == -1:
            return out
        pos = pos + 16 + size if nxt == 0 else nxt
        out.append(pos)


def _cuts(data: bytes, n: int = 60) -> list[int]:
    """``n`` random cuts and ``n`` cuts at tag boundaries (the first and last ones included)."""
    rng = np.random.default_rng(0)
    boundaries = _tag_boundaries(data)[:-1]  # the last one: only the end marker is missing
    chosen = boundaries[:5] + boundaries[-5:] + rng.choice(boundaries, n - 10).tolist()
    return sorted(set(rng.integers(1, len(data) - 1, n).tolist() + chosen))


def _fif_files(tmp_path: Path, mne_testing: Path | None) -> list[Path]:
    files = [write_meg(tmp_path / "skeleton_meg.fif")]
    if mne_testing is not None:
        files += [mne_testing / "SSS" / "test_move_anon_erm_raw.fif",
                  mne_testing / "SSS" / "sample_audvis_trunc_raw_sss.fif",
                  mne_testing / "SSS" / "test_move_anon_erm_st1FineCalCrossTalkRegIn_raw_sss.fif",
                  mne_testing / "SSS" / "ct_sparse.fif"]
    return files


@pytest.fixture
def real_data(request):
    try:
        return request.getfixturevalue("mne_testing")
    except pytest.skip.Exception:
        return None


def test_complete_fif_files_pass(tmp_path, real_data):
    for path in _fif_files(tmp_path, real_data):
        assert fif_problem(path) is None, path


def test_fif_cut_anywhere_is_found(tmp_path, real_data):
    """Every cut inside the data and at every tag boundary, in MNE-written and MEGIN files."""
    for source in _fif_files(tmp_path, real_data)[:3]:
        data = source.read_bytes()
        cut = tmp_path / "cut_meg.fif"
        for position in _cuts(data):
            cut.write_bytes(data[:position])
            assert fif_problem(cut) is not None, (source.name, position)


def test_mne_reads_a_cut_fif_as_a_shorter_recording(tmp_path):
    """Why the check is needed: MNE reads half a file as half a recording, with a warning."""
    import mne

    source = write_meg(tmp_path / "whole_meg.fif")
    cut = tmp_path / "half_meg.fif"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = mne.io.read_raw_fif(cut, preload=False, verbose="error")
    whole = mne.io.read_raw_fif(source, preload=False, verbose="error")
    assert 0 < half.n_times < whole.n_times
    assert "truncated" in fif_problem(cut)


def test_not_a_fif_file(tmp_path):
    path = tmp_path / "x_meg.fif"
    path.write_bytes(b"not a recording" * 100)
    assert "not a FIF file" in fif_problem(path)


@pytest.mark.parametrize("name", ["bold.nii.gz", "bold.nii"])
def test_nifti_cut_anywhere_is_found(tmp_path, name):
    source = write_nifti(tmp_path / name, shape=(8, 8, 8, 30))
    assert nifti_problem(source, nib.load(source)) is None
    data = source.read_bytes()
    cut = tmp_path / f"cut_{name}"
    for fraction in (0.1, 0.5, 0.9, 0.999):
        cut.write_bytes(data[: int(len(data) * fraction)])
        problem = nifti_problem(cut, nib.load(cut))
        assert problem is not None and "truncated" in problem, fraction


def test_complete_gzip_variants_pass(tmp_path):
    """Several gzip members, or bytes after the image: the trailer does not give the image's
    length, the stream is read, and the file is accepted."""
    source = write_nifti(tmp_path / "bold.nii", shape=(8, 8, 8, 30))
    raw = source.read_bytes()
    members = tmp_path / "members_bold.nii.gz"
    members.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    assert nifti_problem(members, nib.load(members)) is None
    trailing = tmp_path / "trailing_bold.nii.gz"
    trailing.write_bytes(gzip.compress(raw + b"\x00" * 64))
    assert nifti_problem(trailing, nib.load(trailing)) is None
