"""Brainlife: turn an App's ``config.json`` into a BIDS dataset and the app's options.

Brainlife runs the ``main`` script at the top of the repository in a folder holding
``config.json``, which gives the path of every file of the App's inputs (each input object
staged in a folder of its own) and the user's options, with ``_inputs`` carrying each object's
BIDS entities (``meta``: subject, session, task, run). ``main`` calls this module to lay the
staged files out as a BIDS dataset (symbolic links under their BIDS names, nothing copied) and
to build the command line, then runs ``megfmri-fusion`` (docs/containers.md, "Brainlife").

Inputs (Brainlife datatype: ``config.json`` keys; a list when the input takes several objects,
in the order of ``_inputs``):

- ``meg`` (neuro/meg/fif): ``fif``, ``meg_events``, ``channels``, ``meg_json``, ``coordsystem``,
  optional ``calibration`` and ``crosstalk`` (fine-calibration and cross-talk files);
- ``func`` (neuro/func/task): ``bold``, ``bold_events``, ``bold_json``;
- ``t1w`` (neuro/anat/t1w, optional): ``t1``, ``t1_json``;
- ``freesurfer`` (neuro/freesurfer, optional): ``freesurfer``, the reconstruction's folder.

Options: ``analysis_level`` (``participant``, default, or ``both``: the group level follows
on the same inputs), ``atlas``, ``n_clusters``, ``n_bootstrap``, ``random_seed``, ``nprocs``,
``conditions`` (a list or a space-separated text), and ``settings``, an object of configuration
sections (``{"stats": {"n_bootstrap": 2000}}``) written as the TOML file given with
``--config``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from bids_app.errors import UsageError

#: (input id, config key) -> (datatype folder, BIDS suffix and extension, entities used).
FILES: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]] = {
    ("meg", "fif"): ("meg", "meg.fif", ("sub", "ses", "task", "run")),
    ("meg", "meg_events"): ("meg", "events.tsv", ("sub", "ses", "task", "run")),
    ("meg", "channels"): ("meg", "channels.tsv", ("sub", "ses", "task", "run")),
    ("meg", "meg_json"): ("meg", "meg.json", ("sub", "ses", "task", "run")),
    ("meg", "coordsystem"): ("meg", "coordsystem.json", ("sub", "ses")),
    ("meg", "calibration"): ("meg", "acq-calibration_meg.dat", ("sub", "ses")),
    ("meg", "crosstalk"): ("meg", "acq-crosstalk_meg.fif", ("sub", "ses")),
    ("func", "bold"): ("func", "bold.nii.gz", ("sub", "ses", "task", "run")),
    ("func", "bold_events"): ("func", "events.tsv", ("sub", "ses", "task", "run")),
    ("func", "bold_json"): ("func", "bold.json", ("sub", "ses", "task", "run")),
    ("t1w", "t1"): ("anat", "T1w.nii.gz", ("sub", "ses")),
    ("t1w", "t1_json"): ("anat", "T1w.json", ("sub", "ses")),
}
#: Options of config.json passed on as command-line options.
OPTIONS = {"atlas": "--atlas", "n_clusters": "--n-clusters", "n_bootstrap": "--n-bootstrap",
           "random_seed": "--random-seed", "nprocs": "--nprocs"}
_META = {"sub": "subject", "ses": "session", "task": "task", "run": "run"}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _metas(config: dict, input_id: str) -> list[dict]:
    metas = [item.get("meta") or {} for item in config.get("_inputs", [])
             if item.get("id") == input_id]
    if not metas:
        raise UsageError(f"config.json: _inputs has no '{input_id}' object (its meta gives the "
                         "subject, task and run).")
    return metas


def _name(meta: dict, entities: tuple[str, ...], suffix: str) -> str:
    parts = []
    for key in entities:
        value = meta.get(_META[key])
        if value in (None, ""):
            if key in ("sub", "task"):
                raise UsageError(f"config.json: an input's meta lacks '{_META[key]}'.")
            continue
        if key == "run":
            value = f"{int(value):02d}" if str(value).isdigit() else value
        parts.append(f"{key}-{value}")
    return "_".join(parts + [suffix])


def assemble_bids(config: dict, bids_dir: Path) -> Path:
    """Lay the staged input files out as a BIDS dataset of links in ``bids_dir``."""
    bids_dir = Path(bids_dir)
    bids_dir.mkdir(parents=True, exist_ok=True)
    for (input_id, key), (datatype, suffix, entities) in FILES.items():
        paths = _as_list(config.get(key))
        if not paths:
            continue
        metas = _metas(config, input_id)
        if len(metas) < len(paths):
            raise UsageError(f"config.json: {len(paths)} '{key}' files but {len(metas)} "
                             f"'{input_id}' objects in _inputs.")
        for path, meta in zip(paths, metas):
            source = Path(path).resolve()
            if not source.is_file():
                raise UsageError(f"config.json: '{key}' file {path} does not exist.")
            folder = bids_dir / f"sub-{meta['subject']}"
            if meta.get("session"):
                folder = folder / f"ses-{meta['session']}"
            target = folder / datatype / _name(meta, entities, suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_symlink():
                target.symlink_to(source)
    for path, meta in zip(_as_list(config.get("freesurfer")),
                          _metas(config, "freesurfer") if config.get("freesurfer") else []):
        link = bids_dir / "derivatives" / "freesurfer" / f"sub-{meta['subject']}"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(Path(path).resolve(), target_is_directory=True)
    description = {"Name": "Brainlife inputs of megfmri-fusion", "BIDSVersion": "1.10.0",
                   "DatasetType": "raw"}
    (bids_dir / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    return bids_dir


def app_options(config: dict, work: Path) -> list[str]:
    """The command-line options of ``megfmri-fusion`` from the options of ``config.json``."""
    options: list[str] = []
    subjects = sorted({str(m["subject"]) for m in _metas(config, "meg")})
    options += ["--participant-label", *subjects]
    for key, flag in OPTIONS.items():
        if config.get(key) not in (None, ""):
            options += [flag, str(config[key])]
    conditions = config.get("conditions")
    if conditions:
        options += ["--conditions",
                    *(conditions if isinstance(conditions, list) else str(conditions).split())]
    if config.get("settings"):
        import tomli_w

        path = Path(work) / "settings.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(config["settings"]))
        options += ["--config", str(path)]
    return options


def main(argv: list[str] | None = None) -> int:
    """``python -m bids_app.cli.brainlife CONFIG BIDS_DIR WORK_DIR``: lay out the dataset and
    print the options (shell words) for ``megfmri-fusion``."""
    parser = argparse.ArgumentParser(prog="python -m bids_app.cli.brainlife")
    parser.add_argument("config", type=Path)
    parser.add_argument("bids_dir", type=Path)
    parser.add_argument("work_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config.read_text())
        assemble_bids(config, args.bids_dir)
        options = app_options(config, args.work_dir)
    except (UsageError, OSError, json.JSONDecodeError, ValueError) as err:
        print(f"megfmri-fusion (Brainlife): {getattr(err, 'message', err)}", file=sys.stderr)
        return 64
    print(shlex.join(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
