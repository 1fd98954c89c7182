"""The one sink through which the participant level writes BIDS-Derivatives.

:class:`DerivativesSink` takes a table produced in the work folder and the raw BIDS file it was
derived from, builds the derivative's name from the raw file's entities (``sub``, ``ses``,
``task``, ``acq``, ``run``) plus ``atlas`` and ``desc``, and writes the table with its JSON
sidecar atomically (:func:`bids_app.io.derivatives.write_table`). The sidecar records the
``Sources`` and the settings each processing step reports it used (its ``settings`` output), so
that a table can be read without the run's configuration file.
"""

from __future__ import annotations

import re
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_app.io.derivatives import participant_path, raw_uri, read_table, write_table

_ENTITY_RE = {key: re.compile(rf"(?:^|_){key}-([A-Za-z0-9]+)") for key in ("sub", "ses", "task", "acq", "run")}


def source_entities(source_file: str | Path) -> dict[str, str]:
    """Entities of a raw BIDS file name (``sub``, ``ses``, ``task``, ``acq``, ``run``)."""
    name = Path(source_file).name
    out = {}
    for key, pattern in _ENTITY_RE.items():
        match = pattern.search(name)
        if match:
            out[key] = match.group(1)
    if "sub" not in out:
        raise ValueError(f"{name} is not a BIDS file name (no sub- entity)")
    return out


class _DerivativesSinkInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="table (TSV) to write")
    source_file = traits.Str(mandatory=True, desc="raw BIDS file the table derives from")
    base_directory = traits.Str(mandatory=True, desc="derivatives root")
    datatype = traits.Enum("func", "meg", "anat", mandatory=True, desc="output sub-folder")
    suffix = traits.Str(mandatory=True, desc="BIDS suffix (bold, meg, ...)")
    desc = traits.Str(mandatory=True, desc="desc entity")
    atlas = traits.Str(desc="atlas entity")
    compress = traits.Bool(False, usedefault=True, desc="write .tsv.gz")
    description = traits.Str(mandatory=True, desc="sidecar Description")
    sidecar = traits.Dict(desc="extra sidecar fields")
    settings = traits.List(traits.Dict, desc="settings reported by the steps that made the "
                           "table, added to the sidecar in order")


class _DerivativesSinkOutputSpec(TraitedSpec):
    out_file = File(desc="the written derivative")


class DerivativesSink(SimpleInterface):
    """Write a table as a BIDS derivative named after its source file."""

    input_spec = _DerivativesSinkInputSpec
    output_spec = _DerivativesSinkOutputSpec

    def _run_interface(self, runtime):
        entities = source_entities(self.inputs.source_file)
        entities["atlas"] = self.inputs.atlas or None
        entities["desc"] = self.inputs.desc
        extension = ".tsv.gz" if self.inputs.compress else ".tsv"
        path = participant_path(Path(self.inputs.base_directory), entities, self.inputs.datatype,
                                self.inputs.suffix, extension)
        extra = {"Sources": [raw_uri(self.inputs.source_file)]}
        extra.update(self.inputs.sidecar if self.inputs.sidecar else {})
        for step in self.inputs.settings if isdefined(self.inputs.settings) else []:
            extra.update(step)
        write_table(read_table(self.inputs.in_file), path,
                    description=self.inputs.description, **extra)
        self._results["out_file"] = str(path)
        return runtime
