"""The participant-level graph: one sub-workflow per subject, one fMRI and one MEG branch per run.

::

    megfmri_participant_wf
      sub_<s>_wf                       init_single_subject_wf
        anat_wf                        surfaces, parcellation, grids, head model (anatomy.py)
        fmri_<task>_<run>_wf           BOLD -> parcel block values (fmri.py)
        meg_<task>_<run>_wf            raw -> tSSS -> epochs -> DICS parcel power (meg.py)
        report                         sub-<s>.html (reports)

Only this module and :func:`init_participant_wf_from_config` read the configuration; the
factories take keyword arguments and can be built and tested alone.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from bids_app.config import Config
from bids_app.errors import MissingInputError
from bids_app.io.atlases import AtlasChoice
from bids_app.io.bids import DatasetPlan, SubjectPlan, freesurfer_available

LOGGER = logging.getLogger(__name__)

#: Anatomy modes of a subject (see :func:`anatomy_mode`).
ANATOMY_MODES = ("freesurfer", "recon-all", "template")


def anatomy_mode(subject: SubjectPlan, *, freesurfer_installed: bool,
                 allow_template: bool) -> str:
    """How a subject's cortical surfaces are obtained.

    ``freesurfer``: an existing reconstruction was found; ``recon-all``: FreeSurfer is installed
    and will reconstruct the T1w; ``template``: fsaverage stands in for the subject's anatomy.

    Raises
    ------
    MissingInputError
        Neither a reconstruction, nor FreeSurfer with a T1w, and template anatomy not allowed.
    """
    if subject.fs_subjects_dir is not None:
        return "freesurfer"
    if freesurfer_installed and subject.t1w is not None:
        return "recon-all"
    if allow_template:
        return "template"
    raise MissingInputError(
        f"sub-{subject.subject} has no FreeSurfer reconstruction (searched --fs-subjects-dir, "
        "<bids_dir>/derivatives/freesurfer, <fmriprep_dir>/sourcedata/freesurfer) and FreeSurfer "
        "is not installed to make one. Provide --fs-subjects-dir, install FreeSurfer, or allow "
        "template anatomy (anatomy.allow_template_anatomy = true)."
    )


def freesurfer_reasons(plan: DatasetPlan, config: Config) -> list[str]:
    """What FreeSurfer will run for this plan (empty when it will not run).

    Raises
    ------
    MissingInputError
        FreeSurfer registration was requested but FreeSurfer is not installed, or a subject
        has no anatomy and template anatomy is not allowed (:func:`anatomy_mode`).
    """
    installed = freesurfer_available()
    uses_raw_bold = config.execution.fmriprep_dir is None
    for sub in plan.subjects:  # a subject without any anatomy fails here, before any work
        anatomy_mode(sub, freesurfer_installed=installed,
                     allow_template=config.anatomy.allow_template_anatomy)
    if not installed:
        if uses_raw_bold and config.fmri.registration == "bbregister":
            raise MissingInputError(
                "fmri.registration = 'bbregister' needs FreeSurfer, which is not installed "
                "(FREESURFER_HOME and recon-all on PATH). Use 'ants' or 'auto', or run in the "
                "container image."
            )
        return []
    reasons = []
    for sub in plan.subjects:
        mode = anatomy_mode(sub, freesurfer_installed=True,
                            allow_template=config.anatomy.allow_template_anatomy)
        if mode == "recon-all":
            reasons.append(f"recon-all for sub-{sub.subject}")
    if uses_raw_bold and config.fmri.registration in ("auto", "bbregister"):
        reasons.append("bbregister and mri_vol2surf for the BOLD runs")
    return reasons


# --------------------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------------------
def init_participant_wf(
    *,
    plan: DatasetPlan,
    output_dir: Path,
    work_dir: Path,
    anatomy_modes: dict[str, str],
    anat_options: dict[str, Any],
    fmri_options: dict[str, Any],
    meg_options: dict[str, Any],
    report_options: dict[str, Any],
    name: str = "megfmri_participant_wf",
):
    """The participant-level workflow of every subject in ``plan``.

    Parameters
    ----------
    plan : DatasetPlan
        Subjects with their paired runs (:func:`bids_app.io.bids.discover`).
    output_dir, work_dir : Path
        Derivatives root and nipype working folder (cache).
    anatomy_modes : dict
        Subject label -> one of :data:`ANATOMY_MODES`.
    anat_options, fmri_options, meg_options, report_options : dict
        Keyword arguments of the stage factories (:func:`init_anat_wf`, :func:`init_fmri_run_wf`,
        :func:`init_meg_run_wf`, the report node).

    Returns
    -------
    workflow : nipype Workflow
        With one ``sub_<label>_wf`` per subject.
    """
    from nipype.pipeline import engine as pe

    workflow = pe.Workflow(name=name, base_dir=str(work_dir))
    workflow.__desc__ = _INTRO
    for subject in plan.subjects:
        workflow.add_nodes([
            init_single_subject_wf(
                subject=subject,
                bids_dir=plan.bids_dir,
                output_dir=output_dir,
                anatomy_mode=anatomy_modes[subject.subject],
                anat_options=anat_options,
                fmri_options=fmri_options,
                meg_options=meg_options,
                report_options=report_options,
            )
        ])
    return workflow


def init_single_subject_wf(
    *,
    subject: SubjectPlan,
    bids_dir: Path,
    output_dir: Path,
    anatomy_mode: str,
    anat_options: dict[str, Any],
    fmri_options: dict[str, Any],
    meg_options: dict[str, Any],
    report_options: dict[str, Any],
    name: str | None = None,
):
    """The workflow of one subject: anatomy, then an fMRI and a MEG branch per run pair.

    Inputs and outputs are wired internally; every result is written to ``output_dir`` by the
    sinks of :mod:`bids_app.workflows.outputs`, and the subject's report is written last.
    """
    from nipype.pipeline import engine as pe

    from bids_app.workflows.anatomy import init_anat_wf
    from bids_app.workflows.fmri import ANAT_FIELDS as FMRI_FIELDS
    from bids_app.workflows.fmri import init_fmri_run_wf
    from bids_app.workflows.meg import ANAT_FIELDS as MEG_FIELDS
    from bids_app.workflows.meg import init_meg_run_wf
    from bids_app.workflows.report import init_participant_report_node

    from nipype.interfaces import utility as niu

    workflow = pe.Workflow(name=name or f"sub_{subject.subject}_wf")
    anat_wf = init_anat_wf(subject=subject, mode=anatomy_mode, output_dir=output_dir,
                           **anat_options)
    report = init_participant_report_node(subject=subject, bids_dir=bids_dir,
                                          output_dir=output_dir, anatomy_mode=anatomy_mode,
                                          **report_options)
    # one list of summaries per branch (fMRI, MEG of each run), kept apart for the report
    run_reports = pe.Node(niu.Merge(2 * len(subject.pairs), no_flatten=True),
                          name="merge_run_reports", run_without_submitting=True)
    workflow.connect([
        (anat_wf, report, [("outputnode.report_data", "anat_report")]),
        (run_reports, report, [("out", "run_reports")]),
    ])
    if anatomy_mode == "template" and subject.t1w is None:
        # the MNI152 image stands in for the T1w: another head, not in the scanner's space
        fmri_options = {**fmri_options, "registration": "ants",
                        "coregistration_init": "center-of-mass",
                        "coregistration_transform": "affine"}
    for i, pair in enumerate(subject.pairs):
        tag = _safe(pair.label)
        fmri_wf = init_fmri_run_wf(pair=pair, output_dir=output_dir, name=f"fmri_{tag}_wf",
                                   **fmri_options)
        meg_wf = init_meg_run_wf(pair=pair, subject=subject, output_dir=output_dir,
                                 name=f"meg_{tag}_wf", **meg_options)
        workflow.connect([
            (anat_wf, fmri_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in FMRI_FIELDS]),
            (anat_wf, meg_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in MEG_FIELDS]),
            (fmri_wf, run_reports, [("outputnode.report_data", f"in{2 * i + 1}")]),
            (meg_wf, run_reports, [("outputnode.report_data", f"in{2 * i + 2}")]),
        ])
    return workflow


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def stage_options(config: Config, *, freesurfer_installed: bool,
                  atlas: AtlasChoice) -> dict[str, dict[str, Any]]:
    """The keyword arguments of each stage factory, taken from the configuration (and the
    atlas found for it, :func:`bids_app.io.atlases.resolve_atlas`)."""
    ex, an, fm, mg, wf = config.execution, config.anatomy, config.fmri, config.meg, config.workflow
    omp = config.nipype.omp_nthreads
    seed = config.seeds.random_seed
    use_bbregister = (freesurfer_installed and ex.fmriprep_dir is None
                      and fm.registration in ("auto", "bbregister"))
    return {
        "anat_options": {
            "work_dir": Path(ex.work_dir),
            "atlas": atlas.name,
            "atlas_files": atlas.files,
            "parcellation_table": an.parcellation_table,
            "n_included_per_hemi": an.n_included_per_hemi,
            "exclude_regions": list(an.exclude_regions),
            "meg_grid": an.meg_grid,
            "fmri_grid": an.fmri_grid,
            "bem_ico": an.bem_ico,
            "bem_conductivity": an.bem_conductivity,
            "freesurfer_installed": freesurfer_installed,
            "seed": seed,
            "omp_nthreads": omp,
        },
        "fmri_options": {
            "conditions": list(wf.conditions),
            "block_gap_s": wf.block_gap_s,
            "dummy_scans": fm.dummy_scans,
            "highpass_period_s": fm.highpass_period_s,
            "hrf_delay_s": fm.hrf_delay_s,
            "block_volumes": fm.block_volumes,
            "rest_volumes": fm.rest_volumes,
            "registration": "freesurfer" if use_bbregister else "ants",
            "coregistration_init": fm.coregistration_init,
            "projection_fraction": fm.projection_fraction,
            "seed": seed,
            "omp_nthreads": omp,
        },
        "meg_options": {
            "conditions": list(wf.conditions),
            "block_gap_s": wf.block_gap_s,
            "maxfilter": mg.maxfilter,
            "st_duration_s": mg.st_duration_s,
            "st_correlation": mg.st_correlation,
            "origin": mg.origin,
            "find_bad_channels": mg.find_bad_channels,
            "tmin_s": mg.tmin_s,
            "tmax_s": mg.tmax_s,
            "padding_s": mg.tfr_padding_s,
            "eog_reject_uv": mg.eog_reject_uv,
            "missing_eog": mg.missing_eog,
            "min_trials_per_block": mg.min_trials_per_block,
            "ch_type": mg.ch_type,
            "bands": {k: tuple(v) for k, v in mg.bands.items()},
            "freq_step_hz": mg.freq_step_hz,
            "n_cycles": mg.n_cycles,
            "window_starts_ms": config.window_starts_ms(),
            "window_length_ms": mg.window_length_ms,
            "baseline_ms": tuple(mg.baseline_ms),
            "dics_reg": mg.dics_reg,
            "pick_ori": mg.pick_ori,
            "baseline_scope": mg.baseline_scope,
            "cache_dir": Path(ex.work_dir) / "headmodels",
            "omp_nthreads": omp,
        },
        "report_options": {
            "conditions": list(wf.conditions),
            "bands": list(mg.bands),
        },
    }


def init_participant_wf_from_config(config: Config, plan: DatasetPlan):
    """Build the participant workflow for ``plan`` with the configured options."""
    installed = freesurfer_available()
    modes = {}
    for sub in plan.subjects:
        modes[sub.subject] = anatomy_mode(
            sub, freesurfer_installed=installed,
            allow_template=config.anatomy.allow_template_anatomy,
        )
        if modes[sub.subject] == "template":
            missing = ("no T1w image" if sub.t1w is None else "no FreeSurfer installation")
            message = (
                f"sub-{sub.subject}: no FreeSurfer reconstruction and {missing}: using the "
                "fsaverage TEMPLATE anatomy instead of the subject's own"
                + (", in MNI space (the BOLD runs are registered to the MNI152 template)"
                   if sub.t1w is None else "")
                + ". Source locations and parcels are approximate; provide --fs-subjects-dir "
                "for real results."
            )
            sub.warnings.append(message)
            LOGGER.warning(message)
    return init_participant_wf(
        plan=plan,
        output_dir=Path(config.execution.output_dir),
        work_dir=Path(config.execution.work_dir),
        anatomy_modes=modes,
        **stage_options(config, freesurfer_installed=installed, atlas=plan.atlas),
    )


# --------------------------------------------------------------------------------------------------
# Methods text
# --------------------------------------------------------------------------------------------------
_INTRO = (
    "Results were generated with *megfmri-fusion* {version}, a BIDS App [@bids; @megbids] built "
    "on Nipype {nipype_version} [@nipype], MNE-Python {mne_version} [@mne], MNE-BIDS [@mnebids] "
    "and PyBIDS [@pybids]."
)


def collect_descriptions(workflow) -> list[str]:
    """The ``__desc__``/``__postdesc__`` texts of ``workflow`` and its sub-workflows, in order,
    each text once (subjects repeat the same description)."""
    from nipype.pipeline.engine import Workflow

    texts: list[str] = []

    def visit(wf) -> None:
        for attr in ("__desc__",):
            text = getattr(wf, attr, None)
            if text and text not in texts:
                texts.append(text)
        for node in wf._graph.nodes():
            if isinstance(node, Workflow):
                visit(node)
        text = getattr(wf, "__postdesc__", None)
        if text and text not in texts:
            texts.append(text)

    visit(workflow)
    return texts


def render_boilerplate(workflow, title: str = "Methods") -> str:
    """The methods text in Markdown, with the references cited, numbered in order."""
    import mne
    import nipype

    from bids_app import __version__
    from bids_app.workflows.references import REFERENCES

    body = "\n\n".join(collect_descriptions(workflow)).format(
        version=__version__, nipype_version=nipype.__version__, mne_version=mne.__version__
    )
    order: list[str] = []

    def cite(match: re.Match) -> str:
        numbers = []
        for key in re.split(r";\s*", match.group(1)):
            key = key.strip().lstrip("@")
            if key not in REFERENCES:
                raise KeyError(f"unknown reference '{key}' in a workflow description")
            if key not in order:
                order.append(key)
            numbers.append(str(order.index(key) + 1))
        return "[" + ", ".join(numbers) + "]"

    body = re.sub(r"\[(@[^\]]+)\]", cite, body)
    refs = "\n".join(f"{i}. {REFERENCES[key]}" for i, key in enumerate(order, start=1))
    return (
        f"# {title}\n\n"
        "The text below was written by megfmri-fusion from the configuration of this run. It is "
        "released under the CC0 licence: copy it into your manuscript unchanged.\n\n"
        f"{body}\n\n## References\n\n{refs}\n"
    )


def write_boilerplate(workflow, logs_dir: Path, level: str = "participant") -> Path:
    """Write the methods text of ``level`` (:data:`CITATION_FILES`) into ``logs_dir``
    atomically."""
    from bids_app.io.derivatives import CITATION_FILES, atomic_write_text

    title = "Methods" if level == "participant" else "Methods: group level"
    return atomic_write_text(Path(logs_dir) / CITATION_FILES[level],
                             render_boilerplate(workflow, title))
