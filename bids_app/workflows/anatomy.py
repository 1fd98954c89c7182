"""The anatomy of one subject: surfaces, parcels, grids and head model (DESIGN 4.1)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_app.errors import MissingInputError
from bids_app.interfaces.anatomy import (
    AnatomyQC,
    HeadModel,
    HeadMRITrans,
    Parcellate,
    TemplateImage,
    TemplateSubject,
    TemplateToT1w,
)
from bids_app.io.atlases import AtlasChoice
from bids_app.io.bids import SubjectPlan, app_bem_dir, app_freesurfer_dir
from bids_app.meg.options import HeadModelOptions
from bids_app.options import as_dict
from bids_app.parcels.options import ParcellationOptions

OUTPUT_FIELDS = ("subjects_dir", "subject_id", "parcellation", "fmri_grid", "t1w", "src", "bem",
                 "trans", "atlas_label", "report_data")


def init_anat_wf(
    *,
    subject: SubjectPlan,
    mode: str,
    output_dir: Path,
    work_dir: Path,
    atlas: AtlasChoice,
    parcellation: ParcellationOptions,
    head_model: HeadModelOptions,
    parcellation_table: Path | None = None,
    freesurfer_installed: bool = False,
    seed: int | None = None,
    omp_nthreads: int = 1,
    name: str = "anat_wf",
) -> pe.Workflow:
    """Surfaces, parcellation, analysis grids and MEG head model of one subject.

    Parameters
    ----------
    subject : SubjectPlan
        The subject's inputs (T1w, FreeSurfer reconstruction, MEG runs).
    mode : {"freesurfer", "recon-all", "template"}
        Existing reconstruction, one made here with ``recon-all``, or the fsaverage template.
    output_dir, work_dir : Path
        Derivatives root (``atlas-<name>_dseg.tsv``; ``recon-all`` writes into
        ``sourcedata/freesurfer`` and the watershed BEM surfaces go to ``sourcedata/bem``) and
        the work folder (template subject, cached BEM solutions).
    atlas : AtlasChoice
        The atlas name and its two files, found before the run
        (:func:`bids_app.io.atlases.resolve_atlas`); no files: the data-driven fallback parcels.
    parcellation : ParcellationOptions
        The split into parcels and the ``icoN`` grids of the MEG source space and of the fMRI
        sampling (see :func:`bids_app.io.anatomy.make_parcellation`).
    head_model : HeadModelOptions
        Single-layer BEM settings.
    parcellation_table : Path or None
        An edited ``atlas-<name>_dseg.tsv`` fixing the split and the included parcels.
    freesurfer_installed : bool
        Whether FreeSurfer tools may run (watershed BEM when no surface exists; the input
        FreeSurfer folder is never written to).

    Outputs
    -------
    subjects_dir, subject_id
        The FreeSurfer subject used.
    parcellation, fmri_grid, src
        ``parcellation.npz``, ``fmri_grid.npz`` and the MEG source space.
    t1w
        Image defining the surface coordinates (FreeSurfer ``T1.mgz``, or the BIDS T1w).
    bem, trans
        BEM solution file (or ``"sphere"``) and the head -> MRI transform.
    atlas_label
        The atlas entity of output names.
    report_data
        JSON summaries for the report.
    """
    workflow = pe.Workflow(name=name)
    outputnode = pe.Node(niu.IdentityInterface(fields=list(OUTPUT_FIELDS)), name="outputnode")
    template = pe.Node(TemplateSubject(templates_dir=str(Path(work_dir) / "templates")),
                       name="template_subject")
    parcellate = pe.Node(
        Parcellate(atlas=atlas.name, options=as_dict(parcellation),
                   output_dir=str(output_dir)),
        name="parcellate",
    )
    if atlas.files is not None:
        parcellate.inputs.atlas_files = [str(f) for f in atlas.files]
    if parcellation_table is not None:
        parcellate.inputs.parcellation_table = str(parcellation_table)
    headmodel = pe.Node(HeadModel(options=as_dict(head_model),
                                  cache_dir=str(Path(work_dir) / "headmodels"),
                                  num_threads=omp_nthreads),
                        name="headmodel", n_procs=omp_nthreads)
    trans = pe.Node(HeadMRITrans(meg_file=str(subject.pairs[0].meg),
                                 mode="fiducials" if mode == "template" else "landmarks"),
                    name="head_mri_trans")
    if subject.t1w is not None:
        trans.inputs.t1w = str(subject.t1w)
    if subject.trans is not None:
        trans.inputs.trans_file = str(subject.trans)
    anatomy_qc = pe.Node(AnatomyQC(meg_file=str(subject.pairs[0].meg)), name="anatomy_qc")
    reports = pe.Node(niu.Merge(5), name="merge_reports", run_without_submitting=True)

    # where the subject's surfaces come from
    source = pe.Node(niu.IdentityInterface(fields=["subjects_dir", "subject_id", "t1w"]),
                     name="fs_source")
    if mode == "freesurfer":
        workflow.__desc__ = _FS_DESC.format(what="were reconstructed with FreeSurfer [@freesurfer]"
                                            " beforehand")
        source.inputs.subjects_dir = str(subject.fs_subjects_dir)
        source.inputs.subject_id = subject.fs_subject
        source.inputs.t1w = _fs_t1(subject.fs_subjects_dir / subject.fs_subject, subject.t1w)
    elif mode == "recon-all":
        from bids_app.interfaces.freesurfer import init_recon_all_node

        workflow.__desc__ = _FS_DESC.format(what="were reconstructed from the T1w image with "
                                            "FreeSurfer recon-all [@freesurfer]")
        recon = init_recon_all_node(subject_id=f"sub-{subject.subject}", t1w=subject.t1w,
                                    subjects_dir=app_freesurfer_dir(output_dir),
                                    omp_nthreads=omp_nthreads)
        workflow.connect([
            (recon, source, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id"),
                             ("T1", "t1w")]),
        ])
    elif mode == "template" and subject.t1w is None:
        # no T1w: the analysis happens in the template's own (MNI) space; the fMRI branch
        # registers the mean EPI to the template image with an affine transform
        workflow.__desc__ = _TEMPLATE_NO_T1W_DESC
        reference = pe.Node(TemplateImage(), name="template_image")
        workflow.connect([
            (template, source, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")]),
            (reference, source, [("out_file", "t1w")]),
            (reference, parcellate, [("grid_affine", "grid_affine")]),
        ])
    elif mode == "template":
        workflow.__desc__ = _TEMPLATE_DESC
        to_t1w = pe.Node(TemplateToT1w(t1w=str(subject.t1w), num_threads=omp_nthreads),
                         name="template_to_t1w", n_procs=omp_nthreads)
        if seed is not None:
            to_t1w.inputs.seed = seed
        source.inputs.t1w = str(subject.t1w)
        workflow.connect([
            (template, source, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")]),
            (to_t1w, parcellate, [("grid_affine", "grid_affine")]),
        ])
    else:
        raise ValueError(f"Invalid anatomy mode '{mode}': allowed are freesurfer, recon-all, "
                         "template.")

    if mode != "template" and freesurfer_installed:
        from bids_app.interfaces.freesurfer import init_watershed_node

        watershed = init_watershed_node(bem_subjects_dir=app_bem_dir(output_dir),
                                        bem_subject=f"sub-{subject.subject}", overwrite=False)
        workflow.connect([
            (source, watershed, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")]),
            (watershed, headmodel, [("subjects_dir", "subjects_dir"),
                                    ("subject_id", "subject_id")]),
            (watershed, anatomy_qc, [("subjects_dir", "subjects_dir"),
                                     ("subject_id", "subject_id")]),
        ])
    else:
        for node in (headmodel, anatomy_qc):
            workflow.connect(source, "subjects_dir", node, "subjects_dir")
            workflow.connect(source, "subject_id", node, "subject_id")
    workflow.__postdesc__ = _PARCEL_DESC.format(
        meg_grid=parcellation.meg_grid, fmri_grid=parcellation.fmri_grid,
        n=parcellation.n_included_per_hemi, ico=head_model.bem_ico,
        sigma=head_model.bem_conductivity)
    workflow.connect([
        (template, parcellate, [("template_dir", "template_dir")]),
        (source, parcellate, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")]),
        (source, trans, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")]),
        (source, outputnode, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id"),
                              ("t1w", "t1w")]),
        (parcellate, outputnode, [("parcellation", "parcellation"), ("fmri_grid", "fmri_grid"),
                                  ("src", "src"), ("atlas_label", "atlas_label")]),
        (headmodel, outputnode, [("bem", "bem")]),
        (trans, outputnode, [("trans", "trans")]),
        (parcellate, reports, [("report", "in1")]),
        (headmodel, reports, [("report", "in2")]),
        (trans, reports, [("report", "in3")]),
        (headmodel, anatomy_qc, [("inner_skull", "inner_skull")]),
        (trans, anatomy_qc, [("trans", "trans"), ("template_fit", "template_fit")]),
        (parcellate, anatomy_qc, [("src", "src")]),
        (anatomy_qc, reports, [("report", "in5")]),
        (reports, outputnode, [("out", "report_data")]),
    ])
    if mode == "template" and subject.t1w is not None:
        workflow.connect(to_t1w, "report", reports, "in4")
    return workflow


def _fs_t1(subject_dir: Path, bids_t1w: Path | None) -> str:
    """The image defining a FreeSurfer subject's surface coordinates."""
    for name in ("T1.mgz", "orig.mgz"):
        candidate = subject_dir / "mri" / name
        if candidate.is_file() and candidate.stat().st_size > 0:
            return str(candidate)
    if bids_t1w is None:
        raise MissingInputError(
            f"{subject_dir / 'mri'} has no T1.mgz or orig.mgz and the subject has no BIDS T1w: "
            "the surface coordinates cannot be placed in the scanner space."
        )
    return str(bids_t1w)


