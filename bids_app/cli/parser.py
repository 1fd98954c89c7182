"""The command line, in the BIDS-Apps form with fMRIPrep's option names where one exists.

This module only parses. :func:`build_parser` returns the parser; :func:`parse_args` returns the
namespace and the configuration overrides (``{section: {option: value}}``) of the options that
were actually given, so that a ``--config`` file is overridden only where the user asked.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from bids_app import __version__
from bids_app.errors import EXIT_CODES, UsageError

LOGGER = logging.getLogger("bids_app")

#: Command-line destination -> configuration option ("section.name").
CONFIG_MAP: dict[str, str] = {
    "participant_label": "execution.participant_label",
    "session_label": "execution.session_label",
    "task": "execution.task",
    "work_dir": "execution.work_dir",
    "fs_subjects_dir": "execution.fs_subjects_dir",
    "fs_license_file": "execution.fs_license_file",
    "fmriprep_dir": "execution.fmriprep_dir",
    "meg_calibration": "execution.meg_calibration",
    "meg_crosstalk": "execution.meg_crosstalk",
    "skip_bids_validation": "execution.skip_bids_validation",
    "write_graph": "execution.write_graph",
    "boilerplate_only": "execution.boilerplate_only",
    "reports_only": "execution.reports_only",
    "verbosity": "execution.verbosity",
    "conditions": "workflow.conditions",
    "atlas": "anatomy.atlas",
    "atlas_file": "anatomy.atlas_file",
    "parcellation_table": "anatomy.parcellation_table",
    "n_clusters": "stats.n_clusters",
    "n_bootstrap": "stats.n_bootstrap",
    "nprocs": "nipype.nprocs",
    "omp_nthreads": "nipype.omp_nthreads",
    "mem_gb": "nipype.mem_gb",
    "stop_on_first_crash": "nipype.stop_on_first_crash",
    "slurm_script": "execution.slurm_script",
    "random_seed": "seeds.random_seed",
}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` (exit code 64) instead of exiting 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise UsageError(f"{message}\nRun '{self.prog} --help' for the usage.")


class ExecSpecRequested(Exception):
    """``--bids-exec-spec`` was given: the caller prints the Boutiques descriptor and stops
    (:func:`bids_app.cli.run.run`; the descriptor is generated from this parser by
    :mod:`bids_app.cli.boutiques`, which imports this module, not the other way round)."""


class _ExecSpecAction(argparse.Action):
    """Stop parsing at ``--bids-exec-spec`` (like --version, needs no other argument)."""

    def __init__(self, option_strings, dest, **kwargs):
        kwargs["default"] = argparse.SUPPRESS
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        raise ExecSpecRequested


def _path(value: str) -> Path:
    """A path; an empty one (often an unset shell variable, "$OUT") would mean the current
    folder, and outputs would land there."""
    if not value.strip():
        raise argparse.ArgumentTypeError(
            "the path is empty (an unset shell variable?); give the folder explicitly, '.' for "
            "the current folder")
    return Path(value)


def _existing_file(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {value} does not exist")
    return path.resolve()


def _existing_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"folder {value} does not exist")
    return path.resolve()


def _integer(value: str) -> int:
    """An integer (its range is checked with the configuration, :mod:`bids_app.config`)."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{value}'") from None


def _number(value: str) -> float:
    """A number (its range is checked with the configuration, :mod:`bids_app.config`)."""
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{value}'") from None


def _exit_code_epilog() -> str:
    lines = ["exit codes:"]
    lines += [f"  {code:<4d}{text}" for code, text in EXIT_CODES.items()]
    lines.append("")
    lines.append("Documentation: docs/usage.md; outputs: docs/outputs.md.")
    return "\n".join(lines)


