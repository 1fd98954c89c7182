"""Run the official BIDS validator (``bids-validator-deno``) on the selected participants.

Like fMRIPrep, the validator sees a temporary tree of symbolic links holding the top-level files,
the selected ``sub-*`` folders and, when present, ``sub-emptyroom`` (MEG empty-room recordings
that the others refer to). Errors stop the run with exit code 16 and a summary in plain words;
warnings are logged.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bids_app.errors import InvalidBIDSError, MissingInputError
from bids_app.io.bids import dataset_entries

LOGGER = logging.getLogger(__name__)

VALIDATOR = "bids-validator-deno"


@dataclass
class ValidationReport:
    """Issues found by the validator, grouped by code."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def summary(self, kind: str = "errors", max_files: int = 3) -> str:
        """Plain-words lines, one per issue code, with a few of the files concerned."""
        lines = []
        for code, locations in getattr(self, kind).items():
            locations = sorted(locations)
            text = self.messages.get(code, "").strip().splitlines()
            lines.append(f"- {code}: {text[0] if text else ''} ({len(locations)} file(s))")
            for loc in locations[:max_files]:
                lines.append(f"    {loc}")
            if len(locations) > max_files:
                lines.append(f"    ... and {len(locations) - max_files} more")
        return "\n".join(lines)


def validator_executable() -> str:
    """Path of ``bids-validator-deno``, or a clear error on how to install it."""
    exe = shutil.which(VALIDATOR)
    if exe is None:
        venv_exe = Path(__import__("sys").executable).parent / VALIDATOR
        if venv_exe.exists():
            return str(venv_exe)
        raise MissingInputError(
            f"The BIDS validator ({VALIDATOR}) is not installed. Install it with "
            f"'pip install bids-validator-deno', or skip validation with --skip-bids-validation."
        )
    return exe


def parse_report(data: dict) -> ValidationReport:
    """Group the validator's JSON output (``--format json``) by severity and code."""
    report = ValidationReport()
    issues = data.get("issues", {})
    report.messages = dict(issues.get("codeMessages") or {})  # {code: one-line explanation}
    grouped: dict[str, dict[str, list[str]]] = {"error": defaultdict(list), "warning": defaultdict(list)}
    for issue in issues.get("issues", []):
        severity = issue.get("severity", "warning")
        if severity not in grouped:
            continue
        code = issue.get("code", "UNKNOWN")
        location = issue.get("location") or issue.get("issueMessage", "").strip()
        grouped[severity][code].append(location.lstrip("/"))
        report.messages.setdefault(code, issue.get("issueMessage", "") or "")
    report.errors = dict(grouped["error"])
    report.warnings = dict(grouped["warning"])
    return report


def validate(bids_dir: Path, participant_label: Sequence[str] = ()) -> ValidationReport:
    """Validate ``bids_dir`` (only the selected participants) and raise on errors.

    Raises
    ------
    InvalidBIDSError
        The validator reports errors; the message lists each code with its files.
    """
    bids_dir = Path(bids_dir).resolve()
    exe = validator_executable()
    with tempfile.TemporaryDirectory(prefix="megfmri-validate-") as tmp:
        target = Path(tmp) / bids_dir.name
        target.mkdir()
        for entry in dataset_entries(bids_dir, participant_label):
            (target / entry.name).symlink_to(entry.path)
        LOGGER.info("Running the BIDS validator on %s ...", bids_dir)
        try:
            proc = subprocess.run(
                [exe, str(target), "--format", "json", "--no-color"],
                capture_output=True,
                text=True,
                timeout=3600,
            )
        except subprocess.TimeoutExpired:
            raise InvalidBIDSError("The BIDS validator did not finish within an hour.") from None
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise InvalidBIDSError(
            "The BIDS validator failed to run:\n" + (proc.stderr or proc.stdout)[-2000:]
            + "\nUse --skip-bids-validation to proceed without it."
        ) from None
    report = parse_report(data)
    if report.warnings:
        LOGGER.info(
            "BIDS validator warnings (%d kinds; not blocking):\n%s",
            len(report.warnings),
            report.summary("warnings", max_files=1),
        )
    if report.errors:
        raise InvalidBIDSError(
            f"The BIDS validator found errors in {bids_dir}:\n{report.summary('errors')}\n"
            "Fix the dataset (https://bids-specification.readthedocs.io), or use "
            "--skip-bids-validation if you are sure the app can read it."
        )
    LOGGER.info("The BIDS validator found no errors.")
    return report
