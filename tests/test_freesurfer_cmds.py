"""Command lines of the FreeSurfer steps (FreeSurfer itself is not run here)."""

from __future__ import annotations

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
