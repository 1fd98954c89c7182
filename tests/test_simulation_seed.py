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


def test_recovery_effects_are_written_to_the_truth(tmp_path):
    """``--effects recovery``: the truth gives each task-dependent effect its distinct condition
    (the one whose coupling is reversed), the couplings and the oscillating source model."""
    import json

    from bids_app.cli.simulate import main_simulate

    with pytest.raises(SystemExit) as done:
        main_simulate([str(tmp_path / "bids"), "--n-subjects", "1", "--n-runs", "1",
                       "--effects", "recovery", "--n-jobs", "1"])
    assert done.value.code == 0
    truth = json.loads((tmp_path / "bids" / "sourcedata" / "simulation" / "truth.json")
                       .read_text())
    assert truth["model"]["source_model"] == "oscillation"
    frontal = {e["name"]: e for e in truth["effects"]}["left-frontal"]
    assert frontal["condition"] == ["action_action"]
    assert frontal["rho"] == {"object_object": 0.95, "action_action": -0.95,
                              "object_action": 0.95}
