"""The group report's reading aids: the effects table's caution, planted vs found."""

import itertools
import json

import pandas as pd

from bids_app.reports.group import _recovery_summary, effects_caution, planted_vs_found

BANDS = ["alpha", "beta"]


def _boot():
    # three (cluster, hemi) units, repeated over conditions and windows as in the bootstrap table
    units = [(1, "lh"), (1, "rh"), (2, "lh")]
    return pd.DataFrame([(c, h, w) for c, h in units for w in range(3)],
                        columns=["cluster", "hemi", "window_start_ms"])


def test_effects_are_counted_per_level_against_the_cells_they_come_from():
    effects = pd.DataFrame({
        "cluster": [1, 1, 1, 2], "hemi": ["lh", "lh", "rh", "lh"],
        "band": ["alpha", "alpha", "beta", "alpha"], "ci_level": [0.99, 0.99, 0.99, 0.999]})
    text = effects_caution(effects, _boot(), BANDS, "bonferroni-windows")
    # 3 units x 2 bands = 6 cells; at 99 %: 3 rows in cells (1,lh,alpha), (1,rh,beta)
    assert "3 effect(s) at the 99 % level, in 2 of 6" in text
    assert "1 effect(s) at the 99.9 % level, in 1 of 6" in text
    assert "corrects over windows only" in text


def test_no_effect_says_so():
    empty = pd.DataFrame(columns=["cluster", "hemi", "band", "ci_level"])
    assert effects_caution(empty, _boot(), BANDS, "bonferroni-windows").startswith("No effect in 6 ")


def test_uncorrected_significance_is_not_called_corrected():
    effects = pd.DataFrame(columns=["cluster", "hemi", "band", "ci_level"])
    text = effects_caution(effects, _boot(), BANDS, correction="none")
    assert "not corrected for multiple comparisons" in text
    assert "corrects over windows only" not in text


def test_planted_vs_found_checks_condition_band_windows_and_counts_null_bins():
    """A task-dependent effect is found only by an effect of its distinct condition, in its band
    and planted windows, in its parcels' clusters and hemisphere; a task-invariant one by
    significant correlations in its band and windows; null parcels by their significant bins."""
    starts = [100 + k * 100 / 3 for k in range(22)]
    truth = {
        "effects": [
            {"name": "frontal", "kind": "task-dependent", "parcels": ["a-lh", "b-lh"],
             "band": "highbeta", "window_starts_ms": starts[6:10], "condition": ["aa"]},
            {"name": "occipital", "kind": "task-invariant", "parcels": ["c-lh", "c-rh"],
             "band": "alpha", "window_starts_ms": starts[3:13], "condition": ["oo", "aa", "oa"]},
        ],
        "null_parcels": ["n-rh"],
    }
    clusters = pd.DataFrame({"parcel": ["a-lh", "b-lh", "c-lh", "c-rh", "n-rh"],
                             "cluster": [1, 1, 2, 2, 3]})
    effects = pd.DataFrame(
        [("oo", 1, "lh", "highbeta", 300.0, 600.0, 0.99),     # wrong condition
         ("aa", 1, "lh", "lowbeta", 300.0, 600.0, 0.99),      # wrong band
         ("aa", 1, "lh", "highbeta", 800.0, 1000.0, 0.99),    # after the planted windows
         ("aa", 3, "rh", "highbeta", 300.0, 600.0, 0.99)],    # another cluster
        columns=["condition", "cluster", "hemi", "band", "start_ms", "end_ms", "ci_level"])
    grid = list(itertools.product(["c-lh", "c-rh", "n-rh"], ["oo", "aa", "oa"],
                                  ["alpha", "highbeta"], starts))
    spearman = pd.DataFrame(grid, columns=["parcel", "condition", "band", "window_start_ms"])
    spearman["significant"] = False
    spearman.loc[(spearman.parcel == "c-lh") & (spearman.band == "alpha")
                 & (spearman.window_start_ms == starts[5]), "significant"] = True
    spearman.loc[(spearman.parcel == "c-rh") & (spearman.band == "alpha")
                 & (spearman.window_start_ms == starts[20]), "significant"] = True  # too late
    spearman.loc[(spearman.parcel == "n-rh") & (spearman.window_start_ms == starts[0]),
                 "significant"] = True                                # 3 conditions x 2 bands

    planted, nulls = planted_vs_found(truth, clusters, effects, spearman)
    assert list(planted["found"]) == ["no", "yes", "no"]
    effects.loc[len(effects)] = ("aa", 1, "lh", "highbeta", 433.3, 633.3, 0.999)
    planted, nulls = planted_vs_found(truth, clusters, effects, spearman)
    assert list(planted["found"]) == ["yes", "yes", "no"]
    assert planted["what was found"][0] == "aa 433-633 ms"
    assert nulls.to_dict("records") == [{"null parcel": "n-rh", "cluster": 3,
                                         "significant correlation bins": 6}]
    assert _recovery_summary(planted, nulls, spearman) == (
        "2 of 3 planted (effect, hemisphere) pairs found. Null parcels: 6 significant bins of "
        "132 (4.55 %; about 0.25 % are expected by chance), in 1 of 1 parcels.")


def test_participants_section_links_each_report_and_repeats_its_warnings(tmp_path):
    """Issue 24: one line per participant report, linking to its QC sections, with the
    participant-level warnings repeated; a participant with warnings is named in the group
    page's warnings box."""
    from bids_app.reports.group import participants_section
    from bids_app.reports.html import render_page
    from bids_app.reports.participant import report_warnings_path

    for subject, warnings in (("01", []), ("02", ["task-x_run-1: the EPI-T1w registration "
                                                  "looks off"])):
        (tmp_path / f"sub-{subject}.html").write_text("<html></html>")
        path = report_warnings_path(tmp_path, subject)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"subject": subject, "warnings": warnings, "sections": {
            "Run plan": "run-plan", "Anatomy and parcels": "anatomy-and-parcels",
            "fMRI": "fmri", "MEG": "meg"}}))
    section, warnings = participants_section(tmp_path)
    page = render_page("group", "", [section], warnings)
    assert warnings == ["sub-02: 1 participant-level warning(s), listed under Participants"]
    for subject in ("01", "02"):
        for anchor in ("anatomy-and-parcels", "fmri", "meg"):
            assert f'href="sub-{subject}.html#{anchor}"' in page
        assert f'href="sub-{subject}.html#run-plan"' not in page
    assert "EPI-T1w registration looks off" in page and "no warnings" in page
