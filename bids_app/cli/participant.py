"""The participant level: checks first, then the nipype graph of every selected subject.

Every check runs before anything is written (folders, dataset, data files, atlas, licence):
a refused run leaves no output or work folder behind.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bids_app.cli.folders import check_folders
from bids_app.cli.launch import execution_options, new_run_id, open_output, save_config
from bids_app.cli.seed import choose_seed, keep_seed
from bids_app.config import Config
from bids_app.errors import EXIT_OK, MissingInputError

LOGGER = logging.getLogger("bids_app")


def plan_from_config(config: Config, subjects: list[str] | None = None):
    """Discover the selected data, check it and find its atlas
    (:class:`~bids_app.io.bids.DatasetPlan`). ``subjects``: the selected subjects of the
    checked dataset root when :func:`checked_plan` has listed them (None: listed here)."""
    from bids_app.io.atlases import resolve_atlas
    from bids_app.io.bids import discover
    from bids_app.io.checks import check_plan

    ex = config.execution
    plan = discover(
        ex.bids_dir,
        participant_label=ex.participant_label,
        session_label=ex.session_label,
        tasks=ex.task,
        bids_filters=ex.bids_filters,
        fs_subjects_dir=ex.fs_subjects_dir,
        fmriprep_dir=ex.fmriprep_dir,
        meg_calibration=ex.meg_calibration,
        meg_crosstalk=ex.meg_crosstalk,
        unpaired_runs=config.workflow.unpaired_runs,
        output_dir=ex.output_dir,
        subjects=subjects,
    )
    check_plan(plan, check_options(config))
    an = config.anatomy
    plan.atlas = resolve_atlas(an.atlas, atlas_file=an.atlas_file,
                               freesurfer_dirs=plan.freesurfer_roots)
    _announce_atlas(plan)
    return plan


def check_options(config: Config):
    """What the run will do with the data, for the checks
    (:class:`~bids_app.io.checks.CheckOptions`)."""
    from bids_app.design import DesignOptions
    from bids_app.fmri.options import BlockOptions
    from bids_app.io.checks import CheckOptions
    from bids_app.meg.options import DICSOptions, EpochOptions

    return CheckOptions(design=config.options(DesignOptions), blocks=config.options(BlockOptions),
                        epochs=config.options(EpochOptions), dics=config.options(DICSOptions))


def _announce_atlas(plan) -> None:
    """Say which parcellation the run uses, loudly when it is the fallback of the default."""
    atlas = plan.atlas
    if atlas.note is not None:
        LOGGER.warning("%s", atlas.note)
        for sub in plan.subjects:
            sub.warnings.append(
                "Parcellation: the default Destrieux atlas was not found, so the data-driven "
                "fallback parcels are used (outputs named atlas-fallback); see the log for the "
                "paths searched and how to provide the atlas."
            )
    elif atlas.files is None:
        LOGGER.info("Parcellation: the data-driven fallback parcels (--atlas fallback); outputs "
                    "named atlas-fallback.")
    else:
        LOGGER.info("Parcellation: atlas '%s' from %s and %s; outputs named atlas-%s.",
                    atlas.name, atlas.files[0], atlas.files[1], atlas.label)


def checked_plan(config: Config):
    """Every check of the participant level that needs no graph, before anything is written:
    dataset, output and work folders, participant labels, the BIDS validator (unless skipped),
    the data files, the atlas and the FreeSurfer licence. Returns the
    :class:`~bids_app.io.bids.DatasetPlan`."""
    from bids_app.io.bids import available_subjects, check_bids_root, check_symlink_loops
    from bids_app.workflows.base import freesurfer_reasons

    ex = config.execution
    ex.bids_dir = check_bids_root(ex.bids_dir)
    check_folders(config)
    subjects = available_subjects(ex.bids_dir, ex.participant_label)  # unknown labels fail now
    # the validator and pybids follow links to folders: a loop would hang them both
    check_symlink_loops(ex.bids_dir, ex.participant_label)
    if not ex.skip_bids_validation:
        from bids_app.io.validation import validate

        validate(ex.bids_dir, ex.participant_label)
    plan = plan_from_config(config, subjects)
    require_fs_license(config, freesurfer_reasons(plan, config))
    return plan


def run_participant(config: Config) -> int:
    """Run the participant level for the configured subjects; return the exit code."""
    from bids_app.io.derivatives import write_dataset_description
    from bids_app.workflows.base import init_participant_wf_from_config, write_boilerplate
    from bids_app.workflows.execution import check_resources, configure_nipype, run_workflow

    ex = config.execution
    plan = checked_plan(config)
    # the seed is an input of the graph's random steps: the given one, the output folder's, or
    # one drawn now and saved below (bids_app.cli.seed); --boilerplate-only runs no step
    seed = None if ex.boilerplate_only else choose_seed(config.seeds.random_seed, ex.output_dir)
    if seed is not None:
        config.seeds.random_seed = seed.seed

    run_id = new_run_id()
    crash_dir = Path(ex.output_dir) / "logs" / f"crash-{run_id}"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=config.nipype.stop_on_first_crash,
                     verbosity=ex.verbosity)
    workflow = init_participant_wf_from_config(config, plan)
    check_resources(workflow, **execution_options(config))  # the last check: nothing written yet

    open_output(config, run_id)
    if seed is not None:
        kept = keep_seed(seed)
        if kept.seed != seed.seed:  # another run into this folder saved its seed first
            config.seeds.random_seed = kept.seed
            workflow = init_participant_wf_from_config(config, plan)
    write_dataset_description(ex.output_dir, ex.bids_dir)
    save_config(config, run_id)
    citation = write_boilerplate(workflow, Path(ex.output_dir) / "logs")
    LOGGER.info("Methods text written to %s", citation)
    if ex.boilerplate_only:
        return EXIT_OK
    if ex.write_graph:
        _write_graph(workflow, Path(ex.output_dir) / "logs")
    run_workflow(workflow, crash_dir=crash_dir, label="participant", **execution_options(config))
    for sub in plan.subjects:
        LOGGER.info("sub-%s done: report %s", sub.subject,
                    Path(ex.output_dir) / f"sub-{sub.subject}.html")
    return EXIT_OK


def _write_graph(workflow, logs: Path) -> None:
    """Write the graph as SVG (needs Graphviz 'dot'), else as a .dot file."""
    import shutil

    dotfile = logs / "graph.dot"
    fmt = "svg" if shutil.which("dot") else "dot"
    try:
        workflow.write_graph(dotfilename=str(dotfile), graph2use="colored", format=fmt,
                             simple_form=True)
    except Exception as err:  # Graphviz problems must not stop the analysis
        LOGGER.warning("Could not write the workflow graph: %s", err)
        return
    if fmt == "dot":
        LOGGER.warning("Graphviz 'dot' is not installed: the graph is in %s (no SVG).", dotfile)
    else:
        LOGGER.info("Workflow graph written to %s", logs)


# --------------------------------------------------------------------------------------------------
# FreeSurfer licence
# --------------------------------------------------------------------------------------------------
def find_fs_license(config: Config) -> Path | None:
    """The FreeSurfer licence: --fs-license-file, then $FS_LICENSE, then $FREESURFER_HOME."""
    given = config.execution.fs_license_file
    if given is not None:
        given = Path(given).expanduser()
        if not given.is_file():
            raise MissingInputError(f"--fs-license-file {given} does not exist.")
        return given.resolve()
    for candidate in (
        os.environ.get("FS_LICENSE"),
        os.path.join(os.environ.get("FREESURFER_HOME", ""), "license.txt")
        if os.environ.get("FREESURFER_HOME") else None,
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def require_fs_license(config: Config, reasons: list[str]) -> Path | None:
    """Check the licence before any work when a FreeSurfer tool will run (``reasons``)."""
    license_file = find_fs_license(config)
    if reasons and license_file is None:
        raise MissingInputError(
            "FreeSurfer will run (" + "; ".join(reasons) + ") but no FreeSurfer licence was "
            "found. Get one free at https://surfer.nmr.mgh.harvard.edu/registration.html and "
            "pass it with --fs-license-file, or set $FS_LICENSE."
        )
    if license_file is not None:
        os.environ["FS_LICENSE"] = str(license_file)
    return license_file
