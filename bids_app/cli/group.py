"""The group level: gather the participant outputs and run the group statistics graph."""

from __future__ import annotations

import logging
from pathlib import Path

from bids_app.cli.folders import check_folders
from bids_app.cli.launch import execution_options, new_run_id, open_output, save_config
from bids_app.cli.seed import choose_seed, keep_seed
from bids_app.config import Config
from bids_app.errors import EXIT_OK, MissingInputError

LOGGER = logging.getLogger("bids_app")


def run_group(config: Config) -> int:
    """Run the group level on the participant outputs in the output folder."""
    from bids_app.io.bids import check_bids_root

    ex = config.execution
    ex.bids_dir = check_bids_root(ex.bids_dir)
    check_folders(config)
    out = Path(ex.output_dir)
    if not (out / "dataset_description.json").is_file():
        raise MissingInputError(
            f"{out} holds no participant outputs (no dataset_description.json). Run the "
            "participant level into this folder first: megfmri-fusion <bids_dir> "
            f"{out} participant"
        )
    from bids_app.workflows.base import write_boilerplate
    from bids_app.workflows.execution import check_resources, configure_nipype, run_workflow
    from bids_app.workflows.group import init_group_wf_from_config

    seed = choose_seed(config.seeds.random_seed, out)  # the bootstrap's: the folder's seed
    config.seeds.random_seed = seed.seed
    run_id = new_run_id()
    crash_dir = out / "logs" / f"crash-{run_id}"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=config.nipype.stop_on_first_crash,
                     verbosity=ex.verbosity)
    workflow = init_group_wf_from_config(config)  # finds the participant outputs' atlas
    check_resources(workflow, **execution_options(config))  # the last check: nothing written yet
    open_output(config, run_id)
    kept = keep_seed(seed)
    if kept.seed != seed.seed:  # another run into this folder saved its seed first
        config.seeds.random_seed = kept.seed
        workflow = init_group_wf_from_config(config)
    save_config(config, run_id)
    write_boilerplate(workflow, out / "logs", level="group")
    run_workflow(workflow, crash_dir=crash_dir, label="group", **execution_options(config))
    LOGGER.info("Group level done: report %s", out / "group.html")
    return EXIT_OK
