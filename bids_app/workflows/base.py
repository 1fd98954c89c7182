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

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from bids_app.design import DesignOptions
from bids_app.config import Config
from bids_app.errors import MissingInputError
from bids_app.fmri.options import BlockOptions, RegistrationOptions
from bids_app.io.atlases import AtlasChoice
from bids_app.io.bids import DatasetPlan, SubjectPlan, freesurfer_available
from bids_app.meg.options import DICSOptions, EpochOptions, HeadModelOptions, MaxwellOptions
from bids_app.parcels.options import ParcellationOptions
from bids_app.workflows import workflow_name

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
@dataclass(frozen=True)
class ParticipantSteps:
    """The options object of every participant-level step, and what the run decided for them.

    Built once from the configuration (:meth:`from_config`); each stage factory takes the
    objects it needs (:func:`init_single_subject_wf`).
    """

    design: DesignOptions
    parcellation: ParcellationOptions
    head_model: HeadModelOptions
    blocks: BlockOptions
    registration: RegistrationOptions
    maxwell: MaxwellOptions
    epochs: EpochOptions
    dics: DICSOptions
    #: The atlas found for the run (:func:`bids_app.io.atlases.resolve_atlas`).
    atlas: AtlasChoice
    #: An edited ``atlas-<name>_dseg.tsv`` fixing the split (``[anatomy] parcellation_table``).
    parcellation_table: Path | None
    #: How raw BOLD reaches the surface here: "freesurfer" (bbregister) or "ants".
    fmri_route: str
    freesurfer_installed: bool
    work_dir: Path
    seed: int | None
    omp_nthreads: int

    @classmethod
    def from_config(cls, config: Config, *, freesurfer_installed: bool,
                    atlas: AtlasChoice) -> ParticipantSteps:
        """The steps' options from ``config``, with the atlas found for it."""
        ex = config.execution
        use_bbregister = (freesurfer_installed and ex.fmriprep_dir is None
                          and config.fmri.registration in ("auto", "bbregister"))
        steps = {name: config.options(kind) for name, kind in _STEP_TYPES.items()}
        return cls(**steps, atlas=atlas, parcellation_table=config.anatomy.parcellation_table,
                   fmri_route="freesurfer" if use_bbregister else "ants",
                   freesurfer_installed=freesurfer_installed, work_dir=Path(ex.work_dir),
                   seed=config.seeds.random_seed, omp_nthreads=config.nipype.omp_nthreads)


#: The fields of :class:`ParticipantSteps` that are processing steps' options objects.
_STEP_TYPES: dict[str, type] = {
    "design": DesignOptions, "parcellation": ParcellationOptions,
    "head_model": HeadModelOptions, "blocks": BlockOptions, "registration": RegistrationOptions,
    "maxwell": MaxwellOptions, "epochs": EpochOptions, "dics": DICSOptions,
}


def init_participant_wf(
    *,
    plan: DatasetPlan,
    output_dir: Path,
    anatomy_modes: dict[str, str],
    steps: ParticipantSteps,
    name: str | None = None,
):
    """The participant-level workflow of every subject in ``plan``.

    Parameters
    ----------
    plan : DatasetPlan
        Subjects with their paired runs (:func:`bids_app.io.bids.discover`).
    output_dir : Path
        Derivatives root.
    anatomy_modes : dict
        Subject label -> one of :data:`ANATOMY_MODES`.
    steps : ParticipantSteps
        The options of every step; ``steps.work_dir`` is nipype's working folder (cache).

    Returns
    -------
    workflow : nipype Workflow
        With one ``sub_<label>_wf`` per subject.
    """
    from nipype.pipeline import engine as pe

    workflow = pe.Workflow(name=name or workflow_name("participant"), base_dir=str(steps.work_dir))
    workflow.__desc__ = _INTRO
    for subject in plan.subjects:
        workflow.add_nodes([
            init_single_subject_wf(subject=subject, bids_dir=plan.bids_dir,
                                   output_dir=output_dir,
                                   anatomy_mode=anatomy_modes[subject.subject], steps=steps)
        ])
    return workflow


