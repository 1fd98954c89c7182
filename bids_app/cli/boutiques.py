"""The Boutiques descriptor of the command line, generated from the argument parser.

``boutiques.json`` at the top of the repository is this descriptor written to a file; a test checks
that the two are identical and that ``bosh validate --bids`` accepts it. ``megfmri-fusion
--bids-exec-spec`` prints it.

It has the shape Boutiques checks for a BIDS App (``bosh validate --bids``, from its BIDS-App
template): the command line starts ``mkdir -p [OUTPUT_DIR]; megfmri-fusion [BIDS_DIR]
[OUTPUT_DIR] [ANALYSIS_LEVEL] [PARTICIPANT_LABEL] [SESSION_LABEL]``; the output folder is two
mutually exclusive inputs sharing ``[OUTPUT_DIR]`` (a folder name to create for the participant
level, an existing folder of participant outputs for the group level) and the descriptor's only
output. ``custom.BIDSAppSpecVersion`` names the version of the BIDS Apps execution specification
whose descriptor, exit codes and ``--bids-exec-spec`` it follows (the positional BIDS-Apps 1.0
command line is that specification's backwards-compatible form). Inputs with a default carry it
(``default-value``), taken from :mod:`bids_app.config`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bids_app import __version__
from bids_app.cli import parser as p
from bids_app.errors import EXIT_CODES

DOCKER_IMAGE = "megfmri/megfmri-fusion"

#: Options that do not make sense in a Boutiques invocation (they print and exit).
_SKIP = {"help", "version", "bids_exec_spec", "slurm_script"}
#: Version of the BIDS Apps execution specification (bids-standard/execution-spec) followed.
BIDS_APP_SPEC_VERSION = "0.1.0.dev"
#: Order of the BIDS-Apps arguments at the start of the command line (``bosh validate --bids``).
_FIRST = ("bids_dir", "output_dir", "analysis_level", "participant_label", "session_label")
#: Suggested resources of one participant (the participant level is run per participant).
#: recon-all alone takes several hours (5-8 h of one core's time with FreeSurfer 7; fMRIPrep's
#: documentation plans hours per participant with it); the app's own steps take minutes per run
#: (docs/usage.md). 12 h covers a participant whose reconstruction has to be made.
SUGGESTED_WALLTIME_S = 12 * 3600


def _input_type(action: argparse.Action) -> dict[str, Any]:
    if isinstance(action, (argparse._StoreTrueAction, argparse._CountAction)):
        return {"type": "Flag"}
    kind = action.type
    if kind in (Path, p._path, p._existing_file, p._existing_dir):
        return {"type": "File"}
    if kind in (p._integer, p._number):
        out: dict[str, Any] = {"type": "Number"}
        if kind is p._integer:
            out["integer"] = True
        out.update(_number_range(action.dest))
        return out
    return {"type": "String"}


def _number_range(dest: str) -> dict[str, Any]:
    """Boutiques bounds of a numeric option, from its range in :mod:`bids_app.config`."""
    from bids_app.config import find_option

    bounds = find_option(p.CONFIG_MAP[dest]).bounds
    out: dict[str, Any] = {}
    if bounds is not None and bounds.low is not None:
        out["minimum"] = bounds.low
        if bounds.low_open:
            out["exclusive-minimum"] = True
    if bounds is not None and bounds.high is not None:
        out["maximum"] = bounds.high
        if bounds.high_open:
            out["exclusive-maximum"] = True
    return out


def _default(dest: str) -> Any:
    """The default of an option from :mod:`bids_app.config` (None: no fixed default)."""
    from bids_app.config import find_option

    if dest not in p.CONFIG_MAP:
        return None
    value = find_option(p.CONFIG_MAP[dest]).default
    if isinstance(value, bool) or value in (None, [], {}, ()):
        return None  # flags are off unless given; empty lists mean "everything"
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value if isinstance(value, (int, float)) else str(value)


def _output_inputs(action: argparse.Action) -> list[dict[str, Any]]:
    """The output folder as Boutiques' BIDS-App template has it: a name for the participant
    level, an existing folder of participant outputs for the group level."""
    return [
        {"id": "output_dir_name", "name": "Output folder",
         "description": f"{action.help} (participant level: created when missing)",
         "value-key": "[OUTPUT_DIR]", "optional": True, "type": "String"},
        {"id": "participant_level_analysis_dir", "name": "Participant outputs folder",
         "description": "group level: the output folder of the participant level, which the "
                        "group results are added to",
         "value-key": "[OUTPUT_DIR]", "optional": True, "type": "File"},
    ]


def descriptor() -> dict[str, Any]:
    """The Boutiques descriptor (schema 0.5) of ``megfmri-fusion``."""
    parser = p.build_parser()
    actions = [a for a in parser._actions if a.dest not in _SKIP]
    actions.sort(key=lambda a: _FIRST.index(a.dest) if a.dest in _FIRST else len(_FIRST))
    inputs = []
    keys = []
    for action in actions:
        key = f"[{action.dest.upper()}]"
        keys.append(key)
        if action.dest == "output_dir":
            inputs += _output_inputs(action)
            continue
        entry: dict[str, Any] = {
            "id": action.dest,
            "name": action.dest.replace("_", " "),
            "description": (action.help or "").replace("%%", "%"),
            "value-key": key,
            "optional": bool(action.option_strings),
        }
        entry.update(_input_type(action))
        if action.option_strings:
            entry["command-line-flag"] = next(
                (s for s in action.option_strings if s.startswith("--")), action.option_strings[0]
            )
        if action.nargs == "+":
            entry["list"] = True
            entry["min-list-entries"] = 1
        if action.dest == "analysis_level":
            entry["value-choices"] = ["participant", "group"]
        if isinstance(action, argparse._CountAction):
            entry["command-line-flag"] = "-v"
        default = _default(action.dest)
        if default is not None and entry["type"] != "Flag":
            entry["default-value"] = default
        inputs.append(entry)
    return {
        "name": "megfmri-fusion",
        "tool-version": __version__,
        "schema-version": "0.5",
        "author": "megfmri-fusion developers",
        "url": "https://github.com/megfmri-fusion/megfmri-fusion",
        "descriptor-url": "https://github.com/megfmri-fusion/megfmri-fusion/blob/main/"
                          "boutiques.json",
        "description": parser.description,
        "command-line": "mkdir -p [OUTPUT_DIR]; megfmri-fusion " + " ".join(keys),
        "container-image": {
            "type": "docker",
            "image": f"{DOCKER_IMAGE}:{__version__}",
            "entrypoint": True,
        },
        "inputs": inputs,
        "groups": [{
            "id": "output_folder",
            "name": "Output folder",
            "description": "A folder name for the participant level, or the folder of "
                           "participant outputs for the group level.",
            "members": ["output_dir_name", "participant_level_analysis_dir"],
            "mutually-exclusive": True,
            "one-is-required": True,
        }],
        "output-files": [
            {
                "id": "derivatives",
                "name": "Output folder",
                "description": "BIDS-Derivatives: participant tables, group statistics, reports, "
                               "dataset_description.json, logs, and sourcedata/freesurfer and "
                               "sourcedata/bem when the app reconstructs anatomy.",
                "path-template": "[OUTPUT_DIR]",
                "optional": False,
            },
        ],
        "error-codes": [
            {"code": code, "description": text} for code, text in EXIT_CODES.items() if code
        ],
        "suggested-resources": {
            "cpu-cores": 2,
            "ram": 8,
            "walltime-estimate": SUGGESTED_WALLTIME_S,
        },
        "tags": {"domain": ["neuroinformatics", "bids", "meg", "fmri", "multimodal"]},
        "custom": {
            "BIDSAppSpecVersion": BIDS_APP_SPEC_VERSION,
            "OutputDataSpecification": ["BIDS-Derivatives"],
        },
    }


def write_descriptor(path: str | Path) -> Path:
    """Write the descriptor to ``path`` (used to refresh the repository's boutiques.json)."""
    path = Path(path)
    path.write_text(json.dumps(descriptor(), indent=2) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m bids_app.cli.boutiques boutiques.json
    import sys

    print(write_descriptor(sys.argv[1] if len(sys.argv) > 1 else "boutiques.json"))
