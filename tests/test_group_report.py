"""The group report's reading aid for the effects table."""

import pandas as pd

from bids_app.reports.group import effects_caution

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
    text = effects_caution(effects, _boot(), BANDS)
    # 3 units x 2 bands = 6 cells; at 99 %: 3 rows in cells (1,lh,alpha), (1,rh,beta)
    assert "3 effect(s) at the 99 % level, in 2 of 6" in text
    assert "1 effect(s) at the 99.9 % level, in 1 of 6" in text
    assert "corrects over windows only" in text


def test_no_effect_says_so():
    empty = pd.DataFrame(columns=["cluster", "hemi", "band", "ci_level"])
    assert effects_caution(empty, _boot(), BANDS).startswith("No effect in 6 ")


def test_uncorrected_significance_is_not_called_corrected():
    effects = pd.DataFrame(columns=["cluster", "hemi", "band", "ci_level"])
    text = effects_caution(effects, _boot(), BANDS, correction="none")
    assert "not corrected for multiple comparisons" in text
    assert "corrects over windows only" not in text
