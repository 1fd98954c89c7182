"""The one place settings live.

Every option of the app is a typed field of one of the sections below, with a default (the
published method's value where it has one) and a docstring-like ``doc`` giving units and
allowed values. The options of a processing step are declared once, in that step's frozen
options object beside its pure code (:class:`~bids_app.meg.options.DICSOptions` and the others
of :data:`OPTION_SECTIONS`); a section is made of their fields, and
:meth:`Config.options` gives a step its object. A :class:`Config` is built once by the command line (defaults, then a TOML file
given with ``--config``, then command-line options, which win), checked, and saved as TOML beside
the outputs (``<output_dir>/logs/config-<run id>.toml``) so that a run can be repeated with
``--config``.

Only :mod:`bids_app.cli` and :mod:`bids_app.workflows` read a :class:`Config`. Workflow factories
take the options objects they need, and the pure packages never see the configuration (it imports
their options, never the reverse).

Importing this module has no side effects (no environment changes, no files, no network).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_app.design import DEFAULT_CONDITIONS, DesignOptions
from bids_app.fmri.options import BlockOptions, RegistrationOptions
from bids_app.io.bids import LABEL
from bids_app.meg.options import (DEFAULT_BANDS, DICSOptions, EpochOptions, HeadModelOptions,
                                  MaxwellOptions)
from bids_app.options import (ANY, AT_LEAST_1, NON_NEGATIVE, OPEN_SHARE, POSITIVE, Range,
                              as_dict)
from bids_app.options import option as _opt
from bids_app.parcels.options import ParcellationOptions
from bids_app.stats.options import GroupStatsOptions

__all__ = ["ANY", "AT_LEAST_1", "DEFAULT_BANDS", "DEFAULT_CONDITIONS", "NON_NEGATIVE",
           "OPEN_SHARE", "POSITIVE", "Config", "ConfigError", "Range", "as_dict"]

T = typing.TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the option and what is allowed."""


#: A BIDS label (``sub-<label>``, ``task-<label>``...): letters and digits only (the one
#: definition, :data:`bids_app.io.bids.LABEL`, also used by discovery and --participant-label).
BIDS_LABEL = (LABEL.pattern, "a BIDS label (letters and digits only)")
#: An atlas name: a FreeSurfer annotation name such as aparc.a2009s or PALS_B12_Lobes (no path).
ATLAS_NAME = (r"[A-Za-z0-9][A-Za-z0-9._-]*",
              "an atlas name (letters, digits, '.', '_' and '-'; not a path: use --atlas-file)")

#: Queries a BIDS filter file may refine (as in fMRIPrep), and the pybids entities they may use.
FILTER_QUERIES = ("bold", "meg", "t1w")
FILTER_ENTITIES = ("session", "acquisition", "run", "task", "reconstruction", "space", "ceagent",
                   "direction", "echo", "processing", "datatype", "extension", "part")

#: Nipype plugins that run from a plugin file (nipype's Debug needs a Python function; IPython
#: and SomaFlow need packages the app does not install).
NIPYPE_PLUGINS = ("Linear", "MultiProc", "LegacyMultiProc", "SLURM", "SLURMGraph", "SGE",
                  "SGEGraph", "PBS", "PBSGraph", "LSF", "Condor", "CondorDAGMan", "OAR")

#: The plugin arguments nipype reads (``plugin_args``), each with its type and what it allows
#: (``allowed`` choices or ``bounds``), as for the options themselves.
PLUGIN_ARGS: dict[str, tuple[type, dict[str, Any]]] = {
    "n_procs": (int, {"bounds": AT_LEAST_1}),
    "memory_gb": (float, {"bounds": POSITIVE}),
    "n_gpu_procs": (int, {"bounds": NON_NEGATIVE}),
    "raise_insufficient": (bool, {}),
    "maxtasksperchild": (int, {"bounds": AT_LEAST_1}),
    "non_daemon": (bool, {}),
    "scheduler": (str, {"allowed": ("tsort", "mem_thread")}),
    "mp_context": (str, {"allowed": ("fork", "spawn", "forkserver")}),
    "max_jobs": (int, {"bounds": AT_LEAST_1}),
    "max_tries": (int, {"bounds": AT_LEAST_1}),
    "retry_timeout": (float, {"bounds": NON_NEGATIVE}),
    "max_jobname_len": (int, {"bounds": AT_LEAST_1}),
    "dont_resubmit_completed_jobs": (bool, {}),
    "template": (str, {}),
    "sbatch_args": (str, {}),
    "qsub_args": (str, {}),
    "bsub_args": (str, {}),
    "oarsub_args": (str, {}),
    "jobid_re": (str, {}),
    "qstatProgramPath": (str, {}),
    "qstatCachedProgramPath": (str, {}),
    "submit_template": (str, {}),
    "initial_specs": (str, {}),
    "override_specs": (str, {}),
    "submit_specs": (str, {}),
    "wrapper_cmd": (str, {}),
    "wrapper_args": (str, {}),
    "dagman_args": (str, {}),
    "block": (bool, {}),
}


