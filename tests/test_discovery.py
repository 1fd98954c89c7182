"""BIDS discovery: pairing MEG and BOLD runs by subject, task and run, across sessions."""

from __future__ import annotations

import shutil

import pytest

from bids_app.errors import BadDataError, InvalidBIDSError, NoMatchError, UsageError
from bids_app.io.bids import discover, find_freesurfer_subject, normalize_labels
from skeleton import make_skeleton


def test_pairs_in_one_session(skeleton):
    plan = discover(skeleton)
    assert [s.subject for s in plan.subjects] == ["01", "02"]
    pairs = plan.subjects[0].pairs
    assert [(p.task, p.run) for p in pairs] == [("naming", "01"), ("naming", "02")]
    assert pairs[0].meg.name == "sub-01_task-naming_run-01_meg.fif"
    assert pairs[0].bold.name == "sub-01_task-naming_run-01_bold.nii.gz"
    assert pairs[0].meg_events.name == "sub-01_task-naming_run-01_events.tsv"
    assert pairs[0].bold_events.parent.name == "func"
    assert pairs[0].repetition_time == 3.0  # inherited from the top-level sidecar
    assert plan.subjects[0].t1w.name == "sub-01_T1w.nii.gz"


def test_pairs_across_sessions(tmp_path):
    root = make_skeleton(tmp_path / "ds", subjects=("01",), meg_session="meg", bold_session="mri")
    plan = discover(root)
    pair = plan.subjects[0].pairs[0]
    assert (pair.meg_session, pair.bold_session) == ("meg", "mri")
    assert "ses-meg" in str(pair.meg) and "ses-mri" in str(pair.bold)


def test_session_selection(tmp_path):
    root = make_skeleton(tmp_path / "ds", subjects=("01",), meg_session="meg", bold_session="mri")
    with pytest.raises(NoMatchError, match="ses-xyz not found"):
        discover(root, session_label=["xyz"])


def test_run_labels_pair_by_index(tmp_path):
    root = make_skeleton(tmp_path / "ds", subjects=("01",), runs=("1",))
    # rename the BOLD run-1 to run-01: the same run index
    for f in (root / "sub-01" / "func").glob("*run-1_*"):
        f.rename(f.with_name(f.name.replace("run-1_", "run-01_")))
    plan = discover(root)
    assert len(plan.subjects[0].pairs) == 1


def test_unpaired_runs_are_skipped_with_warning(skeleton, caplog):
    (skeleton / "sub-01" / "meg" / "sub-01_task-naming_run-02_meg.fif").unlink()
    plan = discover(skeleton)
    sub = plan.subjects[0]
    assert [p.run for p in sub.pairs] == ["01"]
    assert "sub-01_task-naming_run-02_bold.nii.gz has no MEG run" in sub.skipped[0]
    assert "no MEG run with the same task and run label" in caplog.text
    with pytest.raises(BadDataError, match="unpaired runs"):
        discover(skeleton, unpaired_runs="error")


def test_subject_without_pairs_skipped_unless_selected(skeleton):
    shutil.rmtree(skeleton / "sub-02" / "meg")
    plan = discover(skeleton)
    assert [s.subject for s in plan.subjects] == ["01"]
    assert "sub-02 has no MEG run" in plan.warnings[0]
    with pytest.raises(BadDataError, match="sub-02 has no MEG run"):
        discover(skeleton, participant_label=["02"])


def test_task_filter(skeleton):
    with pytest.raises(NoMatchError, match="Task.*rest.*not found.*naming"):
        discover(skeleton, tasks=["rest"])
    assert discover(skeleton, tasks=["naming"]).tasks == ["naming"]


def test_bids_filters(skeleton):
    plan = discover(skeleton, bids_filters={"bold": {"run": 1}, "meg": {"run": 1}})
    assert [p.run for p in plan.subjects[0].pairs] == ["01"]
    # what a filter may hold is checked with the configuration (tests/test_config_ranges.py)


def test_freesurfer_layouts(tmp_path):
    (tmp_path / "fs" / "sub-01" / "surf").mkdir(parents=True)
    assert find_freesurfer_subject([tmp_path / "fs"], "01") == (tmp_path / "fs", "sub-01")
    nested = tmp_path / "fs2" / "sub-02" / "ses-mri" / "anat" / "surf"
    nested.mkdir(parents=True)
    assert find_freesurfer_subject([tmp_path / "fs2"], "02", ["mri"]) == (
        tmp_path / "fs2" / "sub-02" / "ses-mri", "anat")
    assert find_freesurfer_subject([tmp_path / "fs"], "03") is None


