"""The planted effects are found: the recovery studies, end to end (issues 3, 8 and 25).

The small preset's design with 16 subjects x 2 runs (32 observations, the paper had 20) and
the ``recovery`` effects (docs/simulation.md): the task-dependent couplings reversed in their
distinct condition and oscillating planted sources. It is the demo with other options
(``megfmri-fusion-demo DIR --n-subjects 16 --effects recovery``): both levels run with the
app's defaults. docs/statistics.md explains why a study of the demo's size cannot
show task-dependent effects reliably, whatever the analysis.

It takes about 15 minutes on 2 cores, so it runs only when asked::

    MEGFMRI_RECOVERY=1 python -m pytest tests/test_recovery.py -n 0 -s

``MEGFMRI_RECOVERY`` may also name a folder: the study is written there and kept, and a
finished study found there is checked again without being recomputed.

The **focal** recovery study (issue 25) plants the same couplings in focal sources that do not
follow the analysis parcels (``--effects focal``: per effect and hemisphere three off-grid
cortical points with their own courses, BOLD within 8 mm), placed at the centroids of the
effects' regions in **Desikan's atlas** (``--plant-atlas-file lh.aparc.annot`` from the shared
test data) while the app analyses with its own default atlas: 10 subjects x 2 runs, the paper's
size. The issue asks that every task-invariant coupling be found in both hemispheres and at
least half of the task-dependent ones; measured, none is (:data:`FOCAL_LIMIT`), so that test is
a strict expected failure on this study, and the null parcels must stay at the chance rate.
Since issue 25 (normal orientation) the parcel study misses one of its three task-dependent
effects too (:data:`PARCEL_LIMIT`): the same test is a strict expected failure there.
About 40 minutes::

    MEGFMRI_FOCAL_RECOVERY=1 python -m pytest tests/test_recovery.py -n 0 -s
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from bids_app.cli.simulate import run_demo
from bids_app.reports.group import matching_effects, planted_vs_found

pytestmark = pytest.mark.slow

#: The studies: environment variable that asks for it, subjects, effects, minutes on 2 cores.
STUDIES = {
    "parcel": ("MEGFMRI_RECOVERY", 16, "recovery", 15),
    "focal": ("MEGFMRI_FOCAL_RECOVERY", 10, "focal", 40),
}
#: Share of the task-dependent (effect, hemisphere) pairs that must be found.
TASK_DEPENDENT_SHARE = {"parcel": 1.0, "focal": 0.5}
#: Significant bins allowed in the null parcels: 1 % of their 3 x 6 x 22 bins each (under
#: the null about 0.23-0.29 % are significant, docs/statistics.md).
NULL_SHARE = 0.01


@pytest.fixture(scope="module", params=list(STUDIES))
def study(request):
    variable, n_subjects, effects, minutes = STUDIES[request.param]
    setting = os.environ.get(variable)
    if not setting:
        pytest.skip(f"the {request.param} recovery study takes about {minutes} minutes on 2 "
                    f"cores; set {variable}=1 (or a folder to keep it in) to run it")
    plant_atlas = None
    if request.param == "focal":
        shared = request.getfixturevalue("mne_testing")
        plant_atlas = shared / "subjects" / "fsaverage" / "label" / "lh.aparc.annot"
    root = (Path(tempfile.mkdtemp(prefix=f"recovery-{request.param}-")) if setting == "1"
            else Path(setting))
    bids, out = root / "bids", root / "derivatives"
    group = out / "group"
    if not list(group.glob("*_desc-effects_table.tsv")):
        assert run_demo(root, n_subjects=n_subjects, effects=effects, nprocs=2,
                        plant_atlas_file=plant_atlas) == 0

    def table(suffix):
        return pd.read_csv(next(group.glob(f"*_desc-{suffix}.tsv")), sep="\t")

    truth = json.loads((bids / "sourcedata" / "simulation" / "truth.json").read_text())
    effects = table("effects_table")
    planted, nulls = planted_vs_found(truth, table("ward_clusters"), effects, table("spearman_stat"))
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(f"\nRecovery study in {root}\n{planted.to_string()}\n{nulls.to_string()}")
    return {"truth": truth, "planted": planted, "nulls": nulls, "effects": effects,
            "clusters": table("ward_clusters"), "model": request.param}


#: Why the focal study's sensitivity test is expected to fail (measured 2026-12-05,
#: docs/statistics.md): strict, so that a change that makes the app find them turns it red and the
#: record is updated.
FOCAL_LIMIT = (
    "focal couplings at the paper's size are not found (issue 25): the holding parcels' mean rho "
    "reached at most 0.50-0.52 in the planted pattern (left-frontal high beta, right occipital "
    "alpha), near 0 elsewhere, while n = 20 needs |rho| >= 0.65 for p < 0.05 / 22; parcel "
    "averaging of the focal fMRI response (r 0.13-0.54) and of the MEG power change (r 0.22-0.79) "
    "attenuates the planted coupling"
)


#: Why the parcel study's sensitivity test is expected to fail with the defaults since issue 25
#: (measured 2026-12-05, docs/statistics.md): strict, as :data:`FOCAL_LIMIT`.
PARCEL_LIMIT = (
    "with the normal orientation (the default since issue 25) the seed-0 parcel study misses the "
    "left-frontal high-beta effect: its parcels' mean rho was -0.11 / 0.19 / 0.50 where -0.95 / "
    "0.95 / 0.95 were planted (-0.22 / 0.35 / 0.50 and found with pick_ori = 'max-power'); the "
    "seed-1 study finds all five planted pairs with the defaults"
)
LIMITS = {"focal": FOCAL_LIMIT, "parcel": PARCEL_LIMIT}


def test_every_planted_effect_is_found(study, request):
    """Sensitivity: every planted task-invariant coupling is found in each hemisphere, as
    significant correlations in its band and windows, and the task-dependent ones (all of them
    on the parcel model, at least half on focal sources) as an effect of their distinct
    condition in their band and windows. This is the issues' target; what the method reaches
    falls short of it on both studies (:data:`FOCAL_LIMIT`, :data:`PARCEL_LIMIT`)."""
    request.applymarker(pytest.mark.xfail(strict=True, reason=LIMITS[study["model"]]))
    planted = study["planted"]
    invariant = planted[planted["kind"] == "task-invariant"]
    assert not invariant.empty and (invariant["found"] == "yes").all(), invariant.to_string()
    dependent = planted[planted["kind"] == "task-dependent"]
    share = (dependent["found"] == "yes").mean()
    assert share >= TASK_DEPENDENT_SHARE[study["model"]], dependent.to_string()


def test_task_dependent_effects_span_the_planted_windows(study):
    """The effects found for a planted task-dependent coupling start and end within one window
    length (200 ms) of the planted range."""
    clusters = study["clusters"].set_index("parcel")
    checked = 0
    for effect in study["truth"]["effects"]:
        if effect["kind"] != "task-dependent":
            continue
        starts = effect["window_starts_ms"]
        lo, hi = min(starts), max(starts) + 200.0
        planted = clusters.loc[effect["parcels"]]
        found = matching_effects(study["effects"], planted["cluster"], planted["hemi"].iloc[0],
                                 effect["band"], effect["condition"], (lo, hi))
        if found.empty:
            continue                        # whether it is found is the test above
        checked += 1
        assert found["start_ms"].min() >= lo - 200.0 - 1e-6, (effect["name"], found)
        assert found["end_ms"].max() <= hi + 200.0 + 1e-6, (effect["name"], found)
    if study["model"] == "parcel":
        assert checked >= 2, "fewer than two of the three task-dependent effects were found"


def test_null_parcels_are_not_found(study):
    """False positives: the null parcels (fMRI engagement, no MEG coupling) have at most 1 % of
    their bins significant."""
    nulls = study["nulls"]
    n_bins = 3 * 6 * 22
    share = nulls["significant correlation bins"].sum() / (n_bins * len(nulls))
    assert len(nulls) >= 3 and share <= NULL_SHARE, nulls.to_string()
