"""Write BIDS-Derivatives: names, tables with JSON sidecars, and the dataset description.

Every file is written atomically (to a temporary name in the same folder, then renamed), so a
crash or a parallel job never leaves a half-written file that looks complete, and several
participant jobs can share one output folder. A table's JSON sidecar is written before the table
itself: a table that exists is complete and described.

The column descriptions of every output table (DESIGN 6) live here, in :data:`COLUMNS`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from isal import igzip

from bids_app import __version__

LOGGER = logging.getLogger(__name__)

APP_NAME = "megfmri-fusion"
CODE_URL = "https://github.com/megfmri-fusion/megfmri-fusion"

#: The methods texts in ``<output_dir>/logs``: the participant level's, then the group level's.
CITATION_FILES = {"participant": "CITATION.md", "group": "CITATION-group.md"}

#: Order of entities in file names (BIDS specification, appendix "Entity table").
ENTITY_ORDER = ("sub", "ses", "task", "acq", "run", "hemi", "space", "atlas", "desc")

_BAND_LEVELS = {
    "theta": "4-7 Hz", "alpha": "8-13 Hz", "lowbeta": "15-21 Hz", "highbeta": "23-29 Hz",
    "lowgamma": "36-46 Hz", "highgamma": "54-90 Hz",
}

#: Descriptions of every column the app writes (BIDS sidecar style).
#: What ``significant`` means for each ``stats.correction`` (see :func:`significance_description`).
SIGNIFICANCE_RULES = {
    "bonferroni-windows": "p < alpha / n_windows (Bonferroni correction over the windows, as in "
                          "the paper)",
    "none": "p < alpha (no correction for multiple comparisons)",
}

COLUMNS: dict[str, dict[str, Any]] = {
    "index": {"Description": "Integer label of the parcel (row number in the parcellation)."},
    "name": {"Description": "Parcel name: atlas label name, '_divN' for split parts, '-lh'/'-rh'."},
    "parcel": {"Description": "Parcel name, as in the atlas-<atlas>_dseg.tsv 'name' column."},
    "hemi": {"Description": "Hemisphere.", "Levels": {"lh": "left", "rh": "right"}},
    "n_vertices": {"Description": "Number of fsaverage5 (ico-5) vertices in the parcel."},
    "included": {"Description": "Whether the parcel enters the analysis (false: excluded as "
                 "artefact-prone or with signal loss in one modality)."},
    "condition": {"Description": "Condition (events trial_type)."},
    "condition_a": {"Description": "First condition of the paired comparison."},
    "condition_b": {"Description": "Second condition of the paired comparison."},
    "block": {"Description": "Block label within the run (events 'block' column, or numbered "
              "in time order)."},
    "value": {"Description": "Value before normalisation."},
    "normalized": {"Description": "Value normalised per subject and run: minus the mean over all "
                   "blocks of all conditions, divided by the standard deviation of the run's "
                   "values."},
    "band": {"Description": "Frequency band.", "Levels": _BAND_LEVELS},
    "window_start_ms": {"Description": "Start of the 200-ms analysis window relative to picture "
                        "onset.", "Units": "ms"},
    "relchange": {"Description": "DICS source power relative change from the block's baseline, "
                  "(post - baseline) / baseline, averaged over the parcel's grid points."},
    "subject": {"Description": "Participant label (without 'sub-')."},
    "session": {"Description": "Session label of the pairing (n/a when runs pair across sessions)."},
    "run": {"Description": "Run label shared by the paired MEG and BOLD runs."},
    "rho": {"Description": "Spearman rank correlation between MEG and fMRI values over the "
            "observations (subject x run)."},
    "p": {"Description": "Two-sided p-value (uncorrected)."},
    "t": {"Description": "Paired t statistic (condition_a minus condition_b)."},
    "significant": {"Description": f"True where {SIGNIFICANCE_RULES['bonferroni-windows']}."},
    "cluster": {"Description": "Ward cluster number (1..K)."},
    "leaf_order": {"Description": "Position of the parcel in the optimal leaf order of the "
                   "dendrogram (0-based)."},
    "ci99_low": {"Description": "Lower bound of the 99% bootstrap percentile interval of rho."},
    "ci99_high": {"Description": "Upper bound of the 99% bootstrap percentile interval of rho."},
    "ci999_low": {"Description": "Lower bound of the 99.9% bootstrap percentile interval of rho."},
    "ci999_high": {"Description": "Upper bound of the 99.9% bootstrap percentile interval of rho."},
    "start_ms": {"Description": "Start of the effect (start of its first window).", "Units": "ms"},
    "end_ms": {"Description": "End of the effect (end of its last window).", "Units": "ms"},
    "ci_level": {"Description": "Bootstrap interval level at which the conditions' intervals "
                 "do not overlap."},
}


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------
def bids_name(entities: Mapping[str, Any], suffix: str, extension: str) -> str:
    """Build a BIDS file name from entities (short keys: sub, ses, task, run, atlas, desc...).

    The app's own code rather than a library's (issue 22): ``mne_bids.BIDSPath`` has no
    ``atlas`` or ``hemi`` entity and builds none of the app's names (it drops ``atlas-``), and
    pybids' ``build_path`` with its BIDS and derivatives path patterns gives no name for six of
    the seven kinds of file and drops ``atlas-`` and ``desc-`` from the seventh
    (``tests/test_field_libraries.py``). The names are a contract (DESIGN 6), so they are built
    here, in :data:`ENTITY_ORDER`.

    >>> bids_name({"sub": "01", "task": "naming", "run": "1", "desc": "blocks"}, "bold", ".tsv")
    'sub-01_task-naming_run-1_desc-blocks_bold.tsv'
    """
    unknown = set(entities) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f"unknown entities {sorted(unknown)}; allowed are {ENTITY_ORDER}")
    parts = [f"{key}-{entities[key]}" for key in ENTITY_ORDER if entities.get(key) not in (None, "")]
    return "_".join(parts + [suffix]) + extension


def participant_path(output_dir: Path, entities: Mapping[str, Any], datatype: str, suffix: str,
                     extension: str) -> Path:
    """``<out>/sub-<s>/[ses-<x>/]<datatype>/<name>`` for a participant-level derivative."""
    folder = Path(output_dir) / f"sub-{entities['sub']}"
    if entities.get("ses"):
        folder = folder / f"ses-{entities['ses']}"
    return folder / datatype / bids_name(entities, suffix, extension)


# --------------------------------------------------------------------------------------------------
# Atomic writing
# --------------------------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: Path, dst: Path) -> Path:
    """Copy a file atomically (for files produced in the work directory)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Write a JSON file atomically (sorted keys off, 2-space indent, trailing newline)."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------