_TYPE_NAMES = {Path: ("a path", "paths"), bool: ("true or false", "true/false values"),
               int: ("an integer", "integers"), float: ("a number", "numbers"),
               str: ("a string", "strings")}


def _type_name(hint: Any, plural: bool = False) -> str:
    """'an integer', 'a list of numbers', 'a table of lists of numbers'..."""
    origin = typing.get_origin(hint) or hint
    if origin is list:
        (item,) = typing.get_args(hint)
        return f"{'lists' if plural else 'a list'} of {_type_name(item, plural=True)}"
    if origin is dict:
        item = (typing.get_args(hint) or (str, Any))[1]
        table = "tables" if plural else "a table"
        return table if item is Any else f"{table} of {_type_name(item, plural=True)}"
    names = _TYPE_NAMES.get(origin)
    return names[plural] if names else str(hint)


def _describe(hint: Any, allowed: tuple | None = None, bounds: Range | None = None,
              pattern: tuple[str, str] | None = None) -> str:
    """What a value must be, in words: 'an integer >= 1', 'one of 'warn', 'error''..."""
    if allowed is not None:
        return "one of " + ", ".join(repr(a) for a in allowed)
    if pattern is not None:
        return pattern[1] if hint is str else f"{_type_name(hint)}, each {pattern[1]}"
    text = _type_name(hint)
    return f"{text} {bounds}" if bounds is not None and bounds != ANY else text


@dataclass
class ExecutionConfig:
    """Where the data are, what to process and how the run behaves."""

    bids_dir: Path | None = _opt(None, "Root of the input BIDS dataset (read only).")
    output_dir: Path | None = _opt(None, "Root of the BIDS-Derivatives output folder.")
    analysis_level: str = _opt(
        "participant",
        "Analysis level: participant (per subject) or group (statistics over subjects).",
        allowed=("participant", "group"),
    )
    participant_label: list[str] = _opt(
        list, "Subjects to process, without 'sub-'. Empty: every subject.", factory=True
    )
    session_label: list[str] = _opt(
        list, "Sessions to use, without 'ses-'. Empty: every session.", factory=True
    )
    task: list[str] = _opt(
        list,
        "Task labels to analyse, without 'task-'. Empty: every task that has both MEG and BOLD "
        "runs.",
        pattern=BIDS_LABEL,
        factory=True,
    )
    bids_filters: dict[str, Any] = _opt(
        dict,
        "pybids filters per query, as in fMRIPrep's --bids-filter-file: {query: {entity: "
        "value}}; queries: " + ", ".join(FILTER_QUERIES) + "; entities: "
        + ", ".join(FILTER_ENTITIES) + "; a value is a text, a number, true/false, null (the "
        "entity must be absent) or a list of texts and numbers.",
        factory=True,
    )
    work_dir: Path | None = _opt(
        None, "Nipype working folder (cache of finished steps). Default: ./work (current folder)."
    )
    fs_subjects_dir: Path | None = _opt(
        None,
        "FreeSurfer SUBJECTS_DIR with the participants' reconstructions. Default: "
        "<bids_dir>/derivatives/freesurfer, then <fmriprep_dir>/sourcedata/freesurfer.",
    )
    fs_license_file: Path | None = _opt(
        None,
        "FreeSurfer licence; default $FS_LICENSE, then $FREESURFER_HOME/license.txt. Needed "
        "only when a FreeSurfer tool will run.",
    )
    fmriprep_dir: Path | None = _opt(
        None, "fMRIPrep derivatives with space-fsaverage* GIFTI BOLD to use instead of raw BOLD."
    )
    meg_calibration: Path | None = _opt(
        None, "Fine-calibration file (.dat) overriding the dataset's acq-calibration file."
    )
    meg_crosstalk: Path | None = _opt(
        None, "Cross-talk file (.fif) overriding the dataset's acq-crosstalk file."
    )
    skip_bids_validation: bool = _opt(False, "Do not run the BIDS validator.")
    write_graph: bool = _opt(False, "Write the workflow graph (SVG) to the logs folder.")
    boilerplate_only: bool = _opt(False, "Write the methods text only, then stop (participant "
                                  "level).")
    reports_only: bool = _opt(
        False, "Only (re)generate the reports from existing derivatives."
    )
    slurm_script: bool = _opt(
        False, "Print a SLURM submission script for the selected participants (one array task "
        "each, then the group level as a dependent job; resources from the app's memory "
        "estimates) and stop without running or writing anything (participant level; "
        "docs/hpc.md).")
    verbosity: int = _opt(0, "0: INFO; 1 or more: DEBUG (each -v adds one).",
                          bounds=NON_NEGATIVE)


