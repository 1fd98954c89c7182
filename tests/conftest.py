"""Shared fixtures.

Real test data (a Neuromag recording, a noise covariance, a head model, MaxFilter references,
fsaverage atlases, the ds000117 layout) live in ``../shared/data`` beside the repository, or
wherever ``MEGFMRI_SHARED_DATA`` points. Tests that need them use the :func:`shared_data`
fixture, which skips with a clear reason when the folder is absent so that a fresh clone
elsewhere still passes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # test helpers (skeleton.py)


def _find_shared_data() -> Path | None:
    env = os.environ.get("MEGFMRI_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "mne-testing-data").is_dir():
            # resolved like pybids resolves a dataset root, so paths compare when data is linked
            return candidate.resolve()
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real test data (``../shared/data`` or ``$MEGFMRI_SHARED_DATA``)."""
    found = _find_shared_data()
    if found is None:
        pytest.skip(
            "real test data not found: put it in ../shared/data beside the repository or set "
            "MEGFMRI_SHARED_DATA to its folder"
        )
    return found


@pytest.fixture(scope="session")
def mne_testing(shared_data: Path) -> Path:
    """The MNE testing-data subset inside the shared data folder."""
    return shared_data / "mne-testing-data"


@pytest.fixture
def skeleton(tmp_path: Path) -> Path:
    """A fresh tiny MEG+BOLD BIDS dataset (2 subjects x 2 runs) in a temporary folder."""
    from skeleton import make_skeleton

    return make_skeleton(tmp_path / "bids")