def build_parser(prog: str = "megfmri-fusion") -> argparse.ArgumentParser:
    """The argument parser of ``megfmri-fusion``."""
    parser = _Parser(
        prog=prog,
        description=(
            "MEG-fMRI fusion BIDS App: parcel-level fMRI block responses and tSSS/DICS MEG band "
            "power of the same participants, correlated across subjects and runs (Spearman), "
            "clustered (Ward) and compared between conditions with bootstrap intervals."
        ),
        epilog=_exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("bids_dir", type=_path,
                        help="root folder of the input BIDS dataset (never written to)")
    parser.add_argument("output_dir", type=_path,
                        help="output folder for the BIDS-Derivatives (e.g. <bids_dir>/derivatives/"
                        "megfmri-fusion)")
    parser.add_argument("analysis_level", metavar="{participant,group}",
                        help="'participant' processes subjects; 'group' runs the statistics on "
                        "the participant outputs in output_dir")
    parser.add_argument("--version", action="version", version=f"megfmri-fusion {__version__}")
    parser.add_argument("--bids-exec-spec", action=_ExecSpecAction,
                        help="print the Boutiques descriptor (boutiques.json) and exit")

    g = parser.add_argument_group("selecting data")
    g.add_argument("--participant-label", "--participant_label", dest="participant_label",
                   nargs="+", metavar="LABEL",
                   help="subjects to process (with or without 'sub-'), or one file listing them")
    g.add_argument("--session-label", "--session_label", dest="session_label", nargs="+",
                   metavar="LABEL", help="sessions to use (with or without 'ses-')")
    g.add_argument("--task", "--task-id", dest="task", nargs="+", metavar="TASK",
                   help="task label(s) to analyse, with or without 'task-' (default: every task "
                   "with MEG and BOLD runs)")
    g.add_argument("--bids-filter-file", dest="bids_filter_file", type=_existing_file,
                   metavar="FILE",
                   help="JSON file refining the queries 'bold', 'meg' and 't1w' with BIDS "
                   "entities, e.g. {\"bold\": {\"session\": \"mri\"}}")
    g.add_argument("--conditions", nargs="+", metavar="NAME",
                   help="condition names (events trial_type values); default: "
                   "object_object action_action object_action")

    g = parser.add_argument_group("inputs and derivatives")
    g.add_argument("--fs-subjects-dir", dest="fs_subjects_dir", type=_path, metavar="DIR",
                   help="FreeSurfer SUBJECTS_DIR with sub-<label> reconstructions (default: "
                   "<bids_dir>/derivatives/freesurfer)")
    g.add_argument("--fs-license-file", dest="fs_license_file", type=_path, metavar="FILE",
                   help="FreeSurfer licence (default: $FS_LICENSE, then "
                   "$FREESURFER_HOME/license.txt); needed only when FreeSurfer runs")
    g.add_argument("--fmriprep-dir", dest="fmriprep_dir", type=_existing_dir, metavar="DIR",
                   help="fMRIPrep derivatives with space-fsaverage* GIFTI BOLD to use instead of "
                   "the app's own fMRI preprocessing")
    g.add_argument("--meg-calibration", dest="meg_calibration", type=_existing_file,
                   metavar="FILE", help="fine-calibration file (.dat) overriding the dataset's")
    g.add_argument("--meg-crosstalk", dest="meg_crosstalk", type=_existing_file, metavar="FILE",
                   help="cross-talk file (.fif) overriding the dataset's")
    g.add_argument("--atlas", metavar="NAME",
                   help="parcellation: auto (default: Destrieux when found, else the "
                   "data-driven fallback, announced), destrieux, desikan, fallback, or an "
                   "annotation name in fsaverage/label")
    g.add_argument("--atlas-file", dest="atlas_file", type=_existing_file, metavar="FILE",
                   help="annotation or GIFTI label file on fsaverage (left hemisphere; the right "
                   "one is found by name)")
    g.add_argument("--parcellation-table", dest="parcellation_table", type=_existing_file,
                   metavar="FILE", help="an atlas-<name>_dseg.tsv fixing split and included parcels")

    g = parser.add_argument_group("statistics")
    g.add_argument("--n-clusters", dest="n_clusters", type=_integer, metavar="K",
                   help="number of Ward clusters (default 17)")
    g.add_argument("--n-bootstrap", dest="n_bootstrap", type=_integer, metavar="N",
                   help="bootstrap resamples (default 10000)")

    g = parser.add_argument_group("performance and execution")
    g.add_argument("--nprocs", "--n-cpus", "--n_cpus", "--nthreads", dest="nprocs",
                   type=_integer, metavar="N", help="processes in parallel (default: all CPUs)")
    g.add_argument("--omp-nthreads", dest="omp_nthreads", type=_integer, metavar="N",
                   help="threads of the numerical libraries in each step, and the cores "
                   "reserved for it (default: nprocs - 1, at least 1, at most 8)")
    g.add_argument("--mem-gb", "--mem_gb", dest="mem_gb", type=_number, metavar="GB",
                   help="memory available to the run, in GB")
    g.add_argument("--use-plugin", dest="use_plugin", type=_existing_file, metavar="FILE",
                   help="nipype plugin file (TOML or YAML: 'plugin: SLURMGraph' and "
                   "'plugin_args: {...}')")
    g.add_argument("-w", "--work-dir", dest="work_dir", type=_path, metavar="DIR",
                   help="working folder caching finished steps (default: ./work); rerunning "
                   "with the same folder resumes an interrupted run")
    g.add_argument("--stop-on-first-crash", dest="stop_on_first_crash", action="store_true",
                   help="stop at the first failing step")
    g.add_argument("--slurm-script", dest="slurm_script", action="store_true",
                   help="print a SLURM script submitting one array task per participant (cores "
                   "from --nprocs, memory from the app's estimates) and the group level after "
                   "them, then stop (docs/hpc.md)")
    g.add_argument("--write-graph", dest="write_graph", action="store_true",
                   help="write the workflow graph to <output_dir>/logs")

    g = parser.add_argument_group("other options")
    g.add_argument("--config", dest="config_file", type=_existing_file, metavar="FILE",
                   help="TOML configuration (e.g. logs/config-*.toml of an earlier run); "
                   "command-line options win")
    g.add_argument("--skip-bids-validation", "--skip_bids_validation", "--skip_bids_validator",
                   dest="skip_bids_validation", action="store_true",
                   help="do not run the BIDS validator")
    g.add_argument("--random-seed", dest="random_seed", type=_integer, metavar="SEED",
                   help="seed of every random step (ANTs sampling, bootstrap) for this run. "
                   "Default: the output folder's seed, <output_dir>/logs/random-seed, drawn and "
                   "saved by the folder's first run (which also saves a given seed)")
    g.add_argument("--boilerplate-only", "--boilerplate_only", dest="boilerplate_only",
                   action="store_true", help="write the methods text (logs/CITATION.md) and stop")
    g.add_argument("--reports-only", dest="reports_only", action="store_true",
                   help="only regenerate the reports from existing outputs")
    g.add_argument("-v", "--verbose", dest="verbosity", action="count",
                   help="more detailed log (repeat for more)")
    return parser


def _read_labels(values: list[str]) -> list[str]:
    """The participant labels given: the values themselves, or the labels a file lists.

    A single value is read as a file of labels (whitespace or comma separated) only when it is
    not a label itself and names an existing file: ``--participant-label 01`` means subject 01
    even when the current folder holds a file named ``01`` (``./01`` reads that file). The log
    says which was used.
    """
    from bids_app.io.bids import LABEL

    if len(values) == 1:
        value = values[0]
        path = Path(value).expanduser()
        if not LABEL.fullmatch(value.removeprefix("sub-")) and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            labels = [tok for tok in text.replace(",", " ").split() if tok]
            LOGGER.info("Participant labels read from the file %s: %s", path, " ".join(labels))
            return labels
        if path.is_file():
            LOGGER.warning("--participant-label %s: taken as a participant label; the file of "
                           "that name is not read (give it as ./%s to read it).", value, value)
    LOGGER.info("Participant labels from the command line: %s", " ".join(values))
    return values


def _read_mapping(path: Path, what: str) -> Any:
    """The content of a JSON, YAML or TOML file (what it holds is checked by the config)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{what} {path} is not UTF-8 text ({err.reason} at byte {err.start}); "
                         "save it as UTF-8.") from None
    except OSError as err:
        raise UsageError(f"{what} {path} cannot be read: {err.strerror or err}.") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"{what} {path} is not valid JSON: {err}") from None
    if path.suffix.lower() in (".yml", ".yaml"):
        try:
            import yaml
        except ImportError:
            raise UsageError(f"{what} {path} is YAML but PyYAML is not installed; "
                             "write it as TOML instead") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise UsageError(f"{what} {path} is not valid YAML: {err}") from None
        return data or {}
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{what} {path} is not valid TOML: {err}") from None


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, dict]]:
    """Parse the command line.

    Returns
    -------
    namespace : argparse.Namespace
        With ``bids_dir``, ``output_dir``, ``analysis_level`` and ``config_file`` (or None);
        ``option_names``, how the command line spells each option given
        (``{"nipype.nprocs": "--nprocs"}``); and ``file_settings``, the settings read from the
        files the options name, as ``(source, {section: {option: value}})`` pairs
        (``--use-plugin``, ``--bids-filter-file``), for messages that name the file.
    overrides : dict
        ``{section: {option: value}}`` for every configuration option given on the command line.
    """
    parser = build_parser()
    ns = parser.parse_args(argv)
    flags = {action.dest: next((o for o in action.option_strings if o.startswith("--")),
                               action.option_strings[0])
             for action in parser._actions if action.option_strings}
    overrides: dict[str, dict[str, Any]] = {}
    ns.option_names = {}
    ns.file_settings = []
    for dest, key in CONFIG_MAP.items():
        if hasattr(ns, dest):
            value = getattr(ns, dest)
            if dest == "participant_label":
                value = _read_labels(value)
            elif dest == "task":            # as the file names spell it: task-naming
                value = [label.removeprefix("task-") for label in value]
            section, name = key.split(".")
            overrides.setdefault(section, {})[name] = value
            ns.option_names[key] = flags[dest]
    if hasattr(ns, "bids_filter_file"):
        filters = _read_mapping(ns.bids_filter_file, "The BIDS filter file")
        if not isinstance(filters, dict):
            raise UsageError(f"The BIDS filter file {ns.bids_filter_file} must hold a JSON object.")
        ns.file_settings.append((f"the BIDS filter file {ns.bids_filter_file}",
                                 {"execution": {"bids_filters": filters}}))
    if hasattr(ns, "use_plugin"):
        plugin = _read_mapping(ns.use_plugin, "The plugin file")
        if not isinstance(plugin, dict) or "plugin" not in plugin:
            raise UsageError(
                f"The plugin file {ns.use_plugin} must name the plugin, e.g. 'plugin: SLURMGraph' "
                "with optional 'plugin_args: {...}'."
            )
        ns.file_settings.append((f"the plugin file {ns.use_plugin}", {"nipype": {
            "plugin": plugin["plugin"], "plugin_args": plugin.get("plugin_args") or {}}}))
    ns.config_file = getattr(ns, "config_file", None)
    return ns, overrides
