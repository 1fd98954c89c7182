"""The Boutiques descriptor of the command line, generated from the argument parser.

``boutiques.json`` at the top of the repository is this descriptor written to a file; a test checks
that the two are identical and that ``bosh validate`` accepts it. ``megfmri-fusion
--bids-exec-spec`` prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bids_app import __version__
from bids_app.errors import EXIT_CODES

DOCKER_IMAGE = "megfmri/megfmri-fusion"

#: Options that do not make sense in a Boutiques invocation (they print and exit).
_SKIP = {"help", "version", "bids_exec_spec"}


def _input_type(action: argparse.Action) -> dict[str, Any]:
    from bids_app.cli import parser as p

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
    from bids_app.cli.parser import CONFIG_MAP
    from bids_app.config import find_option

    bounds = find_option(CONFIG_MAP[dest]).bounds
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


def descriptor() -> dict[str, Any]:
    """The Boutiques descriptor (schema 0.5) of ``megfmri-fusion``."""
    from bids_app.cli.parser import build_parser

    parser = build_parser()
    inputs = []
    keys = []
    for action in parser._actions:
        if action.dest in _SKIP:
            continue
        key = f"[{action.dest.upper()}]"
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
        inputs.append(entry)
        keys.append(key)
    return {
        "name": "megfmri-fusion",
        "tool-version": __version__,
        "schema-version": "0.5",
        "author": "megfmri-fusion developers",
        "url": "https://github.com/megfmri-fusion/megfmri-fusion",
        "description": parser.description,
        "command-line": "megfmri-fusion " + " ".join(keys),
        "container-image": {
            "type": "docker",
            "image": f"{DOCKER_IMAGE}:{__version__}",
            "entrypoint": True,
        },
        "inputs": inputs,
        "output-files": [
            {
                "id": "derivatives",
                "name": "Output folder",
                "description": "BIDS-Derivatives: participant tables, group statistics, reports.",
                "path-template": "[OUTPUT_DIR]",
                "optional": False,
            },
            {
                "id": "dataset_description",
                "name": "Derivatives dataset description",
                "path-template": "[OUTPUT_DIR]/dataset_description.json",
                "optional": True,
            },
        ],
        "error-codes": [
            {"code": code, "description": text} for code, text in EXIT_CODES.items() if code
        ],
        "suggested-resources": {
            "cpu-cores": 2,
            "ram": 8,
            "walltime-estimate": 7200,
        },
        "tags": {"domain": ["neuroinformatics", "bids", "meg", "fmri", "multimodal"]},
    }


def write_descriptor(path: str | Path) -> Path:
    """Write the descriptor to ``path`` (used to refresh the repository's boutiques.json)."""
    path = Path(path)
    path.write_text(json.dumps(descriptor(), indent=2) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m bids_app.cli.boutiques boutiques.json
    import sys

    print(write_descriptor(sys.argv[1] if len(sys.argv) > 1 else "boutiques.json"))
