"""What both levels do around their graph: name the run, give the graph its plugin and
resources, and, once every check has passed, create the folders, start the log file and save
the configuration.

:mod:`bids_app.cli.participant` and :mod:`bids_app.cli.group` import these;
:mod:`bids_app.cli.run` imports the levels (never the other way round).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from pathlib import Path

from bids_app import __version__
from bids_app.cli.logs import add_file_logging
from bids_app.config import Config

LOGGER = logging.getLogger("bids_app")


def new_run_id() -> str:
    """A unique name of this run (time and a random part), used in the log and crash names."""
    return f"{datetime.now():%Y%m%d-%H%M%S}_{uuid.uuid4().hex[:8]}"


def open_output(config: Config, run_id: str) -> None:
    """Create the output, logs and work folders and start the log file of ``run_id``; move
    caches that cannot be written into the work folder
    (:func:`bids_app.cli.environment.ensure_writable_caches`).

    Called once every check has passed (:func:`bids_app.cli.folders.check_folders` and the
    level's own checks): a refused run writes nothing. The log file receives every message
    logged since the start, checks included.
    """
    from bids_app.cli.environment import ensure_writable_caches
    from bids_app.cli.folders import make_folders

    ex = config.execution
    make_folders([(ex.output_dir, "output"), (ex.output_dir / "logs", "logs"),
                  (ex.work_dir, "work")])
    add_file_logging(ex.output_dir / "logs" / f"megfmri-fusion_{run_id}.log")
    LOGGER.info("megfmri-fusion %s, run %s (%s level)", __version__, run_id, ex.analysis_level)
    # a read-only container: caches and temporary files go into the work folder
    ensure_writable_caches(Path(ex.work_dir))


def execution_options(config: Config) -> dict:
    """The plugin, processes and memory of the run: the keyword arguments of
    :func:`~bids_app.workflows.execution.check_resources` and ``run_workflow``."""
    nipype = config.nipype
    return {"plugin": nipype.plugin, "plugin_args": nipype.plugin_args, "nprocs": nipype.nprocs,
            "mem_gb": nipype.mem_gb}


def save_config(config: Config, run_id: str) -> Path:
    """Save the effective configuration as ``<out>/logs/config-<run id>.toml``."""
    from bids_app.io.derivatives import atomic_write_text

    path = Path(config.execution.output_dir) / "logs" / f"config-{run_id}.toml"
    header = (
        f"# megfmri-fusion {__version__}, run {run_id}\n"
        "# Repeat this run with: megfmri-fusion <bids_dir> <output_dir> <level> --config "
        f"{path.name}\n"
    )
    atomic_write_text(path, header + config.to_toml())
    LOGGER.info("Configuration saved to %s", path)
    return path