_FS_DESC = (
    "The cortical surfaces of each participant {what}."
)
_TEMPLATE_DESC = (
    "No reconstruction of the participant's anatomy was available, so the fsaverage template "
    "[@freesurfer] stood in for it: the T1w image was registered to the MNI152 template with an "
    "affine transform (ANTs [@ants]) to place the template surfaces in the participant's space, "
    "and the template fiducials were fitted to the digitised ones for MEG. Source locations and "
    "parcels are therefore approximate."
)
_TEMPLATE_NO_T1W_DESC = (
    "No reconstruction of the participant's anatomy and no T1-weighted image were available, "
    "so the fsaverage template [@freesurfer] stood in for the participant's anatomy in MNI "
    "space [@mni152]: each mean BOLD image was registered to the MNI152 template image with "
    "an affine transform (ANTs [@ants]), and the template fiducials were fitted to the "
    "digitised ones for MEG. Source locations and parcels are therefore approximate."
)
_PARCEL_DESC = (
    "Both modalities were analysed on the same cortical parcels: atlas labels on fsaverage were "
    "split into compact parts with MNE-Python's PCA split [@mne] until {n} parcels per "
    "hemisphere remained after excluding regions prone to artefacts or signal loss (anterior "
    "frontal, deep medial, inferior temporal and the medial wall). The MEG source grid "
    "({meg_grid}) and the fMRI sampling grid ({fmri_grid}) were defined on fsaverage and carried "
    "to each participant through the spherical registration, so that grid point k is the same "
    "fsaverage location in every participant. The MEG forward model used a single-layer boundary "
    "element model of the inner skull (ico-{ico} surface, conductivity {sigma} S/m)."
)