def table_sidecar(columns: Iterable[str], description: str, *,
                  column_descriptions: Mapping[str, str] | None = None,
                  **extra: Any) -> dict[str, Any]:
    """A JSON sidecar describing each column of a table (from :data:`COLUMNS`).

    ``column_descriptions`` replaces the ``Description`` of columns whose meaning depends on the
    run's settings (e.g. ``significant``); ``extra`` adds top-level keys.
    """
    sidecar: dict[str, Any] = {"Description": description}
    sidecar.update(extra)
    replaced = dict(column_descriptions or {})
    for column in columns:
        if column not in COLUMNS:
            raise KeyError(f"column '{column}' has no description in bids_app.io.derivatives.COLUMNS")
        sidecar[column] = dict(COLUMNS[column])
        if column in replaced:
            sidecar[column]["Description"] = replaced[column]
    return sidecar


def significance_description(correction: str, cluster_rho: str, *,
                             cluster_level: bool = False) -> str:
    """What the ``significant`` column of a group table means under the run's settings."""
    rule = SIGNIFICANCE_RULES[correction]
    if cluster_level and cluster_rho == "mean-parcel-rho":
        return ("True where at least one of the cluster's parcels in this hemisphere has "
                f"{rule} in this condition, band and window; rho is the mean of the parcels' rho "
                "and has no p-value.")
    return f"True where {rule}."


def tsv_bytes(table: pd.DataFrame, *, compress: bool = False) -> bytes:
    """A table as BIDS TSV bytes (``n/a`` for missing values; gzip without a timestamp).

    Floats are written with the shortest text that reads back as the same number (Python's
    ``repr``, pandas' default), so that statistics recomputed from a table equal those the app
    computed: fewer digits turn values that differ in their last bits into ties, which change
    rank correlations (issue 19). It costs about a third more bytes than 10 digits
    (docs/outputs.md).
    """
    buffer = io.StringIO()
    table.to_csv(buffer, sep="\t", index=False, na_rep="n/a", lineterminator="\n")
    data = buffer.getvalue().encode("utf-8")
    return gzip_bytes(data) if compress else data


