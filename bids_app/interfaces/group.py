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

#: desc entity and suffix of each group table (DESIGN 6), with its sidecar description.
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


def group_table_path(output_dir: Path, task: str, atlas: str, key: str) -> Path:
    """``<out>/group/task-<t>_atlas-<a>_desc-<desc>_<suffix>.tsv``."""
    from bids_app.io.derivatives import bids_name

    desc, suffix, ext, _ = GROUP_TABLES[key]
    return Path(output_dir) / "group" / bids_name({"task": task, "atlas": atlas, "desc": desc},
                                                   suffix, ext)


class _GatherInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="derivatives root")
    task = traits.Str(mandatory=True, desc="task label")
    atlas = traits.Str(mandatory=True, desc="atlas entity")
    conditions = traits.List(traits.Str, mandatory=True, desc="condition names")
    bands = traits.List(traits.Str, mandatory=True, desc="band names")
    windows_ms = traits.List(traits.Float, mandatory=True, desc="window starts (ms)")
    min_observations = traits.Int(5, usedefault=True, desc="fewest observations accepted")


class _GatherOutputSpec(TraitedSpec):
    arrays = File(exists=True, desc="observation arrays and labels (npz)")
    meg_table = File(exists=True, desc="observations table (MEG)")
    fmri_table = File(exists=True, desc="observations table (fMRI)")


class GatherObservations(SimpleInterface):
    """Read the participant outputs of a task into observation tables and arrays."""

    input_spec = _GatherInputSpec
    output_spec = _GatherOutputSpec

    def _run_interface(self, runtime):
        from bids_app.io.derivatives import atlas_table_path, bids_name, read_table, write_table
        from bids_app.io.group import gather

        out = Path(self.inputs.output_dir)
        table = read_table(atlas_table_path(out, self.inputs.atlas))
        data = gather(out, task=self.inputs.task, atlas=self.inputs.atlas,
                      conditions=self.inputs.conditions, bands=self.inputs.bands,
                      windows_ms=self.inputs.windows_ms, parcel_table=table,
                      min_observations=self.inputs.min_observations)
        ent = {"task": self.inputs.task, "atlas": self.inputs.atlas, "desc": "observations"}
        meg_path = write_table(
            data.meg_table, out / "group" / bids_name(ent, "meg", ".tsv.gz"),
            description="MEG normalised band power per observation (subject x run), block "
            "average of each condition (DESIGN 5.1).")
        fmri_path = write_table(
            data.fmri_table, out / "group" / bids_name(ent, "bold", ".tsv"),
            description="fMRI normalised block values per observation (subject x run), block "
            "average of each condition (DESIGN 5.1).")
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
    n_clusters = traits.Int(17, usedefault=True, desc="Ward clusters")
    n_bootstrap = traits.Int(10000, usedefault=True, desc="bootstrap resamples")
    bootstrap_fraction = traits.Float(0.8, usedefault=True, desc="share drawn per resample")
    ci_levels = traits.List(traits.Float, [0.99, 0.999], usedefault=True, desc="CI levels")
    alpha = traits.Float(0.05, usedefault=True, desc="significance level")
    correction = traits.Str("bonferroni-windows", usedefault=True, desc="correction")
    cluster_rho = traits.Str("pooled", usedefault=True, desc="cluster correlation")
    min_observations = traits.Int(5, usedefault=True, desc="fewest observations")
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

        with np.load(self.inputs.arrays, allow_pickle=False) as d:
            data = {k: d[k] for k in d.files}
        results = run_group_statistics(
            data["meg"], data["fmri"],
            parcels=[str(p) for p in data["parcels"]], hemis=[str(h) for h in data["hemis"]],
            conditions=[str(c) for c in data["conditions"]],
            bands=[str(b) for b in data["bands"]], windows_ms=[float(w) for w in
                                                               data["windows_ms"]],
            n_clusters=self.inputs.n_clusters, n_bootstrap=self.inputs.n_bootstrap,
            bootstrap_fraction=self.inputs.bootstrap_fraction,
            ci_levels=tuple(self.inputs.ci_levels), alpha=self.inputs.alpha,
            correction=self.inputs.correction, cluster_rho=self.inputs.cluster_rho,
            seed=int(self.inputs.seed) if isdefined(self.inputs.seed) else None,
            min_observations=self.inputs.min_observations,
        )
        # the settings go into every sidecar, and "significant" is described as computed
        settings = {
            "n_observations": int(data["meg"].shape[0]), "alpha": self.inputs.alpha,
            "correction": self.inputs.correction, "cluster_rho": self.inputs.cluster_rho,
            "n_clusters": self.inputs.n_clusters, "n_bootstrap": int(self.inputs.n_bootstrap),
            "bootstrap_fraction": self.inputs.bootstrap_fraction,
            "ci_levels": list(self.inputs.ci_levels),
            "random_seed": int(self.inputs.seed) if isdefined(self.inputs.seed) else None,
        }
        tables = {}
        for key, (_desc, _suffix, _ext, description) in GROUP_TABLES.items():
            path = group_table_path(Path(self.inputs.output_dir), self.inputs.task,
                                    self.inputs.atlas, key)
            significant = significance_description(
                self.inputs.correction, self.inputs.cluster_rho,
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
