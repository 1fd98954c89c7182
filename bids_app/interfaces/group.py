"""Nipype interfaces of the group level: gather observations, statistics, tables, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_app.io.derivatives import (
    GROUP_TABLES,
    OBSERVATION_TABLES,
    dseg_table_path,
    group_table_path,
    observations_table_path,
)
from bids_app.options import as_dict, from_dict


class _GatherInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="derivatives root")
    task = traits.Str(mandatory=True, desc="task label")
    atlas = traits.Str(mandatory=True, desc="atlas entity")
    conditions = traits.List(traits.Str, mandatory=True, desc="condition names")
    bands = traits.List(traits.Str, mandatory=True, desc="band names")
    windows_ms = traits.List(traits.Float, mandatory=True, desc="window starts (ms)")
    min_observations = traits.Int(mandatory=True, desc="fewest observations accepted "
                                  "([stats] min_observations)")


class _GatherOutputSpec(TraitedSpec):
    arrays = File(exists=True, desc="observation arrays and labels (npz)")
    meg_table = File(exists=True, desc="observations table (MEG)")
    fmri_table = File(exists=True, desc="observations table (fMRI)")


class GatherObservations(SimpleInterface):
    """Read the participant outputs of a task into observation tables and arrays."""

    input_spec = _GatherInputSpec
    output_spec = _GatherOutputSpec

    def _run_interface(self, runtime):
        from bids_app.io.derivatives import read_table, write_table
        from bids_app.io.group import gather

        out = Path(self.inputs.output_dir)
        table = read_table(dseg_table_path(out, self.inputs.atlas))
        data = gather(out, task=self.inputs.task, atlas=self.inputs.atlas,
                      conditions=self.inputs.conditions, bands=self.inputs.bands,
                      windows_ms=self.inputs.windows_ms, parcel_table=table,
                      min_observations=self.inputs.min_observations)
        written = {}
        for modality, table in (("meg", data.meg_table), ("bold", data.fmri_table)):
            path = observations_table_path(out, self.inputs.task, self.inputs.atlas, modality)
            written[modality] = write_table(table, path,
                                            description=OBSERVATION_TABLES[modality][2])
        meg_path, fmri_path = written["meg"], written["bold"]
        cwd = Path(runtime.cwd)
        np.savez(cwd / "observations.npz", meg=data.meg, fmri=data.fmri,
                 parcels=np.array(data.parcels), hemis=np.array(data.hemis),
                 conditions=np.array(data.conditions), bands=np.array(data.bands),
                 windows_ms=np.array(data.windows_ms),
                 subjects=data.observations.subject.to_numpy(dtype=str),
                 runs=data.observations.run.to_numpy(dtype=str))
        self._results.update(arrays=str(cwd / "observations.npz"), meg_table=str(meg_path),
                             fmri_table=str(fmri_path))
        return runtime


class _StatsInputSpec(BaseInterfaceInputSpec):
    arrays = File(exists=True, mandatory=True, desc="observation arrays (npz)")
    output_dir = traits.Str(mandatory=True, desc="derivatives root")
    task = traits.Str(mandatory=True, desc="task label")
    atlas = traits.Str(mandatory=True, desc="atlas entity")
    options = traits.Dict(mandatory=True, desc="GroupStatsOptions (bids_app.options.as_dict)")
    seed = traits.Int(desc="bootstrap seed")


class _StatsOutputSpec(TraitedSpec):
    tables = traits.Dict(desc="key -> written table path")
    extras = File(exists=True, desc="linkage and other arrays for the report (npz)")


class GroupStatistics(SimpleInterface):
    """Spearman, Ward, bootstrap, effects and MEG t-tests; writes the group tables."""

    input_spec = _StatsInputSpec
    output_spec = _StatsOutputSpec

    def _run_interface(self, runtime):
        from bids_app.io.derivatives import significance_description, write_table
        from bids_app.stats import run_group_statistics
        from bids_app.stats.options import GroupStatsOptions

        options = from_dict(GroupStatsOptions, self.inputs.options)

        with np.load(self.inputs.arrays, allow_pickle=False) as d:
            data = {k: d[k] for k in d.files}
        results = run_group_statistics(
            data["meg"], data["fmri"],
            parcels=[str(p) for p in data["parcels"]], hemis=[str(h) for h in data["hemis"]],
            conditions=[str(c) for c in data["conditions"]],
            bands=[str(b) for b in data["bands"]], windows_ms=[float(w) for w in
                                                               data["windows_ms"]],
            options=options,
            seed=int(self.inputs.seed) if isdefined(self.inputs.seed) else None,
        )
        # the settings go into every sidecar, and "significant" is described as computed
        settings = {
            "n_observations": int(data["meg"].shape[0]), **as_dict(options),
            "random_seed": int(self.inputs.seed) if isdefined(self.inputs.seed) else None,
        }
        tables = {}
        for key, (_desc, _suffix, _ext, description) in GROUP_TABLES.items():
            path = group_table_path(Path(self.inputs.output_dir), self.inputs.task,
                                    self.inputs.atlas, key)
            significant = significance_description(
                options.correction, options.cluster_rho,
                cluster_level=(key == "bootstrap"))
            write_table(results[key], path, description=description,
                        column_descriptions={"significant": significant}, **settings)
            tables[key] = str(path)
        cwd = Path(runtime.cwd)
        extras = {k: np.asarray(v) for k, v in results.items()
                  if k not in GROUP_TABLES and isinstance(v, np.ndarray)}
        np.savez(cwd / "extras.npz", **extras)
        self._results.update(tables=tables, extras=str(cwd / "extras.npz"))
        return runtime
