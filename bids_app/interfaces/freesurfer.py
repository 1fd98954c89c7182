"""FreeSurfer steps of the anatomy stage (run only when FreeSurfer is installed).

FreeSurfer cannot run on every machine; the command lines these nodes build are tested in
``tests/test_freesurfer_cmds.py`` without running them.
"""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import BaseInterfaceInputSpec, SimpleInterface, TraitedSpec, traits
from nipype.pipeline import engine as pe


def init_recon_all_node(*, subject_id: str, t1w: Path, subjects_dir: Path,
                        omp_nthreads: int = 1, name: str = "recon_all") -> pe.Node:
    """``recon-all -all`` of the T1w into ``subjects_dir/subject_id`` (nipype ``ReconAll``)."""
    from nipype.interfaces.freesurfer import ReconAll

    Path(subjects_dir).mkdir(parents=True, exist_ok=True)
    node = pe.Node(
        ReconAll(subject_id=subject_id, directive="all", T1_files=[str(t1w)],
                 subjects_dir=str(subjects_dir), openmp=omp_nthreads, parallel=True),
        name=name, n_procs=omp_nthreads, mem_gb=8.0,
    )
    return node


class _WatershedInputSpec(BaseInterfaceInputSpec):
    subjects_dir = traits.Str(mandatory=True, desc="SUBJECTS_DIR")
    subject_id = traits.Str(mandatory=True, desc="FreeSurfer subject")
    overwrite = traits.Bool(False, usedefault=True, desc="recompute existing surfaces")


class _WatershedOutputSpec(TraitedSpec):
    subjects_dir = traits.Str(desc="SUBJECTS_DIR (unchanged)")
    subject_id = traits.Str(desc="FreeSurfer subject (unchanged)")


class WatershedBEM(SimpleInterface):
    """BEM surfaces with FreeSurfer's watershed (:func:`mne.bem.make_watershed_bem`), unless
    the subject already has an inner-skull surface."""

    input_spec = _WatershedInputSpec
    output_spec = _WatershedOutputSpec

    def _run_interface(self, runtime):
        import mne

        from bids_app.meg.headmodel import inner_skull_path

        if self.inputs.overwrite or inner_skull_path(self.inputs.subject_id,
                                                     self.inputs.subjects_dir) is None:
            mne.bem.make_watershed_bem(self.inputs.subject_id, self.inputs.subjects_dir,
                                       overwrite=True, verbose="error")
        self._results.update(subjects_dir=self.inputs.subjects_dir,
                             subject_id=self.inputs.subject_id)
        return runtime


def init_watershed_node(*, overwrite: bool = False, name: str = "watershed_bem") -> pe.Node:
    """A node creating the watershed BEM surfaces when they are missing."""
    return pe.Node(WatershedBEM(overwrite=overwrite), name=name)
