"""``megfmri-fusion``: run the participant or group level.

The sequence (each step fails early with a clear message and an exit code, see
:mod:`bids_app.errors`):

1. parse the command line and build the configuration (defaults < ``--config`` < options);
2. check the input dataset and prepare the output and work folders (never inside the dataset,
   except under ``<bids_dir>/derivatives``);
3. participant level: validate with the BIDS validator, discover and pair runs, check every input
   file, check the FreeSurfer licence when FreeSurfer will run, build the nipype graph and check
   the memory limit against its steps; only then create the folders, save the output folder's
   random seed if it has none (:mod:`bids_app.cli.seed`), write the dataset description, the
   saved configuration and the methods text, and run the graph;
   group level: find the participant outputs, build the group graph, check the memory limit,
   then create the folders and run it;
4. summarise what was written, or which step failed and where its crash report is.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
import uuid
from datetime import datetime
from pathlib import Path

from bids_app import __version__
from bids_app.cli.parser import parse_args
from bids_app.config import Config, ConfigError
from bids_app.errors import (
    EXIT_BAD_DATA,
    EXIT_FAILURE,
    EXIT_USAGE,
    AppError,
    BadLevelError,
    MissingInputError,
)
from bids_app.interrupts import Interrupted, handle_interrupts, stop_children

LOGGER = logging.getLogger("bids_app")
LEVELS = ("participant", "group")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``megfmri-fusion`` command."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the app and return its exit code (never raises for bad input).

    SIGINT (Ctrl-C) and SIGTERM (a scheduler's time limit, ``docker stop``) stop every process
    the run started and return 130 and 143; the same command then resumes from the work folder
    (:mod:`bids_app.interrupts`).
    """
    os.environ.setdefault("NIPYPE_NO_ET", "1")  # no telemetry request at run time
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures on headless nodes
    setup_console_logging(0)
    _buffer_early_logging()
    with handle_interrupts():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        config = build_config(argv)
        setup_console_logging(config.execution.verbosity)
        if config.execution.reports_only:
            from bids_app.cli.reports import run_reports_only

            return run_reports_only(config)
        if config.execution.slurm_script:
            from bids_app.cli.slurm import print_slurm_script

            return print_slurm_script(config)
        if config.execution.analysis_level == "participant":
            from bids_app.cli.participant import run_participant

            return run_participant(config)
        from bids_app.cli.group import run_group

        return run_group(config)
    except AppError as err:
        LOGGER.error("%s", err.message)
        return err.exit_code
    except ConfigError as err:
        LOGGER.error("%s", err)
        return EXIT_USAGE
    except KeyboardInterrupt as err:  # Interrupted: SIGINT or SIGTERM (bids_app.interrupts)
        interrupted = err if isinstance(err, Interrupted) else Interrupted(signal.SIGINT)
        stopped = stop_children()
        LOGGER.error(
            "Stopped by %s%s. Finished steps are kept in the work folder: run the same command "
            "again to resume.", interrupted.name,
            f" ({stopped} process(es) of the run ended)" if stopped else "")
        return interrupted.exit_code
    except Exception as err:
        from bids_app.errors import bad_data_message

        message = bad_data_message(err)
        if message is not None:
            LOGGER.error("%s", message)
            return EXIT_BAD_DATA
        LOGGER.exception("Unexpected error (a bug; please report it with this log): %s", err)
        return EXIT_FAILURE
    finally:
        _close_file_logging()


def build_config(argv: list[str] | None = None) -> Config:
    """Parse ``argv`` into a checked :class:`Config` (defaults < --config < options)."""
    ns, overrides = parse_args(argv)
    level = str(ns.analysis_level)
    if level not in LEVELS:
        raise BadLevelError(
            f"Unknown analysis level '{level}': allowed are participant, group."
        )
    config = Config.from_toml(ns.config_file) if ns.config_file else Config()
    overrides.setdefault("execution", {}).update(
        {"bids_dir": ns.bids_dir, "output_dir": ns.output_dir, "analysis_level": level}
    )
    config.update(overrides, source="the command line", names=ns.option_names)
    for source, settings in ns.file_settings:  # --bids-filter-file, --use-plugin
        config.update(settings, source=source)
    ex = config.execution
    from bids_app.io.bids import normalize_labels

    ex.participant_label = normalize_labels(ex.participant_label, "sub")
    ex.session_label = normalize_labels(ex.session_label, "ses")
    # no --random-seed: the level uses the output folder's seed (bids_app.cli.seed)
    _resolve_nprocs(config)
    return config


def _resolve_nprocs(config: Config) -> None:
    """Fill in process and thread counts (fMRIPrep's rule for the default threads), then check
    them again (``--omp-nthreads`` may exceed the machine's CPUs when ``--nprocs`` is left out)."""
    nipype = config.nipype
    if nipype.nprocs is None:
        nipype.nprocs = os.cpu_count() or 1
    if nipype.omp_nthreads is None:
        nipype.omp_nthreads = min(nipype.nprocs - 1 if nipype.nprocs > 1 else 1, 8)
    config.validate()


# --------------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------------
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
    _add_file_logging(ex.output_dir / "logs" / f"megfmri-fusion_{run_id}.log")
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


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------
_FORMAT = "%(asctime)s | %(levelname)-7s | %(message)s"


def setup_console_logging(verbosity: int = 0) -> None:
    """One handler on the terminal for every command of the app (set up once per process, so
    the demo, which simulates and then runs both levels, prints each line once)."""
    level = logging.DEBUG if verbosity > 0 else logging.INFO
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_megfmri", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._megfmri = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(_FORMAT, "%y%m%d-%H:%M:%S"))
        root.addHandler(handler)
    handler.setLevel(level)
    root.setLevel(min(level, root.level) if root.level else level)
    LOGGER.setLevel(logging.DEBUG)
    for noisy in ("nipype.interface", "nipype.utils", "bids", "bidsschematools", "mne",
                  "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)


_FILE_HANDLERS: list[logging.Handler] = []
#: Messages logged before the log file exists (checks run before any folder is created).
_EARLY_RECORDS: list[logging.handlers.MemoryHandler] = []


def _buffer_early_logging() -> None:
    """Keep every message from the start of a run for the log file opened later."""
    from logging.handlers import MemoryHandler

    buffer = MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1)
    buffer.setLevel(logging.DEBUG)
    _EARLY_RECORDS.append(buffer)
    logging.getLogger().addHandler(buffer)


def _add_file_logging(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    _FILE_HANDLERS.append(handler)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s | %(message)s"))
    root = logging.getLogger()
    while _EARLY_RECORDS:
        buffer = _EARLY_RECORDS.pop()
        buffer.setTarget(handler)
        buffer.flush()
        root.removeHandler(buffer)
        buffer.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def _close_file_logging() -> None:
    root = logging.getLogger()
    while _EARLY_RECORDS:  # the run stopped before it had a log file
        buffer = _EARLY_RECORDS.pop()
        root.removeHandler(buffer)
        buffer.buffer.clear()
        buffer.close()
    while _FILE_HANDLERS:
        handler = _FILE_HANDLERS.pop()
        root.removeHandler(handler)
        handler.close()
