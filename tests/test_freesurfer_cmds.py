"""Command lines of the FreeSurfer steps (FreeSurfer itself is not run here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bids_app.interfaces.freesurfer import WatershedBEM, init_recon_all_node, init_watershed_node


def test_recon_all_command_line(tmp_path):
    t1w = tmp_path / "sub-01_T1w.nii.gz"
    t1w.write_bytes(b"\x00")
    node = init_recon_all_node(subject_id="sub-01", t1w=t1w, subjects_dir=tmp_path / "fs",
                               omp_nthreads=4)
    cmd = node.interface.cmdline
    assert cmd.startswith("recon-all -all")
    for part in (f"-i {t1w}", "-subjid sub-01", f"-sd {tmp_path / 'fs'}", "-openmp 4",
                 "-parallel"):
        assert part in cmd, (part, cmd)
    assert node.n_procs == 4


def test_watershed_node_calls_mne(tmp_path):
    node = init_watershed_node(bem_subjects_dir=tmp_path / "bem", bem_subject="sub-01")
    assert isinstance(node.interface, WatershedBEM)
    assert node.inputs.overwrite is False


# -- FreeSurfer outputs go to the output folder, never into an input (issue 20.2) -----------------
@pytest.fixture
def fake_watershed(monkeypatch):
    """mne.bem.make_watershed_bem replaced by a stand-in that writes what it writes (the
    surfaces in <subject>/bem, the watershed folder) and counts its calls."""
    import mne.bem

    calls = []

    def watershed(subject, subjects_dir, overwrite=False, verbose=None):
        subject_dir = Path(subjects_dir) / subject
        assert (subject_dir / "mri" / "T1.mgz").is_file()  # it reads the reconstruction's MRI
        bem = subject_dir / "bem"
        (bem / "watershed").mkdir(parents=True)
        for surf in ("inner_skull", "outer_skull", "outer_skin"):
            (bem / "watershed" / f"{subject}_{surf}_surface").write_text(surf)
            (bem / f"{surf}.surf").write_text(surf)
        calls.append((subject, subjects_dir))

    monkeypatch.setattr(mne.bem, "make_watershed_bem", watershed)  # what the interface calls
    return calls


def test_watershed_writes_under_the_output_folder(tmp_path, fake_watershed):
    """The watershed of a reconstruction from an input folder (often mounted read-only) is
    made in a stand-in subject and its surfaces moved to <out>/sourcedata/bem/sub-<label>/bem;
    the input folder is unchanged, and the next run reuses the surfaces."""
    from skeleton import fingerprint

    from bids_app.io.bids import app_bem_dir

    fs = tmp_path / "bids" / "derivatives" / "freesurfer"
    (fs / "sub-01" / "mri").mkdir(parents=True)
    (fs / "sub-01" / "mri" / "T1.mgz").write_bytes(b"T1")
    (fs / "sub-01" / "bem").mkdir()
    before = fingerprint(fs)
    out = tmp_path / "out"
    for attempt in (1, 2):
        node_dir = tmp_path / f"node{attempt}"
        node_dir.mkdir()
        result = WatershedBEM(subjects_dir=str(fs), subject_id="sub-01",
                              bem_subjects_dir=str(app_bem_dir(out)),
                              bem_subject="sub-01").run(cwd=str(node_dir))
        assert result.outputs.subjects_dir == str(out / "sourcedata" / "bem")
        assert result.outputs.subject_id == "sub-01"
    assert len(fake_watershed) == 1, "the surfaces of the first run were not reused"
    bem = out / "sourcedata" / "bem" / "sub-01" / "bem"
    assert (bem / "inner_skull.surf").read_text() == "inner_skull"
    assert (bem / "watershed" / "sub-01_inner_skull_surface").is_file()
    assert not list(bem.parent.glob(".bem.*")), "partial folder left behind"
    assert fingerprint(fs) == before and sorted(p.name for p in (fs / "sub-01").iterdir()) == [
        "bem", "mri"]


def test_watershed_reads_existing_surfaces_in_place(tmp_path, fake_watershed):
    fs = tmp_path / "fs"
    (fs / "sub-01" / "bem").mkdir(parents=True)
    (fs / "sub-01" / "bem" / "inner_skull.surf").write_text("x")
    result = WatershedBEM(subjects_dir=str(fs), subject_id="sub-01",
                          bem_subjects_dir=str(tmp_path / "out"), bem_subject="sub-01"
                          ).run(cwd=str(tmp_path))
    assert (result.outputs.subjects_dir, fake_watershed) == (str(fs), [])


def test_recon_all_and_bem_write_into_the_output_folder(skeleton, tmp_path, monkeypatch):
    """recon-all writes to <out>/sourcedata/freesurfer (kept when the work folder is removed,
    as fMRIPrep does), the watershed to <out>/sourcedata/bem."""
    from bids_app.cli.participant import plan_from_config
    from bids_app.cli.run import build_config
    from bids_app.workflows import base

    monkeypatch.setattr(base, "freesurfer_available", lambda: True)
    out = tmp_path / "out"
    config = build_config([str(skeleton), str(out), "participant", "-w", str(tmp_path / "work"),
                           "--skip-bids-validation", "--participant-label", "01"])
    workflow = base.init_participant_wf_from_config(config, plan_from_config(config))
    recon = workflow.get_node("sub_01_wf.anat_wf.recon_all")
    assert recon.inputs.subjects_dir == str(out / "sourcedata" / "freesurfer")
    watershed = workflow.get_node("sub_01_wf.anat_wf.watershed_bem")
    assert watershed.inputs.bem_subjects_dir == str(out / "sourcedata" / "bem")
    assert watershed.inputs.bem_subject == "sub-01"


def test_finished_reconstruction_in_the_output_folder_is_reused(skeleton, tmp_path):
    """A later run finds the reconstruction an earlier run made (mode freesurfer, no second
    recon-all); one that recon-all had only begun (folders, no surfaces) is not taken."""
    from bids_app.io.bids import RECONSTRUCTION_FILES, discover

    out = tmp_path / "out"
    subject_dir = out / "sourcedata" / "freesurfer" / "sub-01"
    for folder in ("mri", "surf", "label", "scripts"):
        (subject_dir / folder).mkdir(parents=True)
    plan = discover(skeleton, output_dir=out)
    assert plan.subjects[0].fs_subjects_dir is None
    assert out / "sourcedata" / "freesurfer" in plan.freesurfer_roots
    for name in RECONSTRUCTION_FILES:
        (subject_dir / name).write_bytes(b"x")
    plan = discover(skeleton, output_dir=out)
    first = plan.subjects[0]
    assert (first.fs_subjects_dir, first.fs_subject) == (out / "sourcedata" / "freesurfer",
                                                          "sub-01")
    assert plan.subjects[1].fs_subjects_dir is None


# -- paths with spaces and shell characters reach FreeSurfer intact (issue 19.4) -----------------
#: A folder name a user may have: a space, ';', '$', quotes and a backquote.
ODD = "my data; $HOME 'x' \"y\" `z`"


@pytest.fixture
def recorded_args(tmp_path, monkeypatch):
    """Stand-in FreeSurfer executables on PATH that record the arguments they receive."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "args.txt"
    for tool in ("recon-all", "bbregister", "mri_vol2surf"):
        exe = bin_dir / tool
        exe.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def run(cmdline: str, cwd: Path) -> list[str]:
        # as nipype runs a command line: through the shell, in the node's folder
        subprocess.run(cmdline, shell=True, check=True, cwd=cwd)
        return record.read_text().splitlines()

    return run