@dataclass(frozen=True)
class _RunPairing:
    unpaired_runs: str = _opt(
        "warn",
        "What to do with a run that has MEG but no BOLD (or the reverse): 'warn' skips it with "
        "a warning; 'error' stops with exit code 65.",
        allowed=("warn", "error"),
    )


@dataclass(frozen=True)
class _AtlasChoice:
    atlas: str = _opt(
        "auto",
        "Parcellation on fsaverage: 'destrieux' (aparc.a2009s, as in the paper), 'desikan' "
        "(aparc), 'fallback' (data-driven compact parcels on fsaverage5, always available) or "
        "the name of another annotation in fsaverage/label. A named atlas must be found "
        "(docs/anatomy.md lists where the app looks), else the run stops before any work. "
        "'auto': Destrieux when found, else the fallback, announced in the log and reports.",
        pattern=ATLAS_NAME,
    )
    atlas_file: Path | None = _opt(
        None,
        "A FreeSurfer .annot or GIFTI label file on fsaverage (lh; the rh file is found by "
        "name) used instead of the atlas search. The outputs are named after the atlas the "
        "file holds (lh.aparc.annot: atlas-desikan); an 'atlas' naming another one is refused.",
    )
    parcellation_table: Path | None = _opt(
        None,
        "An atlas-<name>_dseg.tsv (from an earlier run, possibly edited) fixing the split and "
        "the included parcels.",
    )


@dataclass(frozen=True)
class _TemplateAnatomy:
    allow_template_anatomy: bool = _opt(
        True,
        "When no FreeSurfer reconstruction exists and FreeSurfer is not installed, use "
        "fsaverage as template anatomy (with a warning) instead of failing.",
    )


def _section(name: str, doc: str, *parts: type) -> type:
    """A mutable configuration section made of the fields of the frozen ``parts`` (options
    objects of the processing steps, or the configuration's own), in order: each option is
    declared once, in its part, with its default, documentation and allowed values."""
    fields = []
    for part in parts:
        hints = typing.get_type_hints(part)
        for f in dataclasses.fields(part):
            fields.append((f.name, hints[f.name], field(
                default=f.default, default_factory=f.default_factory, metadata=f.metadata)))
    return dataclasses.make_dataclass(name, fields, namespace={"__doc__": doc,
                                                               "__module__": __name__})


WorkflowConfig = _section("WorkflowConfig",
                          "Design of the experiment: conditions, blocks and run pairing.",
                          DesignOptions, _RunPairing)
AnatomyConfig = _section("AnatomyConfig",
                         "Surfaces, analysis grid, parcellation and head model.",
                         _AtlasChoice, ParcellationOptions, HeadModelOptions, _TemplateAnatomy)
FMRIConfig = _section("FMRIConfig", "fMRI block estimates (paper section 2.5 / DESIGN 4.2).",
                      BlockOptions, RegistrationOptions)
MEGConfig = _section("MEGConfig",
                     "MEG preprocessing and event-related DICS (paper section 2.6 / DESIGN 4.3).",
                     MaxwellOptions, EpochOptions, DICSOptions)
StatsConfig = _section("StatsConfig", "Group statistics (paper section 2.7 / DESIGN 5).",
                       GroupStatsOptions)