def write_tsv(table: pd.DataFrame, path: Path) -> Path:
    """Write a table without sidecar (a step's result in the work folder) in the format of
    :func:`tsv_bytes`, so that the derivative made from it holds the values as computed."""
    path = Path(path)
    return atomic_write_bytes(path, tsv_bytes(table, compress=path.name.endswith(".gz")))


def gzip_bytes(data: bytes) -> bytes:
    """gzip ``data`` without a time stamp (the same input gives the same bytes).

    ISA-L's compressor (``isal``) at level 2: 6x faster than zlib's level 1, which nibabel
    uses, at a slightly smaller size (a simulated 40-MB BOLD run: 0.18 s against 1.06 s).
    """
    return igzip.compress(data, 2, mtime=0)


def save_nifti_gz(img, path: Path) -> Path:
    """Write a NIfTI image as ``.nii.gz`` (the bytes nibabel writes, compressed with
    :func:`gzip_bytes`), atomically."""
    return atomic_write_bytes(path, gzip_bytes(img.to_bytes()))


def sidecar_path(path: Path) -> Path:
    """The JSON sidecar of a BIDS file: its name up to the first dot, plus ``.json``
    (``x.tsv``, ``x.tsv.gz`` or ``x.label.gii`` -> ``x.json``)."""
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".json")


def raw_uri(source_file: str | Path) -> str:
    """BIDS URI of a file of the raw dataset: ``bids:raw:<path from the sub- folder>``
    (the file name alone for a file outside a subject folder)."""
    parts = Path(source_file).parts
    for i, part in enumerate(parts):
        if part.startswith("sub-"):
            return "bids:raw:" + "/".join(parts[i:])
    return "bids:raw:" + Path(source_file).name


def write_table(table: pd.DataFrame, path: Path, *, description: str,
                column_descriptions: Mapping[str, str] | None = None,
                **sidecar_extra: Any) -> Path:
    """Write a table (``.tsv`` or ``.tsv.gz``) and its JSON sidecar, sidecar first
    (:func:`table_sidecar` takes ``column_descriptions`` and ``sidecar_extra``).

    Returns the path of the table.
    """
    path = Path(path)
    name = path.name
    if not (name.endswith(".tsv") or name.endswith(".tsv.gz")):
        raise ValueError(f"a table must be written to .tsv or .tsv.gz, got {name}")
    write_json(sidecar_path(path),
               table_sidecar(table.columns, description,
                             column_descriptions=column_descriptions, **sidecar_extra))
    return atomic_write_bytes(path, tsv_bytes(table, compress=name.endswith(".gz")))


def read_table(path: Path) -> pd.DataFrame:
    """Read a TSV (optionally gzipped) written by :func:`write_table`.

    Floats are parsed exactly (``float_precision="round_trip"``): pandas 2's default parser
    can be one unit in the last place off, which would break the exact round trip of
    :func:`tsv_bytes` (measured with pandas 2.2: 9 of 12 block values 1e-16 off).
    """
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                       compression="gzip" if str(path).endswith(".gz") else None,
                       float_precision="round_trip")


# --------------------------------------------------------------------------------------------------
# Dataset description
# --------------------------------------------------------------------------------------------------
def container_info() -> dict[str, str] | None:
    """Describe the container the app runs in (for GeneratedBy), or None outside one.

    The image sets ``MEGFMRI_CONTAINER`` (``docker``), ``MEGFMRI_CONTAINER_TAG`` (the image's
    name and version) and ``MEGFMRI_VCS_REF`` (the source revision it was built from), from the
    build arguments of the Dockerfile; Apptainer/Singularity add the image file's path.
    """
    kind = os.environ.get("MEGFMRI_CONTAINER")
    if os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER"):
        kind = "singularity"
    if not kind:
        return None
    info = {"Type": kind}
    tag = os.environ.get("MEGFMRI_CONTAINER_TAG")
    image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if tag:
        info["Tag"] = tag
        info["URI"] = f"docker://{tag}"
    if image:
        info["URI"] = f"file://{image}" if image.startswith("/") else image
        info.setdefault("Tag", Path(image).name)
    return info


#: Packages whose versions decide the results (distribution names), recorded in GeneratedBy.
RECORDED_PACKAGES = ("mne", "mne-bids", "nipype", "pybids", "nibabel", "nilearn", "templateflow",
                     "numpy", "scipy", "pandas", "antspyx", "matplotlib")


