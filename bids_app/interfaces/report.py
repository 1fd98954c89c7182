"""Nipype interface writing the participant report (thin: it calls :mod:`bids_app.reports`)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)


class _ReportInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="derivatives root")
    subject = traits.Str(mandatory=True, desc="participant label")
    plan_text = traits.Str(mandatory=True, desc="the run plan")
    anatomy_mode = traits.Str(mandatory=True, desc="freesurfer, recon-all or template")
    warnings = traits.List(traits.Str, desc="warnings from discovery")
    conditions = traits.List(traits.Str, mandatory=True, desc="condition names")
    bands = traits.List(traits.Str, mandatory=True, desc="band names")
    run_labels = traits.List(traits.Str, mandatory=True, desc="label of each run")
    anat_report = traits.Either(traits.List(File(exists=True)), File(exists=True),
                                desc="anatomy summaries")
    run_reports = traits.List(traits.Any, desc="per run, fMRI then MEG lists of summaries")
    methods_file = traits.Str(desc="CITATION.md with the methods text")


class _ReportOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="sub-<label>.html")


class ParticipantReport(SimpleInterface):
    """Write ``sub-<label>.html`` from the stage summaries."""

    input_spec = _ReportInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_app.reports.participant import (build_participant_report, load_summaries,
                                                  save_report_inputs)

        def as_list(value):
            if not isdefined(value) or value is None:
                return []
            return list(value) if isinstance(value, (list, tuple)) else [value]

        groups = [("anatomy", as_list(self.inputs.anat_report))]
        labels = list(self.inputs.run_labels)
        for i, paths in enumerate(as_list(self.inputs.run_reports)):
            groups.append((labels[i // 2], as_list(paths)))
        methods = None
        if isdefined(self.inputs.methods_file) and Path(self.inputs.methods_file).is_file():
            methods = Path(self.inputs.methods_file).read_text()
        inputs = dict(plan_text=self.inputs.plan_text, anatomy_mode=self.inputs.anatomy_mode,
                      warnings=as_list(self.inputs.warnings), summaries=load_summaries(groups),
                      conditions=list(self.inputs.conditions), bands=list(self.inputs.bands))
        output_dir, subject = Path(self.inputs.output_dir), self.inputs.subject
        save_report_inputs(output_dir, subject, **inputs)
        out = build_participant_report(output_dir=output_dir, subject=subject,
                                       methods_markdown=methods, **inputs)
        self._results["out_file"] = str(out)
        return runtime


class _GroupReportInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="derivatives root")
    atlas = traits.Str(mandatory=True, desc="atlas entity")
    tasks = traits.List(traits.Str, mandatory=True, desc="task labels")
    tables = traits.List(traits.Dict, mandatory=True, desc="per task: key -> table path")
    conditions = traits.List(traits.Str, mandatory=True, desc="condition names")
    bands = traits.List(traits.Str, mandatory=True, desc="band names")
    truth_file = traits.Str(desc="simulation truth (planted effects), when the data are simulated")


class GroupReport(SimpleInterface):
    """Write ``group.html`` from the group tables."""

    input_spec = _GroupReportInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_app.reports.group import build_group_report

        truth = (Path(self.inputs.truth_file) if isdefined(self.inputs.truth_file)
                 and self.inputs.truth_file else None)
        out = build_group_report(
            output_dir=Path(self.inputs.output_dir), atlas=self.inputs.atlas,
            tasks=self.inputs.tasks, tables=self.inputs.tables,
            conditions=self.inputs.conditions, bands=self.inputs.bands, truth_file=truth,
        )
        self._results["out_file"] = str(out)
        return runtime