#: The section of the configuration that holds each options object's fields.
OPTION_SECTIONS: dict[type, str] = {
    DesignOptions: "workflow", ParcellationOptions: "anatomy", HeadModelOptions: "anatomy",
    BlockOptions: "fmri", RegistrationOptions: "fmri", MaxwellOptions: "meg",
    EpochOptions: "meg", DICSOptions: "meg", GroupStatsOptions: "stats",
}


@dataclass
class NipypeConfig:
    """How the nipype graph is executed."""

    plugin: str = _opt("MultiProc", "Nipype execution plugin.", allowed=NIPYPE_PLUGINS)
    plugin_args: dict[str, Any] = _opt(
        dict, "Arguments of the plugin (nipype's names): " + ", ".join(
            f"{name} ({_describe(hint, **allows)})" for name, (hint, allows) in PLUGIN_ARGS.items()
        ) + ". Other names are refused.",
        factory=True,
    )
    nprocs: int | None = _opt(None, "Processes in parallel. Default: all CPUs.",
                              bounds=AT_LEAST_1)
    omp_nthreads: int | None = _opt(
        None, "Threads of the numerical libraries (BLAS, OpenMP, ITK) in each step, and the cores "
        "the scheduler reserves for it; at most nprocs. Default: nprocs - 1 (at least 1, at "
        "most 8), as fMRIPrep.", bounds=AT_LEAST_1,
    )
    mem_gb: float | None = _opt(
        None, "Memory available to the run (GB), for the scheduler; at least what the largest "
        "step needs (checked before the run). Default: the machine's memory.", bounds=POSITIVE,
    )
    stop_on_first_crash: bool = _opt(False, "Stop at the first failing step.")


@dataclass
class SeedsConfig:
    """Random seeds; every run into one output folder uses the same seed."""

    random_seed: int | None = _opt(
        None, "Master seed (ANTs sampling, bootstrap). Default: the output folder's seed, "
        "saved in <output_dir>/logs/random-seed by the first run into the folder, which draws "
        "it (or saves the seed it was given).",
        bounds=Range(0, 2**31 - 1),
    )


SECTIONS: dict[str, type] = {
    "execution": ExecutionConfig,
    "workflow": WorkflowConfig,
    "anatomy": AnatomyConfig,
    "fmri": FMRIConfig,
    "meg": MEGConfig,
    "stats": StatsConfig,
    "nipype": NipypeConfig,
    "seeds": SeedsConfig,
}


