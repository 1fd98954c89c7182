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

import json
import logging
import os
import signal
import sys

from bids_app.cli.logs import buffer_early_logging, close_file_logging, setup_console_logging
from bids_app.cli.parser import ExecSpecRequested, parse_args
from bids_app.config import Config, ConfigError
from bids_app.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, BadLevelError, exit_code_of
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
    buffer_early_logging()
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
    except ExecSpecRequested:
        from bids_app.cli.boutiques import descriptor

        sys.stdout.write(json.dumps(descriptor(), indent=2) + "\n")
        return EXIT_OK
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
        code = exit_code_of(err)  # AppError: its own code; the pure packages' bad data: 65
        if code is not None:
            LOGGER.error("%s", err)
            return code
        LOGGER.exception("Unexpected error (a bug; please report it with this log): %s", err)
        return EXIT_FAILURE
    finally:
        close_file_logging()


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
