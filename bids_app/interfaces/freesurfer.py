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


class _ReconAllInputSpec(fs.preprocess.ReconAllInputSpec):
    # nipype hashes the threads of recon-all: a resume with another --omp-nthreads would
    # redo the reconstruction (hours)
    openmp = traits.Int(argstr="-openmp %d", nohash=True,
                        desc="threads of recon-all's OpenMP steps (not hashed)")


class ReconAll(QuotedPaths, fs.ReconAll):
    """``recon-all`` with quoted paths; its thread count is not part of the node's hash."""

    input_spec = _ReconAllInputSpec


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
    subjects_dir = traits.Str(mandatory=True, desc="SUBJECTS_DIR of the reconstruction (read)")
    subject_id = traits.Str(mandatory=True, desc="FreeSurfer subject")
    bem_subjects_dir = traits.Str(mandatory=True,
                                  desc="where new BEM surfaces go (<output_dir>/sourcedata/bem)")
    bem_subject = traits.Str(mandatory=True, desc="subject folder name there (sub-<label>)")
    overwrite = traits.Bool(False, usedefault=True, desc="recompute existing surfaces")


class _WatershedOutputSpec(TraitedSpec):
    subjects_dir = traits.Str(desc="SUBJECTS_DIR whose <subject_id>/bem holds the surfaces")
    subject_id = traits.Str(desc="subject folder name in subjects_dir")


class WatershedBEM(SimpleInterface):
    """BEM surfaces with FreeSurfer's watershed (:func:`mne.bem.make_watershed_bem`), unless
    the subject already has an inner-skull surface.

    The reconstruction is only read: the watershed runs on a stand-in subject in the node's
    folder (its ``mri`` a link to the reconstruction's), and the finished ``bem`` folder is moved
    into ``<bem_subjects_dir>/<bem_subject>/bem`` in one rename, where later runs find it.
    The outputs name the folder whose ``<subject_id>/bem`` the head model reads.
    """

    input_spec = _WatershedInputSpec
    output_spec = _WatershedOutputSpec

    def _run_interface(self, runtime):
        import shutil

        import mne.bem  # a submodule: MNE 1.8 does not load it lazily as mne.bem

        from bids_app.meg.headmodel import inner_skull_path

        source = (self.inputs.subjects_dir, self.inputs.subject_id)
        made = (self.inputs.bem_subjects_dir, self.inputs.bem_subject)
        if not self.inputs.overwrite:
            for folder, subject in (source, made):
                if inner_skull_path(subject, folder) is not None:
                    self._results.update(subjects_dir=folder, subject_id=subject)
                    return runtime
        stand_in = Path(runtime.cwd) / "watershed_subjects"
        shutil.rmtree(stand_in, ignore_errors=True)
        subject_dir = stand_in / self.inputs.bem_subject
        subject_dir.mkdir(parents=True)
        (subject_dir / "mri").symlink_to(Path(self.inputs.subjects_dir, self.inputs.subject_id,
                                              "mri").absolute())
        mne.bem.make_watershed_bem(self.inputs.bem_subject, str(stand_in), overwrite=True,
                                   verbose="error")
        target = Path(self.inputs.bem_subjects_dir) / self.inputs.bem_subject / "bem"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".bem.{os.getpid()}.part")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(subject_dir / "bem", partial, symlinks=False)
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
        self._results.update(subjects_dir=str(self.inputs.bem_subjects_dir),
                             subject_id=self.inputs.bem_subject)
        return runtime


def init_watershed_node(*, bem_subjects_dir: Path, bem_subject: str, overwrite: bool = False,
                        name: str = "watershed_bem") -> pe.Node:
    """A node creating the watershed BEM surfaces, when the subject has none, under
    ``bem_subjects_dir`` (:func:`bids_app.io.bids.app_bem_dir`)."""
    return pe.Node(WatershedBEM(bem_subjects_dir=str(bem_subjects_dir), bem_subject=bem_subject,
                                overwrite=overwrite), name=name)