@dataclass
class Config:
    """All settings of one run, grouped in sections (``config.meg.bands``, ...)."""

    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)
    fmri: FMRIConfig = field(default_factory=FMRIConfig)
    meg: MEGConfig = field(default_factory=MEGConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    nipype: NipypeConfig = field(default_factory=NipypeConfig)
    seeds: SeedsConfig = field(default_factory=SeedsConfig)

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "configuration") -> Config:
        """Build a configuration from nested ``{section: {option: value}}`` data.

        Unknown sections or options and values of the wrong type raise :class:`ConfigError`
        naming the option, what is allowed, and ``source`` (e.g. the TOML file).
        """
        config = cls()
        config.update(data, source=source)
        return config

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a configuration saved by an earlier run (or written by hand)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"Configuration file not found: {path}") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"Configuration file {path} is not UTF-8 text ({err.reason} at "
                              f"byte {err.start}); save it as UTF-8.") from None
        except OSError as err:
            raise ConfigError(f"Configuration file {path} cannot be read: "
                              f"{err.strerror or err}.") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"Configuration file {path} is not valid TOML: {err}") from None
        return cls.from_dict(data, source=str(path))

    def update(self, data: dict[str, Any], *, source: str = "configuration",
               names: dict[str, str] | None = None) -> None:
        """Set options from nested data, checking names, types and allowed values.

        ``source`` says where the data come from ("the command line", a file) and ``names``
        how that source spells an option (``{"nipype.nprocs": "--nprocs"}``), for messages.
        """
        for section_name, values in data.items():
            if section_name not in SECTIONS:
                raise ConfigError(
                    f"Unknown section [{section_name}] in {source}; allowed are "
                    f"{', '.join(SECTIONS)}."
                )
            if not isinstance(values, dict):
                raise ConfigError(f"[{section_name}] in {source} must be a table of options.")
            section = getattr(self, section_name)
            known = {f.name: f for f in dataclasses.fields(section)}
            for name, value in values.items():
                if name not in known:
                    raise ConfigError(
                        f"Unknown option '{section_name}.{name}' in {source}; allowed are "
                        f"{', '.join(known)}."
                    )
                key = f"{section_name}.{name}"
                what = (f"{names[key]} ('{key}')" if names and key in names else f"'{key}'")
                setattr(section, name,
                        _coerce(key, f"{what} in {source}", value, known[name], type(section)))
        self.validate(source)

    def validate(self, source: str | None = None) -> None:
        """Check what a single option's type and range cannot: relations between options and
        the content of the tables (BIDS filters, plugin arguments). ``source``: where the
        last values came from, for messages."""
        meg, stats, nipype = self.meg, self.stats, self.nipype
        if not meg.bands:
            raise ConfigError(
                "'meg.bands' holds no band" + (f" (in {source})" if source else "") + ": give at "
                "least one, e.g. [meg.bands] alpha = [8.0, 13.0], or leave the option out for "
                "the paper's six bands."
            )
        for name, edges in meg.bands.items():
            if len(edges) != 2 or not edges[0] < edges[1]:
                raise ConfigError(
                    f"Invalid value for 'meg.bands.{name}': expected [fmin, fmax] with "
                    f"0 < fmin < fmax (Hz), got {edges}."
                )
        if len(meg.baseline_ms) != 2 or meg.baseline_ms[0] >= meg.baseline_ms[1]:
            raise ConfigError(
                f"Invalid value for 'meg.baseline_ms': expected [start, end] with start < end, "
                f"got {meg.baseline_ms}."
            )
        epoch = (1000 * meg.tmin_s, 1000 * meg.tmax_s)
        spans = {
            "The baseline (meg.baseline_ms)": tuple(meg.baseline_ms),
            "The analysis windows (meg.first_window_start_ms, window_step_ms, n_windows, "
            "window_length_ms)": (meg.first_window_start_ms,
                                  self.window_starts_ms()[-1] + meg.window_length_ms),
        }
        for what, (start, end) in spans.items():
            if start < epoch[0] - 1e-6 or end > epoch[1] + 1e-6:  # ms; rounding of the steps
                raise ConfigError(
                    f"{what} span {start:g} to {end:g} ms, outside the epoch {epoch[0]:g} to "
                    f"{epoch[1]:g} ms (meg.tmin_s, meg.tmax_s). Widen the epoch or move the "
                    "windows inside it."
                )
        if len(set(stats.ci_levels)) != len(stats.ci_levels) or not stats.ci_levels:
            raise ConfigError(
                f"'stats.ci_levels' must list distinct levels, got {stats.ci_levels}."
            )
        if len(set(self.workflow.conditions)) != len(self.workflow.conditions) or not (
            self.workflow.conditions
        ):
            raise ConfigError(
                f"'workflow.conditions' must list distinct condition names, got "
                f"{self.workflow.conditions}."
            )
        from bids_app.stats.bootstrap import resample_size

        if resample_size(stats.min_observations, stats.bootstrap_fraction) < 3:
            enough = next(n for n in range(3, 10**6)
                          if resample_size(n, stats.bootstrap_fraction) >= 3)
            raise ConfigError(
                f"'stats.min_observations' ({stats.min_observations}) with "
                f"'stats.bootstrap_fraction' ({stats.bootstrap_fraction:g}) lets the group level "
                "accept so few observations that a bootstrap resample draws fewer than the 3 a "
                f"rank correlation needs: set min_observations to at least {enough}, or raise "
                "bootstrap_fraction."
            )
        if self.execution.boilerplate_only and self.execution.analysis_level == "group":
            raise ConfigError(
                "--boilerplate-only ('execution.boilerplate_only') writes the methods text of the "
                "participant level (logs/CITATION.md) and stops; the group level has no such step "
                "and would run in full. Give it with 'participant', or leave it out."
            )
        if self.execution.slurm_script and self.execution.analysis_level == "group":
            raise ConfigError(
                "--slurm-script ('execution.slurm_script') prints the submission script of both "
                "levels from the participant level's data; give it with 'participant'."
            )
        if None not in (nipype.nprocs, nipype.omp_nthreads) and (
            nipype.omp_nthreads > nipype.nprocs
        ):
            raise ConfigError(
                f"'nipype.omp_nthreads' (--omp-nthreads, {nipype.omp_nthreads}) cannot exceed "
                f"'nipype.nprocs' (--nprocs, {nipype.nprocs})."
            )
        _check_filters(self.execution.bids_filters, source)
        where = f"in {source}" if source else "(nipype.plugin_args, e.g. from --use-plugin)"
        for name, value in nipype.plugin_args.items():
            if name not in PLUGIN_ARGS:
                raise ConfigError(
                    f"Unknown plugin argument '{name}' {where}; nipype's are "
                    f"{', '.join(PLUGIN_ARGS)}."
                )
            hint, allows = PLUGIN_ARGS[name]
            nipype.plugin_args[name] = _checked(f"the plugin argument '{name}' {where}", value,
                                                hint, **allows)

    # -- derived values ---------------------------------------------------------------------------
    def options(self, cls: type[T]) -> T:
        """The settings of one processing step as its frozen options object
        (``config.options(DICSOptions)``), from the section that holds them."""
        section = getattr(self, OPTION_SECTIONS[cls])
        return cls(**{f.name: copy.deepcopy(getattr(section, f.name))
                      for f in dataclasses.fields(cls)})

    def window_starts_ms(self) -> list[float]:
        """Start (ms) of every analysis window (22 starts 100, 133.3, ..., 800 by default)."""
        return self.options(DICSOptions).window_starts_ms

    # -- saving -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain data (paths as strings, ``None`` left out) ready for TOML."""
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            section = getattr(self, name)
            values = {}
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                if value is None:
                    continue
                values[f.name] = _plain(value)
            out[name] = values
        return out

    def to_toml(self) -> str:
        """The configuration as TOML text (loadable with :meth:`from_toml`)."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(name: str, what: str, value: Any, f: dataclasses.Field, owner: type) -> Any:
    """``value`` for option ``f`` (``name`` = 'section.option', ``what``: the option and where
    it came from, for messages), checked against its declared type, choices, range and
    pattern."""
    hint = typing.get_type_hints(owner)[f.name]
    allows = {key: f.metadata.get(key) for key in ("allowed", "bounds", "pattern")}
    return _checked(what, value, hint, **allows)


def _checked(what: str, value: Any, hint: Any, *, allowed: tuple | None = None,
             bounds: Range | None = None, pattern: tuple[str, str] | None = None) -> Any:
    """``value`` converted to the type ``hint`` and checked; :class:`ConfigError` naming
    ``what`` (the option and where it came from) and what is allowed otherwise."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ConfigError(f"Option {what} cannot be empty.")
    base = next(a for a in args if a is not type(None)) if optional else hint
    expected = _describe(base, allowed, bounds, pattern)
    try:
        value = _convert(value, base)
    except (TypeError, ValueError):
        raise ConfigError(f"Invalid value for {what}: expected {expected}, got {value!r}.") from None
    if allowed is not None and value not in allowed:
        raise ConfigError(
            f"Invalid value for {what}: allowed are {', '.join(repr(a) for a in allowed)}, got "
            f"{value!r}."
        )
    bad = [x for x in _leaves(value) if not (
        x in bounds if bounds is not None and isinstance(x, (int, float))
        else re.fullmatch(pattern[0], x) if pattern is not None and isinstance(x, str)
        else True)]
    if bad:
        where = "" if bad[0] is value else f" in {value!r}"
        raise ConfigError(f"Invalid value for {what}: expected {expected}, got {bad[0]!r}{where}.")
    return value