def init_single_subject_wf(
    *,
    subject: SubjectPlan,
    bids_dir: Path,
    output_dir: Path,
    anatomy_mode: str,
    steps: ParticipantSteps,
    name: str | None = None,
):
    """The workflow of one subject: anatomy, then an fMRI and a MEG branch per run pair.

    Inputs and outputs are wired internally; every result is written to ``output_dir`` by the
    sinks of :mod:`bids_app.workflows.outputs`, and the subject's report is written last.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from bids_app.workflows.anatomy import init_anat_wf
    from bids_app.workflows.fmri import ANAT_FIELDS as FMRI_FIELDS
    from bids_app.workflows.fmri import init_fmri_run_wf
    from bids_app.workflows.meg import ANAT_FIELDS as MEG_FIELDS
    from bids_app.workflows.meg import init_meg_run_wf
    from bids_app.workflows.report import init_participant_report_node

    workflow = pe.Workflow(name=name or f"sub_{subject.subject}_wf")
    anat_wf = init_anat_wf(subject=subject, mode=anatomy_mode, output_dir=output_dir,
                           work_dir=steps.work_dir, atlas=steps.atlas,
                           parcellation=steps.parcellation, head_model=steps.head_model,
                           parcellation_table=steps.parcellation_table,
                           freesurfer_installed=steps.freesurfer_installed, seed=steps.seed,
                           omp_nthreads=steps.omp_nthreads)
    report = init_participant_report_node(subject=subject, bids_dir=bids_dir,
                                          output_dir=output_dir, anatomy_mode=anatomy_mode,
                                          conditions=list(steps.design.conditions),
                                          bands=list(steps.dics.bands))
    # one list of summaries per branch (fMRI, MEG of each run), kept apart for the report
    run_reports = pe.Node(niu.Merge(2 * len(subject.pairs), no_flatten=True),
                          name="merge_run_reports", run_without_submitting=True)
    workflow.connect([
        (anat_wf, report, [("outputnode.report_data", "anat_report")]),
        (run_reports, report, [("out", "run_reports")]),
    ])
    route, registration, transform = steps.fmri_route, steps.registration, "rigid"
    if anatomy_mode == "template" and subject.t1w is None:
        # the MNI152 image stands in for the T1w: another head, not in the scanner's space
        route, transform = "ants", "affine"
        registration = dataclasses.replace(registration, coregistration_init="center-of-mass")
    for i, pair in enumerate(subject.pairs):
        tag = _safe(pair.label)
        fmri_wf = init_fmri_run_wf(pair=pair, output_dir=output_dir, design=steps.design,
                                   blocks=steps.blocks, registration=registration, route=route,
                                   coregistration_transform=transform, seed=steps.seed,
                                   omp_nthreads=steps.omp_nthreads, name=f"fmri_{tag}_wf")
        meg_wf = init_meg_run_wf(pair=pair, subject=subject, output_dir=output_dir,
                                 design=steps.design, maxwell=steps.maxwell,
                                 epochs=steps.epochs, dics=steps.dics,
                                 cache_dir=steps.work_dir / "headmodels",
                                 omp_nthreads=steps.omp_nthreads, name=f"meg_{tag}_wf")
        workflow.connect([
            (anat_wf, fmri_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in FMRI_FIELDS]),
            (anat_wf, meg_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in MEG_FIELDS]),
            (fmri_wf, run_reports, [("outputnode.report_data", f"in{2 * i + 1}")]),
            (meg_wf, run_reports, [("outputnode.report_data", f"in{2 * i + 2}")]),
        ])
    return workflow


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


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
        anatomy_modes=modes,
        steps=ParticipantSteps.from_config(config, freesurfer_installed=installed,
                                           atlas=plan.atlas),
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
