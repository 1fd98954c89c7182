"""The fMRI package is pure: no nipype, no configuration, no file I/O; ANTs and SimpleITK load
lazily."""

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bids_app" / "fmri"


def test_import_pulls_in_no_workflow_or_config_modules():
    modules = ("nipype", "bids_app.config", "ants", "SimpleITK", "bids")
    code = f"import sys, bids_app.fmri; print(sorted(m for m in {modules} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=PACKAGE.parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_sources_do_not_read_or_write_files():
    forbidden = ("nib.load", "nibabel.load", "to_filename", ".to_csv", "open(", "import nipype")
    for source in PACKAGE.glob("*.py"):
        text = source.read_text()
        found = [word for word in forbidden if word in text]
        assert not found, f"{source.name} uses {found}"