def _convert(value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` (Path, bool, int, float, str, list[...], dict[str, ...] or
    Any); TypeError when it is not one. Numbers are never read from text."""
    origin = typing.get_origin(hint) or hint
    if hint is Any:
        return value
    if origin is Path:
        if not isinstance(value, (str, Path)):
            raise TypeError
        return Path(value)
    if origin is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    if origin in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        if origin is int and not float(value).is_integer():
            raise TypeError
        return origin(value)
    if origin is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError
        (item,) = typing.get_args(hint)
        if item is str:  # condition names and labels may be written as numbers (trial_type 1)
            return [_text(v) for v in value]
        return [_convert(v, item) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError
        _key, item = typing.get_args(hint) or (str, Any)
        return {str(k): _convert(v, item) for k, v in value.items()}
    raise TypeError


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError


def _leaves(value: Any) -> list:
    """Every scalar inside ``value`` (itself, the items of a list, the values of a table)."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def _check_filters(filters: dict[str, Any], source: str | None = None) -> None:
    """The BIDS filters: known queries and entities; values a pybids query accepts."""
    where = (f"in {source}" if source
             else "in the BIDS filters (--bids-filter-file or execution.bids_filters)")
    for query, entities in filters.items():
        if query not in FILTER_QUERIES:
            raise ConfigError(f"Invalid query '{query}' {where}; allowed are "
                              f"{', '.join(FILTER_QUERIES)}.")
        if not isinstance(entities, dict):
            raise ConfigError(f"The filters for '{query}' {where} must be an object of "
                              f"entity: value, got {entities!r}.")
        for name, value in entities.items():
            if name not in FILTER_ENTITIES:
                raise ConfigError(f"Invalid entity '{name}' for '{query}' {where}; allowed are "
                                  f"{', '.join(FILTER_ENTITIES)}.")
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list) and not value or not all(
                isinstance(v, (str, int, float)) or (v is None and len(items) == 1)
                for v in items
            ):
                raise ConfigError(
                    f"Invalid value for entity '{name}' of '{query}' {where}: expected a text, a "
                    f"number, true/false, null or a list of texts and numbers, got {value!r}."
                )


class Option(typing.NamedTuple):
    """One option as declared: where it lives, its type, default, documentation and what it
    allows (``allowed`` choices, ``bounds`` of its numbers, ``pattern`` of its texts)."""

    section: str
    name: str
    hint: Any
    default: Any
    doc: str
    allowed: tuple | None
    bounds: Range | None
    pattern: tuple[str, str] | None

    @property
    def key(self) -> str:
        """``section.name``."""
        return f"{self.section}.{self.name}"

    def describe(self) -> str:
        """What a value must be, in words ('an integer >= 1', 'one of ...')."""
        args = typing.get_args(self.hint)
        base = next(a for a in args if a is not type(None)) if type(None) in args else self.hint
        return _describe(base, self.allowed, self.bounds, self.pattern)


def iter_options():
    """Yield an :class:`Option` for every option, section by section (docs and tests)."""
    for section_name, section_cls in SECTIONS.items():
        defaults = section_cls()
        hints = typing.get_type_hints(section_cls)
        for f in dataclasses.fields(section_cls):
            yield Option(section_name, f.name, hints[f.name], getattr(defaults, f.name),
                         f.metadata.get("doc", ""), f.metadata.get("allowed"),
                         f.metadata.get("bounds"), f.metadata.get("pattern"))


def find_option(key: str) -> Option:
    """The :class:`Option` named ``section.name``."""
    for option in iter_options():
        if option.key == key:
            return option
    raise KeyError(key)


def options_markdown() -> str:
    """Every option as Markdown tables, one per section (``docs/configuration.md``)."""
    lines = [
        "# Configuration",
        "",
        "Every option of megfmri-fusion, with its default and the values it allows. Set them in",
        "a TOML file given with `--config` (sections as below, e.g. `[meg]` then",
        "`eog_reject_uv = 120.0`); options given on the command line win. Each run saves its",
        "effective configuration to `<output_dir>/logs/config-<run id>.toml`.",
        "",
        "Every value is checked against the 'allowed' column wherever it comes from (command",
        "line, TOML file, saved configuration) before any work starts; a value outside it stops",
        "the app with a message naming the option and exit code 64. Numbers are written as",
        "numbers (`8.0`, not `\"8.0\"`); an option left out keeps its default.",
        "",
        "This page is generated from `bids_app/config.py` (`python -m bids_app.config`).",
    ]
    current = None
    for option in iter_options():
        if option.section != current:
            current = option.section
            lines += ["", f"## [{current}]", "", SECTIONS[current].__doc__.strip(), "",
                      "| option | default | allowed | meaning |", "| --- | --- | --- | --- |"]
        shown = "unset" if option.default is None else f"`{_plain(option.default)}`"
        lines.append(f"| `{option.name}` | {shown} | {option.describe()} | {option.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m bids_app.config > docs/configuration.md
    print(options_markdown(), end="")
