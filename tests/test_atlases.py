"""Finding the atlas offline (issue 20, item 1): TemplateFlow through its client and its real
atlas names, placeholders and annexed files counted as absent, nilearn's file names.

Each test builds the places the app searches in a temporary folder (no network, nothing
downloaded): a TemplateFlow home holding only TemplateFlow's own skeleton of 0-byte placeholder
files, then the same home with real ``tpl-fsaverage`` Destrieux files, nilearn's
``destrieux_surface`` folder, and a DataLad-style FreeSurfer folder whose annexed files were not
fetched.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bids_app.errors import MissingInputError
from bids_app.io.atlases import resolve_atlas, unusable_reason

N_FSAVERAGE5 = 10242


@pytest.fixture
def empty_places(monkeypatch, tmp_path):
    """No FreeSurfer, nilearn or TemplateFlow files anywhere (an empty home)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("FREESURFER_HOME", "TEMPLATEFLOW_HOME", "NILEARN_DATA", "NILEARN_SHARED_DATA",
                 "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _skeleton_home(folder: Path) -> Path:
    """A TemplateFlow home as TemplateFlow's client creates it on first use: its packaged
    skeleton, every data file a 0-byte placeholder."""
    spec = importlib.util.find_spec("templateflow")
    skeleton = Path(spec.submodule_search_locations[0]) / "conf" / "templateflow-skel.zip"
    with zipfile.ZipFile(skeleton) as archive:
        archive.extractall(folder)
    return folder


def _label_gifti(path: Path, n_vertices: int = N_FSAVERAGE5) -> Path:
    import nibabel as nib

    table = nib.gifti.GiftiLabelTable()
    for key in range(4):
        label = nib.gifti.GiftiLabel(key=key, red=0.1 * key, green=0.5, blue=0.5, alpha=1.0)
        label.label = f"G_region{key}"
        table.labels.append(label)
    data = (np.arange(n_vertices) % 4).astype(np.int32)
    array = nib.gifti.GiftiDataArray(data, intent="NIFTI_INTENT_LABEL",
                                     datatype="NIFTI_TYPE_INT32")
    nib.save(nib.gifti.GiftiImage(labeltable=table, darrays=[array]), path)
    return path


def _annot(path: Path, n_vertices: int = N_FSAVERAGE5) -> Path:
    from nibabel.freesurfer import write_annot

    ctab = np.array([[20, 30, 40, 0, 0], [50, 60, 70, 0, 0]])
    write_annot(str(path), np.arange(n_vertices) % 2, ctab, [b"G_a", b"S_b"])
    return path


def test_placeholders_fall_back_with_the_warning(empty_places, monkeypatch):
    """TemplateFlow's placeholders count as absent: the default atlas falls back (with the note
    naming them), a named one stops with exit 66 instead of "Empty file"."""
    tf_home = _skeleton_home(empty_places / "templateflow")
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tf_home))
    placeholder = (tf_home / "tpl-fsaverage"
                   / "tpl-fsaverage_hemi-L_den-164k_atlas-Destrieux2009_dseg.label.gii")
    assert placeholder.is_file() and placeholder.stat().st_size == 0
    choice = resolve_atlas("auto")
    assert (choice.name, choice.files) == ("fallback", None)
    assert f"{placeholder}: not used" in choice.note
    assert "empty placeholder" in choice.note
    with pytest.raises(MissingInputError, match="empty placeholder") as err:
        resolve_atlas("destrieux")
    assert err.value.exit_code == 66


def test_real_templateflow_file_is_used(empty_places, monkeypatch):
    """With real tpl-fsaverage Destrieux2009 files (TemplateFlow's name, den-10k here) the
    default atlas is Destrieux, found through TemplateFlow's client; the placeholders of the
    denser files are passed over."""
    tf_home = _skeleton_home(empty_places / "templateflow")
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tf_home))
    folder = tf_home / "tpl-fsaverage"
    files = [_label_gifti(folder / f"tpl-fsaverage_hemi-{h}_den-10k_atlas-Destrieux2009_dseg"
                          ".label.gii") for h in ("L", "R")]
    choice = resolve_atlas("auto")
    assert (choice.name, choice.label, choice.files) == ("destrieux", "destrieux", tuple(files))
    assert resolve_atlas("destrieux").files == tuple(files)


def test_templateflow_home_is_never_created(empty_places, tmp_path):
    """Looking for the atlas does not create a TemplateFlow home (importing TemplateFlow with an
    absent home writes its skeleton there, and fails on a read-only file system)."""
    absent = tmp_path / "no-templateflow"
    env = {**os.environ, "HOME": str(empty_places / "home"), "TEMPLATEFLOW_HOME": str(absent)}
    env.pop("FREESURFER_HOME", None)
    code = ("from bids_app.io.atlases import resolve_atlas; import sys; "
            "c = resolve_atlas('auto'); "
            "sys.exit(0 if c.name == 'fallback' and 'no TemplateFlow home' in c.note else 1)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not absent.exists()
    assert "templateflow" not in proc.stderr.lower()


def test_nilearn_destrieux_names(empty_places, monkeypatch):
    """nilearn's fetch_atlas_surf_destrieux saves left./right.aparc.a2009s.annot."""
    data = empty_places / "nilearn_data"
    folder = data / "destrieux_surface"
    folder.mkdir(parents=True)
    files = (_annot(folder / "left.aparc.a2009s.annot"), _annot(folder / "right.aparc.a2009s.annot"))
    monkeypatch.setenv("NILEARN_DATA", str(data))
    choice = resolve_atlas("auto")
    assert (choice.name, choice.files) == ("destrieux", files)


def test_annexed_files_count_as_absent(empty_places, monkeypatch):
    """A DataLad FreeSurfer folder whose annexed atlas content was not fetched (dangling links)
    is passed over for the next place searched; so is a git-annex pointer file."""
    fs = empty_places / "derivatives" / "freesurfer"
    label = fs / "fsaverage" / "label"
    label.mkdir(parents=True)
    key = "MD5E-s123--0123456789abcdef.annot"
    for hemi in ("lh", "rh"):
        (label / f"{hemi}.aparc.a2009s.annot").symlink_to(
            f"../../.git/annex/objects/Xx/Yy/{key}/{key}")
    pointer = empty_places / "pointer.annot"
    pointer.write_text(f"/annex/objects/{key}\n")
    assert "not fetched" in unusable_reason(pointer)
    assert unusable_reason(label / "lh.aparc.a2009s.annot").startswith("a link")
    data = empty_places / "nilearn_data"
    (data / "destrieux_surface").mkdir(parents=True)
    files = tuple(_annot(data / "destrieux_surface" / f"{side}.aparc.a2009s.annot")
                  for side in ("left", "right"))
    monkeypatch.setenv("NILEARN_DATA", str(data))
    choice = resolve_atlas("auto", freesurfer_dirs=[fs])
    assert choice.files == files