def freesurfer_version() -> str | None:
    """FreeSurfer's version from ``$FREESURFER_HOME`` (``VERSION`` or ``build-stamp.txt``), or
    None when FreeSurfer is not installed."""
    home = os.environ.get("FREESURFER_HOME")
    if not home:
        return None
    for name in ("VERSION", "build-stamp.txt"):
        path = Path(home) / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if text:
            return text.splitlines()[0].strip()
    return None


def software_versions() -> list[dict[str, str]]:
    """GeneratedBy entries of the software the app ran on: Python, the exact versions of the
    packages in :data:`RECORDED_PACKAGES` (installed metadata, so a derivative records what
    ran, not what a file says), and FreeSurfer when installed."""
    import platform
    from importlib import metadata

    entries = [{"Name": "Python", "Version": platform.python_version()}]
    for name in RECORDED_PACKAGES:
        try:
            entries.append({"Name": name, "Version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            continue
    fs = freesurfer_version()
    if fs:
        entries.append({"Name": "FreeSurfer", "Version": fs})
    return entries


def dataset_description(bids_dir: Path) -> dict[str, Any]:
    """The ``dataset_description.json`` content of the derivatives.

    ``GeneratedBy`` holds the app (with its container and source revision when it runs in the
    image) followed by the exact versions of the software it ran on
    (:func:`software_versions`).
    """
    generated: dict[str, Any] = {"Name": APP_NAME, "Version": __version__, "CodeURL": CODE_URL}
    revision = os.environ.get("MEGFMRI_VCS_REF")
    if revision:
        generated["Description"] = f"Built from source revision {revision}."
    container = container_info()
    if container:
        generated["Container"] = container
    source: dict[str, Any] = {"URL": Path(bids_dir).resolve().as_uri()}
    try:
        raw = json.loads((Path(bids_dir) / "dataset_description.json").read_text())
        if raw.get("DatasetDOI"):
            doi = str(raw["DatasetDOI"])
            source = {"DOI": doi if doi.startswith("doi:") else f"doi:{doi}",
                      "URL": source["URL"]}
        if raw.get("Name"):
            source["Name"] = raw["Name"]
    except (OSError, json.JSONDecodeError):
        pass
    return {
        "Name": f"{APP_NAME} derivatives",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated, *software_versions()],
        "SourceDatasets": [source],
        "HowToAcknowledge": "Cite the methods text in logs/CITATION.md.",
    }


#: Files of the derivatives that no BIDS-Derivatives rule covers (reports, figures, logs and
#: the tables named by DESIGN 6), for ``<out>/.bidsignore`` as fMRIPrep does. A directory is
#: named without a trailing slash: bids-validator-deno then ignores the folder itself too.
BIDSIGNORE = ("*.html", "logs", "figures", "group", "*_desc-blocks_bold.*", "*_desc-dics_meg.*")


def write_dataset_description(output_dir: Path, bids_dir: Path) -> Path:
    """Write ``<out>/dataset_description.json`` atomically (idempotent for parallel jobs), and
    add the :data:`BIDSIGNORE` patterns missing from ``<out>/.bidsignore`` (lines already in
    it are kept)."""
    output_dir = Path(output_dir)
    ignore = output_dir / ".bidsignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    missing = [pattern for pattern in BIDSIGNORE if pattern not in lines]
    if missing:
        atomic_write_text(ignore, "\n".join(lines + missing) + "\n")
    path = output_dir / "dataset_description.json"
    content = dataset_description(bids_dir)
    if path.exists():
        try:
            before = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            before = None
        if before == content:
            return path
        if isinstance(before, dict) and (_versions_text(before.get("GeneratedBy"))
                                         != _versions_text(content["GeneratedBy"])):
            LOGGER.warning(
                "The output folder %s holds results made with other software versions (%s); "
                "dataset_description.json now records this run's (%s). Use one image or "
                "environment for all participants of a study.", output_dir,
                _versions_text(before.get("GeneratedBy")), _versions_text(content["GeneratedBy"]))
    return write_json(path, content)


def _versions_text(generated: Any) -> str:
    """``name version`` of every GeneratedBy entry, with the image's tag when in one."""
    if not isinstance(generated, list):
        return "unknown"
    parts = []
    for entry in generated:
        if isinstance(entry, dict):
            image = (entry.get("Container") or {}).get("Tag")
            parts.append(f"{entry.get('Name')} {entry.get('Version')}"
                         + (f" (image {image})" if image else ""))
    return ", ".join(parts)


#: ``SpatialReference`` of files on FreeSurfer's fsaverage meshes (a BIDS standard space).
FSAVERAGE_REFERENCE = "https://surfer.nmr.mgh.harvard.edu/fswiki/FsAverage"


def surface_dseg_path(output_dir: Path, atlas: str, hemi: str) -> Path:
    """The parcellation on fsaverage5 as a label GIFTI, one per hemisphere (``lh``/``rh``):
    ``hemi-<L|R>_space-fsaverage5_atlas-<atlas>_dseg.label.gii`` (BIDS entity order)."""
    side = {"lh": "L", "rh": "R"}[hemi]
    return Path(output_dir) / bids_name({"hemi": side, "space": "fsaverage5", "atlas": atlas},
                                        "dseg", ".label.gii")


# --------------------------------------------------------------------------------------------------
# Names of the files outside the subjects' folders
# --------------------------------------------------------------------------------------------------
def dseg_table_path(output_dir: Path, atlas: str) -> Path:
    """The parcellation's table, written by the participant level and read by the group level
    and the reports: ``<out>/atlas-<atlas>_dseg.tsv``."""
    return Path(output_dir) / bids_name({"atlas": atlas}, "dseg", ".tsv")


def dseg_table_atlases(output_dir: Path) -> list[str]:
    """The atlas entities of the parcellation tables in ``output_dir`` (sorted)."""
    prefix, suffix = "atlas-", "_dseg.tsv"
    return [path.name[len(prefix):-len(suffix)]
            for path in sorted(Path(output_dir).glob(f"{prefix}*{suffix}"))]


#: The group level's tables (DESIGN 6), in ``<out>/group``: key -> (desc entity, suffix,
#: extension, sidecar description).
GROUP_TABLES = {
    "spearman": ("spearman", "stat", ".tsv", "Spearman correlation between MEG band power and "
                 "fMRI block values over the observations, per parcel, condition, band and window "
                 "(DESIGN 5.2)."),
    "clusters": ("ward", "clusters", ".tsv", "Ward clusters of the parcels' correlation patterns "
                 "and the optimal leaf order (DESIGN 5.3)."),
    "bootstrap": ("bootstrap", "stat", ".tsv", "Cluster-level correlation per hemisphere with "
                  "bootstrap percentile intervals (resampling observations without replacement; "
                  "DESIGN 5.4)."),
    "effects": ("effects", "table", ".tsv", "Task-dependent effects: windows where one "
                "condition's interval does not overlap those of the others, with a significant "
                "correlation (DESIGN 5.5; the paper's Table 1)."),
    "megttest": ("megttest", "stat", ".tsv", "Paired t-tests of normalised MEG power between "
                 "conditions per cluster, hemisphere, band and window (DESIGN 5.6)."),
}

#: The observation tables the group level gathers first, in ``<out>/group``
#: (``desc-observations``): modality -> (suffix, extension, sidecar description).
OBSERVATION_TABLES = {
    "meg": ("meg", ".tsv.gz", "MEG normalised band power per observation (subject x run), block "
            "average of each condition (DESIGN 5.1)."),
    "bold": ("bold", ".tsv", "fMRI normalised block values per observation (subject x run), "
             "block average of each condition (DESIGN 5.1)."),
}


def group_table_path(output_dir: Path, task: str, atlas: str, key: str) -> Path:
    """``<out>/group/task-<t>_atlas-<a>_desc-<desc>_<suffix>.tsv`` of a :data:`GROUP_TABLES`
    key."""
    desc, suffix, ext, _ = GROUP_TABLES[key]
    return Path(output_dir) / "group" / bids_name({"task": task, "atlas": atlas, "desc": desc},
                                                   suffix, ext)


def observations_table_path(output_dir: Path, task: str, atlas: str, modality: str) -> Path:
    """``<out>/group/task-<t>_atlas-<a>_desc-observations_<meg|bold>.tsv[.gz]``
    (:data:`OBSERVATION_TABLES`)."""
    suffix, ext, _ = OBSERVATION_TABLES[modality]
    entities = {"task": task, "atlas": atlas, "desc": "observations"}
    return Path(output_dir) / "group" / bids_name(entities, suffix, ext)
