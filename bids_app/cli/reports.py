"""``--reports-only``: write the HTML reports again from existing derivatives, without the graph.

Participant reports are rebuilt from the inputs each report node saved in
``logs/reports/sub-<label>.json`` (so the work folder may be gone); the group report from the
group tables. Nothing else is computed or written.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bids_app.config import Config
from bids_app.errors import EXIT_OK, MissingInputError

LOGGER = logging.getLogger("bids_app")


def run_reports_only(config: Config) -> int:
    """Rebuild the reports of the configured level; return the exit code.

    The dataset and the output folder are checked as for a run (the reports are written into
    the output folder): never into the dataset or a folder the app reads.
    """
    from bids_app.cli.folders import check_folders
    from bids_app.io.bids import check_bids_root

    ex = config.execution
    ex.bids_dir = check_bids_root(ex.bids_dir)
    check_folders(config, work=False)
    out = Path(ex.output_dir)
    if config.execution.analysis_level == "participant":
        _participant_reports(out, config.execution.participant_label)
    else:
        _group_report(config)
    return EXIT_OK


def _participant_reports(out: Path, labels: list[str]) -> None:
    from bids_app.reports.participant import rebuild_participant_report, report_inputs_path

    subjects = list(labels) or sorted(p.stem[len("sub-"):] for p in
                                      report_inputs_path(out, "x").parent.glob("sub-*.json"))
    if not subjects:
        raise MissingInputError(
            f"No participant reports to rebuild in {out} (no logs/reports/sub-*.json): run the "
            "participant level first.")
    for subject in subjects:
        LOGGER.info("Report written: %s", rebuild_participant_report(out, subject))


def _group_report(config: Config) -> None:
    from bids_app.io.derivatives import GROUP_TABLES, group_table_path
    from bids_app.io.group import tasks_in
    from bids_app.reports.group import build_group_report
    from bids_app.workflows.group import group_atlas, simulation_truth

    ex = config.execution
    out = Path(ex.output_dir)
    atlas = group_atlas(out, config.anatomy.atlas)
    tasks = list(ex.task) or tasks_in(out, atlas)
    tables = []
    for task in tasks:
        paths = {key: group_table_path(out, task, atlas, key) for key in GROUP_TABLES}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise MissingInputError(
                f"Group table(s) missing: {', '.join(missing)}. Run the group level first "
                "(without --reports-only).")
        tables.append({key: str(p) for key, p in paths.items()})
    path = build_group_report(output_dir=out, atlas=atlas, tasks=tasks, tables=tables,
                              conditions=list(config.workflow.conditions),
                              bands=list(config.meg.bands),
                              truth_file=simulation_truth(ex.bids_dir))
    LOGGER.info("Report written: %s", path)
