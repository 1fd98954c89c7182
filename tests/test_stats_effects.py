"""Effects from bootstrap intervals (DESIGN 5.5) on hand-built tables with known answers."""

import numpy as np
import pandas as pd

from bids_app.stats import find_effects

CONDITIONS, WINDOWS = ["a", "b", "c"], [100.0 * w for w in range(10)]


def _table(distinct_windows=(3, 4, 5), significant_windows=(3, 4, 5), overlap=False):
    """One cluster/hemi/band; condition 'a' has interval [0.6, 0.8] in ``distinct_windows``
    (others [-0.2, 0.2]); with ``overlap`` 'b' is [0.1, 0.7] there, overlapping both others."""
    rows = []
    for cond in CONDITIONS:
        for w, start in enumerate(WINDOWS):
            low, high = -0.2, 0.2
            if cond == "a" and w in distinct_windows:
                low, high = 0.6, 0.8
            if cond == "b" and overlap and w in distinct_windows:
                low, high = 0.1, 0.7
            rows.append({"cluster": 4, "hemi": "rh", "condition": cond, "band": "alpha",
                         "window_start_ms": start, "rho": (low + high) / 2, "p": 0.5,
                         "significant": cond == "a" and w in significant_windows,
                         "ci99_low": low, "ci99_high": high, "ci999_low": low - 0.05,
                         "ci999_high": high + 0.05})
    return pd.DataFrame(rows)


def test_one_effect_in_windows_3_to_5():
    effects = find_effects(_table(), ci_levels=(0.99,))
    assert len(effects) == 1
    row = effects.iloc[0]
    assert (row.condition, row.cluster, row.hemi, row.band) == ("a", 4, "rh", "alpha")
    assert (row.start_ms, row.end_ms, row.ci_level) == (300.0, 700.0, 0.99)


def test_each_level_gives_its_own_rows():
    effects = find_effects(_table(), ci_levels=(0.99, 0.999))
    assert list(effects.ci_level) == [0.99, 0.999]
    assert (effects.start_ms == 300.0).all() and (effects.end_ms == 700.0).all()


def test_overlapping_intervals_give_no_effect():
    assert find_effects(_table(overlap=True), ci_levels=(0.99,)).empty


def test_non_significant_gives_no_effect():
    assert find_effects(_table(significant_windows=()), ci_levels=(0.99,)).empty


def test_gate_splits_runs_and_any_condition_counts():
    """Significance only in windows 3 and 5 -> two one-window effects; significance of another
    condition opens the gate as well."""
    effects = find_effects(_table(significant_windows=(3, 5)), ci_levels=(0.99,))
    assert list(zip(effects.start_ms, effects.end_ms)) == [(300.0, 500.0), (500.0, 700.0)]
    table = _table(significant_windows=())
    table.loc[(table.condition == "c") & table.window_start_ms.between(300, 500),
              "significant"] = True
    effects = find_effects(table, ci_levels=(0.99,))
    assert list(zip(effects.condition, effects.start_ms, effects.end_ms)) == [("a", 300.0,
                                                                              700.0)]


def test_differing_from_one_other_condition_only_is_no_effect():
    table = _table()
    sel = (table.condition == "c") & table.window_start_ms.between(300, 500)
    table.loc[sel, ["ci99_low", "ci99_high"]] = [0.7, 0.9]
    effects = find_effects(table, ci_levels=(0.99,))
    # 'a' overlaps 'c': no effect for 'a'; 'b' now differs from both 'a' and 'c': its effect
    assert "a" not in set(effects.condition)
    assert list(zip(effects.condition, effects.start_ms, effects.end_ms)) == [("b", 300.0,
                                                                              700.0)]
    assert np.isfinite(table.ci99_low).all()