def _odd_folder(tmp_path: Path) -> Path:
    folder = tmp_path / ODD
    folder.mkdir()
    return folder


def test_recon_all_gets_odd_paths_intact(tmp_path, recorded_args):
    folder = _odd_folder(tmp_path)
    t1w = folder / "sub-01_T1w.nii.gz"
    t1w.write_bytes(b"\x00")
    node = init_recon_all_node(subject_id="sub-01", t1w=t1w, subjects_dir=folder / "fs")
    args = recorded_args(node.interface.cmdline, folder)
    assert args[args.index("-i") + 1] == str(t1w)
    assert args[args.index("-sd") + 1] == str(folder / "fs")


def test_bbregister_and_vol2surf_get_odd_paths_intact(tmp_path, recorded_args, skeleton,
                                                      monkeypatch):
    """Inputs in a folder with odd characters, and outputs generated in the node's folder,
    itself such a folder (a work folder under 'my data; ...')."""
    from bids_app.blocks import DesignOptions
    from bids_app.fmri.options import BlockOptions, RegistrationOptions
    from bids_app.io.bids import discover
    from bids_app.workflows.fmri import init_fmri_run_wf

    folder = _odd_folder(tmp_path)
    monkeypatch.chdir(folder)
    mean, bold, reg = (folder / name for name in ("mean.nii.gz", "bold.nii.gz", "register.dat"))
    for path in (mean, bold, reg):
        path.write_bytes(b"\x00")
    pair = discover(skeleton).subjects[0].pairs[0]
    wf = init_fmri_run_wf(pair=pair, output_dir=tmp_path / "out", design=DesignOptions(["a"]),
                          blocks=BlockOptions(), registration=RegistrationOptions(),
                          route="freesurfer")
    bbregister = wf.get_node("bbregister").interface
    bbregister.inputs.trait_set(subjects_dir=str(folder), subject_id="sub-01",
                                source_file=str(mean))
    args = recorded_args(bbregister.cmdline, folder)
    assert args[args.index("--mov") + 1] == str(mean)
    assert args[args.index("--o") + 1] == "mean_bbreg.nii.gz"  # in the node's folder
    vol2surf = wf.get_node("vol2surf").interface
    vol2surf.inputs.trait_set(subjects_dir=str(folder), subject_id="sub-01", hemi="lh",
                              source_file=str(bold), reg_file=str(reg))
    args = recorded_args(vol2surf.cmdline, folder)
    assert args[args.index("--mov") + 1] == str(bold)
    assert args[args.index("--reg") + 1] == str(reg)
    assert args[args.index("--o") + 1] == str(folder / "lh.bold.mgz")
