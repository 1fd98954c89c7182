"""FreeSurfer steps (run only when FreeSurfer is installed), with every path quoted.

Nipype runs a command line through a shell. It quotes a single path argument, but not the items
of a list of paths (``recon-all -i``) nor a file name an interface generates itself, so a dataset
or work folder whose path holds a space, ``;``, ``$`` or a quote would have its command line
split or run something else. The interfaces here quote every path (:class:`QuotedPaths`);
file names the app generates are plain relative names. FreeSurfer cannot run on every machine;
the command lines are tested in ``tests/test_freesurfer_cmds.py`` through a real shell with
stand-in executables.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from nipype.interfaces import freesurfer as fs
from nipype.interfaces.base import BaseInterfaceInputSpec, SimpleInterface, TraitedSpec, traits
from nipype.interfaces.base.traits_extension import BasePath
from nipype.pipeline import engine as pe


class QuotedPaths:
    """Mixin for nipype command-line interfaces: quote the items of path-list inputs.

    ``shlex.quote`` leaves an ordinary path unchanged, so the command line of a dataset without
    unusual characters is the same as nipype's.
    """

    def _format_arg(self, name, spec, value):
        inner = getattr(spec, "inner_traits", None) or ()
        if isinstance(value, (list, tuple)) and any(t.is_trait_type(BasePath) for t in inner):
            value = [shlex.quote(os.fspath(v)) for v in value]
        return super()._format_arg(name, spec, value)


class ReconAll(QuotedPaths, fs.ReconAll):
    """``recon-all`` with quoted paths."""


class BBRegister(QuotedPaths, fs.BBRegister):
    """``bbregister`` with quoted paths."""


class SampleToSurface(QuotedPaths, fs.SampleToSurface):
    """``mri_vol2surf`` with quoted paths."""


def init_recon_all_node(*, subject_id: str, t1w: Path, subjects_dir: Path,
                        omp_nthreads: int = 1, name: str = "recon_all") -> pe.Node:
    """``recon-all -all`` of the T1w into ``subjects_dir/subject_id`` (nipype ``ReconAll``)."""
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
