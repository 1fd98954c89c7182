"""The report node of a participant workflow."""

from __future__ import annotations

from pathlib import Path

from nipype.pipeline import engine as pe

from bids_app.interfaces.report import ParticipantReport
from bids_app.io.bids import SubjectPlan


def init_participant_report_node(*, subject: SubjectPlan, bids_dir: Path, output_dir: Path,
                                 anatomy_mode: str, conditions: list[str], bands: list[str],
                                 name: str = "report") -> pe.Node:
    """A node writing ``sub-<label>.html``; connect ``anat_report`` and ``run_reports`` (a list
    with, for run i, the fMRI summaries at 2i and the MEG summaries at 2i + 1)."""
    return pe.Node(
        ParticipantReport(
            output_dir=str(output_dir), subject=subject.subject,
            plan_text=subject.describe(bids_dir), anatomy_mode=anatomy_mode,
            warnings=list(subject.warnings), conditions=list(conditions), bands=list(bands),
            run_labels=[p.label for p in subject.pairs],
            methods_file=str(Path(output_dir) / "logs" / "CITATION.md"),
        ),
        name=name,
    )
