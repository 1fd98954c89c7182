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


def test_watershed_node_calls_mne():
    node = init_watershed_node()
    assert isinstance(node.interface, WatershedBEM)
    assert node.inputs.overwrite is False


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
    from bids_app.io.bids import discover
    from bids_app.workflows.fmri import init_fmri_run_wf

    folder = _odd_folder(tmp_path)
    monkeypatch.chdir(folder)
    mean, bold, reg = (folder / name for name in ("mean.nii.gz", "bold.nii.gz", "register.dat"))
    for path in (mean, bold, reg):
        path.write_bytes(b"\x00")
    pair = discover(skeleton).subjects[0].pairs[0]
    wf = init_fmri_run_wf(pair=pair, output_dir=tmp_path / "out", conditions=["a"],
                          registration="freesurfer")
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