def test_fmriprep_gifti_found(skeleton, tmp_path):
    func = tmp_path / "fmriprep" / "sub-01" / "func"
    func.mkdir(parents=True)
    for hemi in "LR":
        (func / f"sub-01_task-naming_run-01_hemi-{hemi}_space-fsaverage5_bold.func.gii").write_text("")
    plan = discover(skeleton, fmriprep_dir=tmp_path / "fmriprep")
    first, second = plan.subjects[0].pairs
    assert first.fmriprep_bold[0].name.endswith("hemi-L_space-fsaverage5_bold.func.gii")
    assert second.fmriprep_bold is None


@pytest.mark.shared_data
def test_ds000117_layout(shared_data):
    """The real ds000117 layout: MEG in ses-meg, BOLD in ses-mri, FreeSurfer nested by session."""
    ds = shared_data / "bids-examples" / "ds000117"
    plan = discover(ds, participant_label=["01", "sub-04"[4:]])
    assert [s.subject for s in plan.subjects] == ["01", "04"]
    sub = plan.subjects[0]
    assert [p.run for p in sub.pairs] == ["01", "02", "03", "04", "05", "06"]
    assert {p.meg_session for p in sub.pairs} == {"meg"}
    assert {p.bold_session for p in sub.pairs} == {"mri"}
    assert all(p.task == "facerecognition" for p in sub.pairs)
    assert sub.pairs[0].repetition_time == 2.0
    assert sub.t1w.name == "sub-01_ses-mri_acq-mprage_T1w.nii.gz"
    # BOLD runs 07-09 have no MEG partner: skipped and said so
    assert len(sub.skipped) == 3 and all("has no MEG run" in s for s in sub.skipped)
    assert sub.fs_subjects_dir == ds / "derivatives" / "freesurfer" / "sub-01" / "ses-mri"
    assert sub.fs_subject == "anat"
    assert "6 MEG+BOLD run pair(s)" in sub.describe(ds)


# -- issue 19: subjects without anatomy, odd folders and names, selections matching nothing -----
def test_subject_without_t1w_is_planned(skeleton):
    """19.1: the T1w list was indexed before it was checked (IndexError)."""
    (skeleton / "sub-01" / "anat" / "sub-01_T1w.nii.gz").unlink()
    plan = discover(skeleton)
    assert [s.t1w is None for s in plan.subjects] == [True, False]


def test_odd_subject_folders_are_ignored_and_named(skeleton, caplog):
    """19.1: a copy of a subject folder, or a label BIDS does not allow, is not a subject."""
    shutil.copytree(skeleton / "sub-01", skeleton / "sub-01 copy")
    shutil.copytree(skeleton / "sub-02", skeleton / "sub-02é")
    (skeleton / "sub-03").mkdir()  # a stray folder without data: skipped with a warning
    plan = discover(skeleton)
    assert [s.subject for s in plan.subjects] == ["01", "02"]
    assert "'sub-01 copy', 'sub-02é'" in caplog.text and "ignored" in caplog.text
    assert "sub-03 has no MEG run" in caplog.text
    # the copy's files (named sub-01_...) do not join sub-01's runs
    assert len(plan.subjects[0].pairs) == 2
    assert len(discover(skeleton, participant_label=["01"]).subjects[0].pairs) == 2


@pytest.mark.parametrize("name", ["sub-01_acq-a;b$c_T1w.nii.gz", "sub-01_acq-a b_T1w.nii.gz",
                                  "sub-01_acq-é_T1w.nii.gz"])
def test_file_names_bids_does_not_allow_are_refused(skeleton, name):
    """19.4: such a name reached recon-all's command line; it is refused (exit 16)."""
    t1w = skeleton / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    t1w.rename(t1w.with_name(name))
    with pytest.raises(InvalidBIDSError, match="BIDS does not allow") as err:
        discover(skeleton)
    assert f"sub-01/anat/{name}" in err.value.message


def test_filter_matching_nothing_is_a_selection_error(skeleton):
    """19.11: a filter file that matches no BOLD file is exit 18 (was 65), naming the query."""
    with pytest.raises(NoMatchError, match='"bold": {"session": "nope"}'):
        discover(skeleton, bids_filters={"bold": {"session": "nope"}})
    with pytest.raises(NoMatchError, match='"t1w"'):
        discover(skeleton, bids_filters={"t1w": {"acquisition": "mprage"}})


@pytest.mark.parametrize("labels", [["sub-"], [""], ["01", "  "]])
def test_empty_labels_are_refused(labels):
    """19.11: '--participant-label sub-' selected every subject."""
    with pytest.raises(UsageError, match="Empty sub label"):
        normalize_labels(labels, "sub")
