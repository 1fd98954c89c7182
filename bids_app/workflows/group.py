"""The group level: observations -> Spearman, Ward, bootstrap, effects, t-tests, report (DESIGN 5).

It reads only the participant derivatives in the output folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nipype.pipeline import engine as pe

from bids_app.config import Config
from bids_app.errors import MissingInputError
from bids_app.interfaces.group import GatherObservations, GroupStatistics
from bids_app.interfaces.report import GroupReport
from bids_app.options import as_dict
from bids_app.stats.options import GroupStatsOptions
from bids_app.workflows import workflow_name

LOGGER = logging.getLogger(__name__)

#: Memory (GB) the group statistics step declares (the largest step of the group level).
STATISTICS_MEM_GB = 2.0


def init_group_wf(
    *,
    output_dir: Path,
    work_dir: Path,
    tasks: list[str],
    atlas: str,
    conditions: list[str],
    bands: list[str],
    windows_ms: list[float],
    options: GroupStatsOptions,
    seed: int | None = None,
    truth_file: Path | None = None,
    name: str | None = None,
) -> pe.Workflow:
    """The group workflow of every task.

    Parameters
    ----------
    output_dir, work_dir : Path
        Derivatives root (inputs and outputs) and nipype work folder.
    tasks : list of str
        Tasks with participant outputs.
    atlas : str
        Atlas entity of the participant outputs.
    conditions, bands, windows_ms
        Labels of the analysis (must match the participant outputs).
    options : GroupStatsOptions
        Statistics options (see :func:`bids_app.stats.run_group_statistics`).
    seed : int or None
        Bootstrap seed.
    truth_file : Path or None
        The simulator's ``truth.json`` when the data are simulated (planted vs found).

    Outputs
    -------
    The group tables of DESIGN 6 in ``<output_dir>/group/`` and ``group.html``.
    """
    workflow = pe.Workflow(name=name or workflow_name("group"), base_dir=str(work_dir))
    workflow.__desc__ = _GROUP_DESC.format(
        k=options.n_clusters, n_boot=options.n_bootstrap,
        frac=round(100 * options.bootstrap_fraction),
        levels=" and ".join(f"{100 * lv:g} %" for lv in options.ci_levels), alpha=options.alpha,
        correction=("Bonferroni-corrected over the time windows" if options.correction ==
                    "bonferroni-windows" else "uncorrected"))
    report = pe.Node(GroupReport(output_dir=str(output_dir), atlas=atlas, tasks=list(tasks),
                                 conditions=list(conditions), bands=list(bands)),
                     name="group_report", run_without_submitting=True)
    if truth_file is not None:
        report.inputs.truth_file = str(truth_file)
    from nipype.interfaces import utility as niu

    merge = pe.Node(niu.Merge(len(tasks)), name="merge_tables", run_without_submitting=True)
    for i, task in enumerate(tasks, start=1):
        gather = pe.Node(GatherObservations(output_dir=str(output_dir), task=task, atlas=atlas,
                                            conditions=list(conditions), bands=list(bands),
                                            windows_ms=[float(w) for w in windows_ms],
                                            min_observations=options.min_observations),
                         name=f"gather_{task}")
        stats = pe.Node(
            GroupStatistics(output_dir=str(output_dir), task=task, atlas=atlas,
                            options=as_dict(options)),
            name=f"statistics_{task}", mem_gb=STATISTICS_MEM_GB,
        )
        if seed is not None:
            stats.inputs.seed = seed
        workflow.connect([
            (gather, stats, [("arrays", "arrays")]),
            (stats, merge, [("tables", f"in{i}")]),
        ])
    workflow.connect(merge, "out", report, "tables")
    return workflow


def group_atlas(output_dir: Path, configured: str) -> str:
    """The atlas entity of the participant outputs the group level reads.

    With ``--atlas auto`` (the default): Destrieux when its outputs are there, else the only
    parcellation there is. A named atlas is never replaced: its outputs must be there.

    Raises
    ------
    MissingInputError
        No participant outputs, none of the named atlas, or several parcellations and no
        ``--atlas`` to choose.
    """
    from bids_app.io.atlases import DEFAULT_ATLAS, atlas_label
    from bids_app.io.derivatives import dseg_table_atlases

    labels = dseg_table_atlases(output_dir)
    wanted = atlas_label(DEFAULT_ATLAS if configured == "auto" else configured)
    if wanted in labels:
        return wanted
    if not labels:
        raise MissingInputError(
            f"No atlas-*_dseg.tsv in {output_dir}: run the participant level into this folder "
            "first."
        )
    found = ", ".join(f"atlas-{label}" for label in labels)
    if configured != "auto":
        raise MissingInputError(
            f"{output_dir} holds no participant outputs of the atlas named with --atlas "
            f"{configured} (atlas-{wanted}), only {found}. Leave --atlas out to use those, or "
            f"run the participant level with --atlas {configured} first."
        )
    if len(labels) == 1:
        LOGGER.info("Using the participant outputs' parcellation '%s'", labels[0])
        return labels[0]
    raise MissingInputError(
        f"{output_dir} holds outputs of several parcellations ({found}); choose one with --atlas."
    )


def check_group_inputs(output_dir: Path, *, tasks: list[str], atlas: str, n_clusters: int,
                       min_observations: int) -> None:
    """Check, before the graph runs, what its steps would otherwise find after they start:
    enough observations of every task, and no more clusters than the atlas has parcels (the
    functions the steps call).

    Raises
    ------
    MissingInputError, BadDataError
        No participant outputs of a task, too few observations, or a parcellation table that
        cannot be read.
    UsageError
        ``--n-clusters`` above the number of parcels.
    """
    from bids_app.errors import BadDataError, UsageError
    from bids_app.io.derivatives import dseg_table_path, read_table
    from bids_app.io.group import included_parcels, observation_files
    from bids_app.stats import GroupStatsError
    from bids_app.stats.group import check_n_clusters

    for task in tasks:
        observation_files(output_dir, task=task, atlas=atlas, min_observations=min_observations)
    path = dseg_table_path(output_dir, atlas)
    try:
        parcels, _hemis = included_parcels(read_table(path))
    except (OSError, ValueError, KeyError) as err:
        raise BadDataError(f"The parcellation table {path} cannot be read ({err!r}): run the "
                           "participant level again to write it.") from None
    try:
        check_n_clusters(n_clusters, len(parcels))
    except GroupStatsError:
        raise UsageError(
            f"--n-clusters ('stats.n_clusters') is {n_clusters}, more than the {len(parcels)} "
            f"parcels the participant outputs include ({path.name}): choose at most "
            f"{len(parcels)}."
        ) from None


def init_group_wf_from_config(config: Config) -> pe.Workflow:
    """Build the group workflow with the configured options."""
    from bids_app.io.group import tasks_in

    ex, st = config.execution, config.stats
    atlas = group_atlas(Path(ex.output_dir), config.anatomy.atlas)
    tasks = list(ex.task) or tasks_in(Path(ex.output_dir), atlas)
    check_group_inputs(Path(ex.output_dir), tasks=tasks, atlas=atlas, n_clusters=st.n_clusters,
                       min_observations=st.min_observations)
    return init_group_wf(
        output_dir=Path(ex.output_dir), work_dir=Path(ex.work_dir), tasks=tasks, atlas=atlas,
        conditions=list(config.workflow.conditions), bands=list(config.meg.bands),
        windows_ms=config.window_starts_ms(), options=config.options(GroupStatsOptions),
        seed=config.seeds.random_seed, truth_file=simulation_truth(ex.bids_dir),
    )


def simulation_truth(bids_dir) -> Path | None:
    """The simulator's truth file, when the input dataset was simulated."""
    if bids_dir is None:
        return None
    path = Path(bids_dir) / "sourcedata" / "simulation" / "truth.json"
    return path if path.is_file() else None


_GROUP_DESC = (
    "At the group level, every (participant, run) pair with both MEG and fMRI was an "
    "observation. For every parcel, condition, frequency band and time window, the Spearman rank "
    "correlation [@spearman] between the normalised MEG band power and the normalised fMRI block "
    "value was computed over the observations (SciPy [@scipy] as the reference), significant at "
    "p < {alpha} {correction}. Parcels were grouped by their correlation patterns with Ward's "
    "agglomerative clustering [@ward] (Euclidean distance, optimal leaf ordering [@leaforder]) "
    "into {k} clusters. Per cluster and hemisphere, MEG and fMRI values were averaged over the "
    "cluster's parcels and correlated; {n_boot} bootstrap resamples, each drawing {frac} % of the "
    "observations without replacement [@subsampling], gave {levels} percentile intervals. A "
    "task-dependent effect was a run of consecutive windows in which one condition's interval "
    "did not overlap those of the other conditions while a correlation was significant. MEG "
    "power alone was compared between conditions with paired t-tests."
)
