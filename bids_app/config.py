"""The one place settings live.

Every option of the app is a typed field of one of the sections below, with a default (the
published method's value where it has one) and a docstring-like ``doc`` giving units and
allowed values. A :class:`Config` is built once by the command line (defaults, then a TOML file
given with ``--config``, then command-line options, which win), checked, and saved as TOML beside
the outputs (``<output_dir>/logs/config-<run id>.toml``) so that a run can be repeated with
``--config``.

Only :mod:`bids_app.cli` and :mod:`bids_app.workflows` read a :class:`Config`. Workflow factories
take the values they need as keyword arguments, and the pure packages never see it.

Importing this module has no side effects (no environment changes, no files, no network).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The six frequency bands of the method (Hz, inclusive edges), in the paper's order.
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "theta": (4.0, 7.0),
    "alpha": (8.0, 13.0),
    "lowbeta": (15.0, 21.0),
    "highbeta": (23.0, 29.0),
    "lowgamma": (36.0, 46.0),
    "highgamma": (54.0, 90.0),
}

#: Condition names (``trial_type`` values) of the published picture-naming design.
DEFAULT_CONDITIONS: tuple[str, ...] = ("object_object", "action_action", "object_action")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the option and what is allowed."""


def _opt(default: Any, doc: str, *, allowed: tuple | None = None, factory: bool = False):
    """Declare an option with its documentation (and the allowed values, for choices)."""
    metadata = {"doc": doc, "allowed": allowed}
    if factory:
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


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
        "Task labels to analyse. Empty: every task that has both MEG and BOLD runs.",
        factory=True,
    )
    bids_filters: dict[str, Any] = _opt(
        dict,
        "pybids filters per query ('bold', 'meg', 't1w'), as in fMRIPrep's --bids-filter-file.",
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
    boilerplate_only: bool = _opt(False, "Write the methods text only, then stop.")
    reports_only: bool = _opt(
        False, "Only (re)generate the reports from existing derivatives."
    )
    verbosity: int = _opt(0, "0: INFO; 1 or more: DEBUG (each -v adds one).")


@dataclass
class WorkflowConfig:
    """Design of the experiment: conditions, blocks and run pairing."""

    conditions: list[str] = _opt(
        lambda: list(DEFAULT_CONDITIONS),
        "Condition names: the 'trial_type' values of the stimuli, in report order. Other "
        "trial types (instructions, fixation) are ignored.",
        factory=True,
    )
    block_gap_s: float = _opt(
        8.0,
        "When events.tsv has no 'block' column, a gap longer than this (s) between consecutive "
        "same-condition stimuli starts a new block.",
    )
    unpaired_runs: str = _opt(
        "warn",
        "What to do with a run that has MEG but no BOLD (or the reverse): 'warn' skips it with "
        "a warning; 'error' stops with exit code 65.",
        allowed=("warn", "error"),
    )


@dataclass
class AnatomyConfig:
    """Surfaces, analysis grid, parcellation and head model."""

    atlas: str = _opt(
        "auto",
        "Parcellation on fsaverage: 'destrieux' (aparc.a2009s, as in the paper), 'desikan' "
        "(aparc), 'fallback' (data-driven compact parcels on fsaverage5, always available) or "
        "the name of another annotation in fsaverage/label. A named atlas must be found "
        "(docs/anatomy.md lists where the app looks), else the run stops before any work. "
        "'auto': Destrieux when found, else the fallback, announced in the log and reports.",
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
    n_included_per_hemi: int = _opt(
        70,
        "Parcels analysed per hemisphere: the labels left after excluding artefact-prone regions "
        "are split (MNE's PCA split) until this many remain (about 188 parcels in all with "
        "the excluded ones for Destrieux, as in the paper).",
    )
    exclude_regions: list[str] = _opt(
        list,
        "Label-name patterns excluded from the analysis (fnmatch). Empty: the default list "
        "for the atlas (anterior frontal, deep medial, inferior temporal, medial wall).",
        factory=True,
    )
    meg_grid: str = _opt(
        "ico4",
        "Source grid on fsaverage carried to each subject through sphere.reg "
        "(ico4 = 2 x 2562 points).",
        allowed=("ico3", "ico4", "ico5"),
    )
    fmri_grid: str = _opt(
        "ico5",
        "Surface grid on which BOLD is sampled and averaged within parcels (ico5 = fsaverage5).",
        allowed=("ico4", "ico5", "ico6"),
    )
    bem_ico: int = _opt(4, "Icosahedral downsampling of the inner-skull surface for the BEM.")
    bem_conductivity: float = _opt(0.3, "Single-layer BEM conductivity (S/m).")
    allow_template_anatomy: bool = _opt(
        True,
        "When no FreeSurfer reconstruction exists and FreeSurfer is not installed, use "
        "fsaverage as template anatomy (with a warning) instead of failing.",
    )


@dataclass
class FMRIConfig:
    """fMRI block estimates (paper section 2.5 / DESIGN 4.2)."""

    dummy_scans: int = _opt(5, "Volumes discarded at the start of each run.")
    highpass_period_s: float = _opt(
        510.0, "High-pass cut-off period (s) of the discrete-cosine drift basis (SPM)."
    )
    hrf_delay_s: float = _opt(
        3.0,
        "Delay (s) added to block onsets and ends when choosing the volumes of a block and of "
        "the rest before it, to follow the haemodynamic lag.",
    )
    block_volumes: int | None = _opt(
        None, "Volumes averaged per block. Default: derived from the events and TR (11 in the paper)."
    )
    rest_volumes: int | None = _opt(
        None,
        "Rest volumes before each block used as its baseline. Default: derived from the "
        "events and TR (6 in the paper).",
    )
    registration: str = _opt(
        "auto",
        "EPI-to-T1w registration: 'bbregister' (FreeSurfer), 'ants' (rigid mutual information, "
        "ANTsPy), 'auto' (bbregister when FreeSurfer is installed, else ants).",
        allowed=("auto", "bbregister", "ants"),
    )
    projection_fraction: float = _opt(
        0.5, "Where in the cortical ribbon BOLD is sampled (0 = white, 1 = pial)."
    )
    coregistration_init: str = _opt(
        "header",
        "Start of the ANTs EPI-to-T1w registration: 'header' (same session, scanner alignment) "
        "or 'center-of-mass' (T1w and BOLD from different sessions).",
        allowed=("header", "center-of-mass"),
    )


@dataclass
class MEGConfig:
    """MEG preprocessing and event-related DICS (paper section 2.6 / DESIGN 4.3)."""

    maxfilter: bool = _opt(True, "Apply Maxwell filtering (tSSS) unless the file already is SSS-processed.")
    st_duration_s: float | None = _opt(
        10.0, "tSSS buffer length (s); None gives plain SSS."
    )
    st_correlation: float = _opt(0.98, "tSSS subspace correlation limit.")
    origin: str = _opt(
        "auto", "Maxwell-filter expansion origin: 'auto' (fit to digitised head shape) or 'x,y,z' in mm (head frame)."
    )
    find_bad_channels: bool = _opt(
        True, "Detect noisy and flat channels before Maxwell filtering."
    )
    tmin_s: float = _opt(-0.2, "Epoch start relative to each picture (s).")
    tmax_s: float = _opt(1.0, "Epoch end relative to each picture (s).")
    tfr_padding_s: float = _opt(
        0.5, "Data (s) read on both sides of each epoch for the wavelet transform only, so "
        "that windows near the epoch edges are not shortened by zero padding."
    )
    eog_reject_uv: float = _opt(
        150.0, "Reject a trial when any EOG channel exceeds this peak-to-peak amplitude (µV)."
    )
    missing_eog: str = _opt(
        "warn",
        "When a recording has no EOG channel: 'warn' skips rejection with a warning, 'error' stops.",
        allowed=("warn", "error"),
    )
    min_trials_per_block: int = _opt(
        5, "Blocks with fewer trials left after rejection are excluded and reported."
    )
    ch_type: str = _opt("grad", "Sensors used for source estimation.", allowed=("grad", "mag"))
    bands: dict[str, list[float]] = _opt(
        lambda: {k: list(v) for k, v in DEFAULT_BANDS.items()},
        "Frequency bands {name: [fmin, fmax]} in Hz.",
        factory=True,
    )
    freq_step_hz: float = _opt(
        1.0, "Spacing (Hz) of the Morlet wavelet frequencies within each band."
    )
    n_cycles: float = _opt(
        7.0, "Cycles per Morlet wavelet (capped so that a wavelet fits the epoch)."
    )
    window_length_ms: float = _opt(200.0, "Length of each analysis window (ms).")
    first_window_start_ms: float = _opt(100.0, "Start of the first window (ms).")
    window_step_ms: float = _opt(100.0 / 3.0, "Step between window starts (ms).")
    n_windows: int = _opt(22, "Number of analysis windows.")
    baseline_ms: list[float] = _opt(
        lambda: [-200.0, 0.0], "Baseline interval [start, end] (ms).", factory=True
    )
    dics_reg: float = _opt(
        0.2, "Tikhonov regularisation of the DICS filter (fraction of the trace; MNE's default "
        "is 0.05, see docs/meg.md)."
    )
    pick_ori: str = _opt(
        "max-power", "DICS source orientation.", allowed=("max-power", "normal")
    )


@dataclass
class StatsConfig:
    """Group statistics (paper section 2.7 / DESIGN 5)."""

    alpha: float = _opt(0.05, "Family-wise significance level.")
    correction: str = _opt(
        "bonferroni-windows",
        "Multiple-comparison correction: Bonferroni over the time windows (paper) or none.",
        allowed=("bonferroni-windows", "none"),
    )
    n_clusters: int = _opt(17, "Number of Ward clusters of parcels.")
    cluster_rho: str = _opt(
        "pooled",
        "Cluster correlation: 'pooled' correlates cluster-averaged MEG and fMRI values; "
        "'mean-parcel-rho' averages the parcels' rho (no p-value of its own).",
        allowed=("pooled", "mean-parcel-rho"),
    )
    n_bootstrap: int = _opt(10_000, "Bootstrap resamples.")
    bootstrap_fraction: float = _opt(
        0.8, "Share of observations drawn (without replacement) in each resample."
    )
    ci_levels: list[float] = _opt(
        lambda: [0.99, 0.999], "Percentile-interval levels of the bootstrap.", factory=True
    )
    min_observations: int = _opt(5, "Fewest (subject, run) observations the group level accepts.")


@dataclass
class NipypeConfig:
    """How the nipype graph is executed."""

    plugin: str = _opt(
        "MultiProc",
        "Nipype execution plugin (Linear, MultiProc, SLURMGraph, SGEGraph, PBSGraph, ...).",
    )
    plugin_args: dict[str, Any] = _opt(dict, "Arguments of the plugin.", factory=True)
    nprocs: int | None = _opt(None, "Processes in parallel. Default: all CPUs.")
    omp_nthreads: int | None = _opt(
        None, "Threads of the numerical libraries (BLAS, OpenMP, ITK) in each step, and the cores "
        "the scheduler reserves for it. Default: nprocs - 1 (at least 1, at most 8), as fMRIPrep."
    )
    mem_gb: float | None = _opt(None, "Memory available to the run (GB), for the scheduler.")
    stop_on_first_crash: bool = _opt(False, "Stop at the first failing step.")


@dataclass
class SeedsConfig:
    """Random seeds; the run is reproducible when ``random_seed`` is set."""

    random_seed: int | None = _opt(
        None, "Master seed. Default: drawn at start and recorded in the saved configuration."
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
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"Configuration file {path} is not valid TOML: {err}") from None
        return cls.from_dict(data, source=str(path))

    def update(self, data: dict[str, Any], *, source: str = "configuration") -> None:
        """Set options from nested data, checking names, types and allowed values."""
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
                setattr(
                    section,
                    name,
                    _coerce(f"{section_name}.{name}", value, known[name], source, type(section)),
                )
        self.validate()

    def validate(self) -> None:
        """Check relations between options that single types cannot express."""
        for name, edges in self.meg.bands.items():
            if len(edges) != 2 or not 0 < edges[0] < edges[1]:
                raise ConfigError(
                    f"Invalid value for 'meg.bands.{name}': expected [fmin, fmax] with "
                    f"0 < fmin < fmax (Hz), got {edges}."
                )
        if len(self.meg.baseline_ms) != 2 or self.meg.baseline_ms[0] >= self.meg.baseline_ms[1]:
            raise ConfigError(
                f"Invalid value for 'meg.baseline_ms': expected [start, end] with start < end, "
                f"got {self.meg.baseline_ms}."
            )
        if not self.meg.tmin_s < 0 < self.meg.tmax_s:
            raise ConfigError("'meg.tmin_s' must be negative and 'meg.tmax_s' positive.")
        if not 0 < self.stats.bootstrap_fraction <= 1:
            raise ConfigError(
                f"Invalid value for 'stats.bootstrap_fraction': expected a share in (0, 1], "
                f"got {self.stats.bootstrap_fraction}."
            )
        if not 0 < self.stats.alpha < 1:
            raise ConfigError(f"Invalid value for 'stats.alpha': expected (0, 1), got {self.stats.alpha}.")
        for level in self.stats.ci_levels:
            if not 0 < level < 1:
                raise ConfigError(
                    f"Invalid value in 'stats.ci_levels': expected levels in (0, 1), got {level}."
                )
        if len(set(self.workflow.conditions)) != len(self.workflow.conditions) or not (
            self.workflow.conditions
        ):
            raise ConfigError(
                f"'workflow.conditions' must list distinct condition names, got "
                f"{self.workflow.conditions}."
            )
        if self.stats.n_clusters < 1 or self.stats.n_bootstrap < 1:
            raise ConfigError("'stats.n_clusters' and 'stats.n_bootstrap' must be positive.")

    # -- derived values ---------------------------------------------------------------------------
    def window_starts_ms(self) -> list[float]:
        """Start (ms) of every analysis window (22 starts 100, 133.3, ..., 800 by default)."""
        m = self.meg
        return [m.first_window_start_ms + k * m.window_step_ms for k in range(m.n_windows)]

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


def _coerce(name: str, value: Any, f: dataclasses.Field, source: str, owner: type) -> Any:
    """Check ``value`` against the declared type of option ``f`` and convert it."""
    hint = typing.get_type_hints(owner)[f.name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ConfigError(f"Option '{name}' in {source} cannot be empty.")
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    origin = typing.get_origin(base) or base
    allowed = f.metadata.get("allowed")
    try:
        if origin is Path:
            value = Path(value)
        elif origin is bool:
            if not isinstance(value, bool):
                raise TypeError
        elif origin is int:
            if isinstance(value, bool) or not float(value).is_integer():
                raise TypeError
            value = int(value)
        elif origin is float:
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
        elif origin is str:
            if not isinstance(value, str):
                raise TypeError
        elif origin is list:
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise TypeError
            (item,) = typing.get_args(base)
            value = [float(v) if item is float else str(v) if item is str else v for v in value]
        elif origin is dict:
            if not isinstance(value, dict):
                raise TypeError
            value = dict(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Invalid value for '{name}' in {source}: expected {_type_name(base)}, got {value!r}."
        ) from None
    if allowed is not None and value not in allowed:
        raise ConfigError(
            f"Invalid value for '{name}' in {source}: allowed are "
            f"{', '.join(repr(a) for a in allowed)}, got {value!r}."
        )
    return value


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint) or hint
    return {Path: "a path", bool: "true or false", int: "an integer", float: "a number",
            str: "a string", list: "a list", dict: "a table"}.get(origin, str(hint))


def iter_options():
    """Yield ``(section, name, default, doc, allowed)`` for every option (docs and tests)."""
    for section_name, section_cls in SECTIONS.items():
        defaults = section_cls()
        for f in dataclasses.fields(section_cls):
            yield (
                section_name,
                f.name,
                getattr(defaults, f.name),
                f.metadata.get("doc", ""),
                f.metadata.get("allowed"),
            )


def options_markdown() -> str:
    """Every option as Markdown tables, one per section (``docs/configuration.md``)."""
    lines = [
        "# Configuration",
        "",
        "Every option of megfmri-fusion, with its default. Set them in a TOML file given with",
        "`--config` (sections as below, e.g. `[meg]` then `eog_reject_uv = 120.0`); options given",
        "on the command line win. Each run saves its effective configuration to",
        "`<output_dir>/logs/config-<run id>.toml`.",
        "",
        "This page is generated from `bids_app/config.py` (`python -m bids_app.config`).",
    ]
    current = None
    for section, name, default, doc, allowed in iter_options():
        if section != current:
            current = section
            lines += ["", f"## [{section}]", "", SECTIONS[section].__doc__.strip(), "",
                      "| option | default | meaning |", "| --- | --- | --- |"]
        shown = "unset" if default is None else f"`{_plain(default)}`"
        text = doc + (f" Allowed: {', '.join(map(str, allowed))}." if allowed else "")
        lines.append(f"| `{name}` | {shown} | {text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m bids_app.config > docs/configuration.md
    print(options_markdown(), end="")
