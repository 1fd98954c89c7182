"""The fMRI branch of one run: BOLD -> parcel block values (DESIGN 4.2)."""

from __future__ import annotations

from pathlib import Path
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_app.interfaces.derivatives import DerivativesSink
from bids_app.interfaces.fmri import (
    BlockValues,
    CoregisterBOLD,
    FsaverageParcels,
    RealignBOLD,
    RegisterDatToAffine,
    RegistrationQC,
    SampleParcels,
    SurfaceFileParcels,
)
from bids_app.design import DesignOptions
from bids_app.fmri.options import BlockOptions, RegistrationOptions
from bids_app.io.bids import RunPair
from bids_app.options import as_dict
from bids_app.workflows.resources import bold_data_gb, estimate_mem_gb

#: Fields every anatomy workflow provides to the fMRI branch.
ANAT_FIELDS = ("subjects_dir", "subject_id", "parcellation", "fmri_grid", "t1w", "atlas_label")


def init_fmri_run_wf(
    *,
    pair: RunPair,
    output_dir: Path,
    design: DesignOptions,
    blocks: BlockOptions,
    registration: RegistrationOptions,
    route: str = "ants",
    coregistration_transform: str = "rigid",
    seed: int | None = None,
    omp_nthreads: int = 1,
    name: str = "fmri_run_wf",
) -> pe.Workflow:
    """Parcel block values of one BOLD run.

    Parameters
    ----------
    pair : RunPair
        The run (its ``bold``, ``bold_events``, ``repetition_time``; ``fmriprep_bold`` selects
        the fMRIPrep route).
    output_dir : Path
        Derivatives root; the run's ``desc-blocks_bold.tsv`` is written there.
    design : DesignOptions
        Condition names and block detection (see :func:`bids_app.blocks.assign_blocks`).
    blocks : BlockOptions
        DESIGN 4.2 parameters (see :func:`bids_app.fmri.block_estimates`).
    registration : RegistrationOptions
        Where BOLD is sampled in the cortical ribbon and how the ANTs coregistration starts.
    route : {"ants", "freesurfer"}
        The registration the run uses (its ``registration`` option resolved for this machine):
        ``ants``: realign, rigid mutual-information coregistration and Python sampling;
        ``freesurfer``: ``bbregister`` and ``mri_vol2surf`` (FreeSurfer must be installed).
    coregistration_transform : {"rigid", "affine"}
        ANTs coregistration to the subject's T1w (rigid), or to the template image standing in
        for it when the subject has no T1w (affine).
    seed : int or None
        Seed of ANTs' random sampling.
    omp_nthreads : int
        Threads of the registration steps.

    Inputs
    ------
    subjects_dir, subject_id, parcellation, fmri_grid, t1w, atlas_label
        From the anatomy workflow.

    Outputs
    -------
    blocks
        Block values (TSV, in the work folder).
    out_file
        The derivative written to ``output_dir``.
    report_data
        List of JSON summaries for the participant report.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=list(ANAT_FIELDS)), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["blocks", "out_file", "report_data"]),
                         name="outputnode")
    dummy_scans, projection_fraction = blocks.dummy_scans, registration.projection_fraction
    block_values = pe.Node(
        BlockValues(events=str(pair.bold_events), tr=pair.repetition_time,
                    design=as_dict(design), options=as_dict(blocks)),
        name="block_values",
    )
    sink = pe.Node(
        DerivativesSink(base_directory=str(output_dir), source_file=str(pair.bold),
                        datatype="func", suffix="bold", desc="blocks",
                        description="fMRI block values per parcel: mean of the block's volumes "
                        "minus the mean of the preceding rest volumes, after high-pass "
                        "filtering; 'normalized' per run (DESIGN 4.2)."),
        name="ds_blocks", run_without_submitting=True,
    )
    route = "fmriprep" if pair.fmriprep_bold is not None else route
    route_settings = {"fmri_route": route}  # the steps before the block values ([fmri] names)
    if route != "fmriprep":
        route_settings["projection_fraction"] = projection_fraction
    if route == "ants":
        route_settings["coregistration_init"] = registration.coregistration_init
        route_settings["coregistration_transform"] = coregistration_transform
    sink.inputs.sidecar = route_settings
    n_reports = 2 if pair.fmriprep_bold else 5
    reports = pe.Node(niu.Merge(n_reports), name="merge_reports", run_without_submitting=True)

    if pair.fmriprep_bold is not None:
        workflow.__desc__ = _FMRIPREP_DESC
        parcels = pe.Node(FsaverageParcels(lh_file=str(pair.fmriprep_bold[0]),
                                           rh_file=str(pair.fmriprep_bold[1]),
                                           dummy_scans=dummy_scans), name="fsaverage_parcels")
        workflow.connect([
            (inputnode, parcels, [("parcellation", "parcellation")]),
            (parcels, block_values, [("out_file", "timeseries")]),
            (parcels, reports, [("report", "in1")]),
            (block_values, reports, [("report", "in2")]),
        ])
    else:
        realign = pe.Node(RealignBOLD(in_file=str(pair.bold), dummy_scans=dummy_scans,
                                      num_threads=omp_nthreads), name="realign",
                          n_procs=omp_nthreads,
                          mem_gb=estimate_mem_gb("realign", bold_data_gb(pair.bold)))
        if seed is not None:
            realign.inputs.seed = seed
        registration_qc = pe.Node(RegistrationQC(run=pair.label), name="registration_qc")
        workflow.connect([
            (realign, reports, [("report", "in1")]),
            (block_values, reports, [("report", "in5")]),
            (inputnode, registration_qc, [("t1w", "t1w"), ("subjects_dir", "subjects_dir"),
                                          ("subject_id", "subject_id"),
                                          ("fmri_grid", "fmri_grid")]),
            (realign, registration_qc, [("mean_file", "mean_file")]),
            (registration_qc, reports, [("report", "in3")]),
        ])
        if route == "freesurfer":
            workflow.__desc__ = _FREESURFER_DESC.format(projfrac=projection_fraction)
            to_affine = _connect_freesurfer(workflow, inputnode, realign, block_values, reports,
                                            projection_fraction, omp_nthreads)
            workflow.connect(to_affine, "affine_file", registration_qc, "affine_file")
        else:
            workflow.__desc__ = _ANTS_DESC.format(
                projfrac=projection_fraction, **_COREGISTRATION_TEXT[coregistration_transform])
            coreg = pe.Node(CoregisterBOLD(coregistration_init=registration.coregistration_init,
                                           transform=coregistration_transform,
                                           num_threads=omp_nthreads),
                            name="coregister", n_procs=omp_nthreads)
            if seed is not None:
                coreg.inputs.seed = seed
            sample = pe.Node(SampleParcels(projection_fraction=projection_fraction),
                             name="sample_parcels")
            workflow.connect([
                (inputnode, coreg, [("t1w", "t1w")]),
                (realign, coreg, [("mean_file", "mean_file")]),
                (inputnode, sample, [("t1w", "t1w"), ("fmri_grid", "fmri_grid"),
                                     ("parcellation", "parcellation")]),
                (realign, sample, [("out_file", "in_file")]),
                (coreg, sample, [("affine_file", "affine_file")]),
                (coreg, registration_qc, [("affine_file", "affine_file")]),
                (sample, block_values, [("out_file", "timeseries")]),
                (coreg, reports, [("report", "in2")]),
                (sample, reports, [("report", "in4")]),
            ])
    workflow.__postdesc__ = _BLOCKS_DESC.format(
        dummy=dummy_scans, period=blocks.highpass_period_s, delay=blocks.hrf_delay_s)
    workflow.connect([
        (inputnode, sink, [("atlas_label", "atlas")]),
        (block_values, sink, [("out_file", "in_file"), (("settings", _as_list), "settings")]),
        (block_values, outputnode, [("out_file", "blocks")]),
        (sink, outputnode, [("out_file", "out_file")]),
        (reports, outputnode, [("out", "report_data")]),
    ])
    return workflow


def _as_list(item):
    """One item as a one-element list (for a connection into a list input)."""
    return [item]


def _connect_freesurfer(workflow, inputnode, realign, blocks, reports, projfrac, omp_nthreads):
    """bbregister of the mean EPI, then mri_vol2surf of the run onto both hemispheres; returns
    the node giving the T1w -> EPI matrix."""
    from bids_app.interfaces.freesurfer import BBRegister, SampleToSurface

    # output names relative to the node's folder: nothing unquoted reaches the shell
    bbregister = pe.Node(BBRegister(contrast_type="t2", init="coreg", out_reg_file="register.dat",
                                    registered_file="mean_bbreg.nii.gz"),
                         name="bbregister", n_procs=omp_nthreads)
    to_affine = pe.Node(RegisterDatToAffine(), name="register_dat_to_affine")
    vol2surf = pe.MapNode(
        SampleToSurface(sampling_method="point", sampling_range=projfrac,
                        sampling_units="frac", interp_method="nearest", out_type="mgz",
                        cortex_mask=False),
        iterfield=["hemi"], name="vol2surf",
    )
    vol2surf.inputs.hemi = ["lh", "rh"]
    parcels = pe.Node(SurfaceFileParcels(), name="surface_parcels")
    workflow.connect([
        (inputnode, bbregister, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")]),
        (realign, bbregister, [("mean_file", "source_file")]),
        (bbregister, to_affine, [("out_reg_file", "register_dat"), ("min_cost_file", "min_cost")]),
        (inputnode, to_affine, [("t1w", "t1w")]),
        (realign, to_affine, [("mean_file", "epi")]),
        (inputnode, vol2surf, [("subjects_dir", "subjects_dir"), ("subject_id", "subject_id")]),
        (realign, vol2surf, [("out_file", "source_file")]),
        (bbregister, vol2surf, [("out_reg_file", "reg_file")]),
        (vol2surf, parcels, [("out_file", "surface_files")]),
        (inputnode, parcels, [("fmri_grid", "fmri_grid"), ("parcellation", "parcellation")]),
        (parcels, blocks, [("out_file", "timeseries")]),
        (to_affine, reports, [("report", "in2")]),
        (parcels, reports, [("report", "in4")]),
    ])
    return to_affine


_ANTS_DESC = (
    "For each BOLD run, the first dummy volumes were discarded and every remaining volume was "
    "realigned to the first one with a rigid transform estimated by SimpleITK [@simpleitk] "
    "(mean-squares metric, cubic B-spline resampling); framewise displacement was computed as in "
    "[@power2012]. The mean realigned volume "
    "was registered to {target} with {transform} transform maximising mutual "
    "information (ANTs [@ants]). Each vertex of the subject's ico-5 surface grid took the value "
    "of the BOLD voxel nearest to its position at {projfrac:g} of the cortical thickness, and "
    "vertices were averaged within each parcel."
)
_COREGISTRATION_TEXT = {
    "rigid": {"target": "the T1-weighted image", "transform": "a rigid"},
    "affine": {"target": "the MNI152 template image standing in for the participant's missing "
               "T1-weighted image [@mni152]", "transform": "an affine"},
}
_FREESURFER_DESC = (
    "For each BOLD run, the first dummy volumes were discarded and every remaining volume was "
    "realigned to the first one with SimpleITK [@simpleitk]. The mean realigned volume was "
    "registered to "
    "the subject's anatomy with boundary-based registration (FreeSurfer bbregister [@bbr; "
    "@freesurfer]); the run was sampled onto both cortical surfaces at {projfrac:g} of the "
    "cortical thickness with mri_vol2surf (nearest voxel), and the vertices of the ico-5 grid "
    "were averaged within each parcel."
)
_FMRIPREP_DESC = (
    "The BOLD runs preprocessed by fMRIPrep [@fmriprep] and resampled to fsaverage (GIFTI) were "
    "used; the "
    "first dummy volumes were discarded and the vertices of the ico-5 grid were averaged within "
    "each parcel."
)
_BLOCKS_DESC = (
    "Parcel time series were high-pass filtered with a discrete cosine basis (cut-off period "
    "{period:g} s, as in SPM [@spm]). For each block, its value was the mean of the block's "
    "volumes minus the mean of the preceding rest volumes, both shifted by {delay:g} s for the "
    "haemodynamic delay ({dummy} dummy volumes discarded first). Values were normalised per "
    "subject and run by subtracting their mean over all blocks of all conditions and dividing "
    "by the standard deviation of the run's filtered parcel time series."
)

