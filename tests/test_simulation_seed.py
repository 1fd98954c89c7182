"""The simulator is reproducible from its seed (issue 3): one random stream per subject and run.

Apart from the end-to-end study so that pytest-xdist runs it on the other worker meanwhile.
"""

from __future__ import annotations

import pytest

from bids_app.cli.simulate import simulate
from skeleton import fingerprint

pytestmark = pytest.mark.slow


def test_same_seed_gives_identical_files_and_another_seed_changes_every_data_file(tmp_path):
    """Same seed: sub-01 is byte-identical whether it is simulated alone or with a second
    subject; another seed changes every data file (.fif, .nii.gz)."""
    one = simulate(tmp_path / "one", preset="small", n_subjects=1, n_runs=1, seed=4, n_jobs=1)
    two = simulate(tmp_path / "two", preset="small", n_subjects=2, n_runs=1, seed=4, n_jobs=1)
    reference = fingerprint(one / "sub-01")
    assert fingerprint(two / "sub-01") == reference
    other = simulate(tmp_path / "other", preset="small", n_subjects=1, n_runs=1, seed=5,
                     n_jobs=1)
    changed = fingerprint(other / "sub-01")
    data = [name for name in reference if name.endswith((".fif", ".nii.gz"))]
    assert data and all(changed[name] != reference[name] for name in data)
