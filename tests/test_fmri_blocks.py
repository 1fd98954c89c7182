"""Block volumes, block values, normalisation and per-condition averages (DESIGN 4.2, 3-6)."""

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

from bids_app.blocks import DesignOptions, assign_blocks
from bids_app.fmri.options import BlockOptions
from bids_app.fmri.block_estimates import (
    BLOCK_ESTIMATE_COLUMNS,
    average_blocks,
    block_estimates,
    block_values,
    block_volume_table,
    design_volume_counts,
    normalize_block_values,
)
from bids_app.fmri.errors import EventTimingError, RepetitionTimeError

CONDITIONS = ["object_object", "action_action", "object_action"]


def paper_events(*, n_blocks=15, first_onset=36.0, jitter=False, seed=0):
    """The paper's design: 10 pictures per 30-s block, 21-s rest, conditions in rotation."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_blocks):
        start = first_onset + 51.0 * b
        if jitter:  # 10 asynchronies in 1.8-4.2 s summing to the 30-s block
            soa = rng.uniform(1.8, 4.2, 10)
            soa *= 30.0 / soa.sum()
            offsets = np.concatenate([[0.0], np.cumsum(soa)[:-1]])
        else:
            offsets = 3.0 * np.arange(10)
        rows += [(start + o, 0.3, CONDITIONS[b % 3]) for o in offsets]
        rows.append((start - 2.0, 1.0, "instruction"))
    return pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])


@pytest.mark.parametrize("jitter", [False, True])
def test_paper_design_gives_11_block_and_6_rest_volumes(jitter):
    trials = assign_blocks(paper_events(jitter=jitter), DesignOptions(CONDITIONS))
    assert design_volume_counts(trials, 3.0) == (11, 6)
    table = block_volume_table(trials, tr=3.0, n_volumes=260, options=BlockOptions(dummy_scans=5))
    assert len(table) == 15
    assert ((table.block_stop - table.block_start) == 11).all()
    assert ((table.rest_stop - table.rest_start) == 6).all()
    # every volume of a 51-s cycle is used once: a rest starts where the previous block ended
    np.testing.assert_array_equal(
        table.rest_start.to_numpy()[1:], table.block_stop.to_numpy()[:-1]
    )
    # first block: onset 36 s + 3 s delay = 39 s = original volume 13 = kept volume 8
    assert table.loc[0, ["rest_start", "block_start", "block_stop"]].tolist() == [2, 8, 19]


def test_delay_moves_the_first_block_volume_to_the_next_acquisition():
    trials = assign_blocks(paper_events(n_blocks=3, first_onset=37.0), DesignOptions(CONDITIONS))
    # 37 + 3 = 40 s falls between volumes 13 (39 s) and 14 (42 s): the block starts at 14
    table = block_volume_table(trials, tr=3.0, n_volumes=80, options=BlockOptions(dummy_scans=5))
    assert table.block_start.iloc[0] == 14 - 5


def tiny_case():
    """Two blocks, TR 2 s, 1 dummy volume, 2 block and 2 rest volumes, 2-s delay."""
    trials = pd.DataFrame(
        {
            "onset": [6.0, 8.0, 16.0],
            "duration": [0.5, 0.5, 0.5],
            "condition": ["a", "a", "b"],
            "block": [1, 1, 2],
        }
    )
    # kept volumes 0..9 (original 1..10). Block 1: ceil((6+2)/2) = 4 -> kept 3: block [3, 5),
    # rest [1, 3). Block 2: ceil((16+2)/2) = 9 -> kept 8: block [8, 10), rest [6, 8).
    p = np.array([0.0, 1, 2, 10, 12, 3, 3, 5, 7, 1])
    series = pd.DataFrame({"p": p, "q": 2 * p + 5})
    options = BlockOptions(dummy_scans=1, hrf_delay_s=2.0, block_volumes=2, rest_volumes=2)
    return trials, series, options


def test_block_values_by_hand():
    trials, series, options = tiny_case()
    table = block_volume_table(trials, tr=2.0, n_volumes=10, options=options)
    assert table[["rest_start", "rest_stop", "block_start", "block_stop"]].to_numpy().tolist() == [
        [1, 3, 3, 5],
        [6, 8, 8, 10],
    ]
    values = block_values(series, table)
    assert list(values.columns) == ["condition", "block", "parcel", "value"]
    # p: block 1 = mean(10, 12) - mean(1, 2) = 9.5; block 2 = mean(7, 1) - mean(3, 5) = 0
    # q = 2p + 5: differences double, the offset cancels
    assert values.to_dict("list") == {
        "condition": ["a", "a", "b", "b"],
        "block": [1, 1, 2, 2],
        "parcel": ["p", "q", "p", "q"],
        "value": [9.5, 19.0, 0.0, 0.0],
    }


def test_normalisation_by_hand():
    trials, series, options = tiny_case()
    values = block_values(series, block_volume_table(trials, tr=2.0, n_volumes=10, options=options))
    out = normalize_block_values(values, series)
    assert list(out.columns) == list(BLOCK_ESTIMATE_COLUMNS)
    # p: mean over blocks 4.75; sample SD of the series: sum of squared deviations 148.4 over 9
    sd = np.sqrt(148.4 / 9)
    p = out[out.parcel == "p"].normalized.to_numpy()
    np.testing.assert_allclose(p, [4.75 / sd, -4.75 / sd], rtol=1e-12)
    # q = 2p + 5: the normalised values do not depend on the parcel's scale or offset
    np.testing.assert_allclose(out[out.parcel == "q"].normalized.to_numpy(), p, rtol=1e-12)


def test_block_estimates_chain_matches_the_hand_numbers():
    # 10 volumes x 2 s = 20 s: the 510-s high-pass has no cosine, so the numbers are unchanged
    trials, series, options = tiny_case()
    estimates = block_estimates(series, trials, tr=2.0, options=options)
    assert list(estimates.columns) == ["condition", "block", "parcel", "value", "normalized"]
    np.testing.assert_allclose(estimates.value, [9.5, 19.0, 0.0, 0.0])
    assert np.isclose(estimates.normalized.iloc[0], 4.75 / np.sqrt(148.4 / 9))


def test_average_blocks_per_condition():
    estimates = pd.DataFrame(
        {
            "condition": ["a", "a", "b", "b", "a", "a"],
            "block": [1, 1, 2, 2, 3, 3],
            "parcel": ["x", "y", "x", "y", "x", "y"],
            "value": [1.0, 2.0, 10.0, 20.0, 3.0, 6.0],
            "normalized": [0.5, 0.1, 1.0, 2.0, -0.5, 0.3],
        }
    )
    out = average_blocks(estimates, conditions=["b", "a"])
    assert out.to_dict("list") == {
        "condition": ["b", "b", "a", "a"],
        "parcel": ["x", "y", "x", "y"],
        "value": [10.0, 20.0, 2.0, 4.0],
        "normalized": [1.0, 2.0, 0.0, pytest.approx(0.2)],
        "n_blocks": [1, 1, 2, 2],
    }


def test_constant_parcel_gives_nan_with_warning(caplog):
    trials, series, options = tiny_case()
    series["flat"] = 7.0
    with caplog.at_level(logging.WARNING):
        out = block_estimates(series, trials, tr=2.0, options=options)
    assert out[out.parcel == "flat"].normalized.isna().all()
    assert "flat" in caplog.text


# --- bad timing -------------------------------------------------------------------------------


def test_bold_shorter_than_events():
    trials = assign_blocks(paper_events(n_blocks=6), DesignOptions(CONDITIONS))
    with pytest.raises(EventTimingError, match="shorter than its events.*block 6"):
        block_volume_table(trials, tr=3.0, n_volumes=90, options=BlockOptions(dummy_scans=5))


def test_events_before_first_kept_volume():
    trials = assign_blocks(paper_events(n_blocks=3, first_onset=9.0), DesignOptions(CONDITIONS))
    with pytest.raises(EventTimingError, match="before the first kept volume.*lower dummy_scans"):
        block_volume_table(trials, tr=3.0, n_volumes=200, options=BlockOptions(dummy_scans=5))


def test_rest_before_first_kept_volume():
    # onset 18 s: block from volume 7, its 6 rest volumes would start at volume 1 < 5
    trials = assign_blocks(paper_events(n_blocks=3, first_onset=18.0), DesignOptions(CONDITIONS))
    expected = r"rest before block 1 .* needs 6 volume.*before the first kept volume"
    with pytest.raises(EventTimingError, match=expected):
        block_volume_table(trials, tr=3.0, n_volumes=200, options=BlockOptions(dummy_scans=5))


def test_single_block_needs_explicit_rest_length():
    trials = assign_blocks(paper_events(n_blocks=1), DesignOptions(CONDITIONS))
    with pytest.raises(EventTimingError, match="single block.*rest_volumes"):
        design_volume_counts(trials, 3.0)
    table = block_volume_table(
        trials, tr=3.0, n_volumes=60,
        options=BlockOptions(dummy_scans=5, block_volumes=11, rest_volumes=6),
    )
    assert len(table) == 1


def test_invalid_counts_and_tr():
    trials, series, options = tiny_case()
    with pytest.raises(EventTimingError, match="rest_volumes must be a whole number"):
        block_volume_table(trials, tr=2.0, n_volumes=10,
                           options=dataclasses.replace(options, rest_volumes=0))
    with pytest.raises(RepetitionTimeError, match="milliseconds"):
        block_estimates(series, trials, tr=2000.0, options=options)


def test_trials_table_must_come_from_assign_blocks():
    with pytest.raises(EventTimingError, match="assign_blocks"):
        design_volume_counts(pd.DataFrame({"onset": [1.0]}), 3.0)
