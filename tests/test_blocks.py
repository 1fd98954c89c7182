"""Block structure from BIDS events."""

import numpy as np
import pandas as pd
import pytest

from bids_app.blocks import DesignOptions, EventsError, assign_blocks, block_table

CONDITIONS = ["a", "b"]


def _events(with_block=False):
    # two blocks of 'a' separated by rest, one of 'b'; an instruction before each block
    rows = []
    for block, (cond, start) in enumerate([("a", 10.0), ("b", 60.0), ("a", 110.0)], start=1):
        rows.append((start - 2.0, 1.0, "instruction", "n/a"))
        for k in range(4):
            rows.append((start + 3.0 * k, 0.3, cond, block))
    df = pd.DataFrame(rows, columns=["onset", "duration", "trial_type", "block"])
    if not with_block:
        df = df.drop(columns="block")
    else:
        df = df[df.trial_type != "instruction"]
    return df.sample(frac=1.0, random_state=0)  # order must not matter


def test_blocks_found_from_gaps_and_condition_changes():
    trials = assign_blocks(_events(), DesignOptions(CONDITIONS, block_gap_s=8.0))
    assert list(trials.columns) == ["onset", "duration", "condition", "block"]
    assert len(trials) == 12 and "instruction" not in set(trials.condition)
    assert np.all(np.diff(trials.onset) > 0)
    assert trials.groupby("block").size().tolist() == [4, 4, 4]
    assert trials.drop_duplicates("block").condition.tolist() == ["a", "b", "a"]


def test_gap_splits_same_condition():
    ev = pd.DataFrame({"onset": [0.0, 3.0, 30.0, 33.0], "duration": 0.3, "trial_type": "a"})
    assert assign_blocks(ev, DesignOptions(["a"], block_gap_s=8.0)).block.tolist() == [1, 1, 2, 2]
    assert assign_blocks(ev, DesignOptions(["a"], block_gap_s=40.0)).block.tolist() == [1, 1, 1, 1]


def test_explicit_block_column_is_used():
    trials = assign_blocks(_events(with_block=True), DesignOptions(CONDITIONS, block_gap_s=0.1))
    assert trials.groupby("block").size().to_dict() == {1: 4, 2: 4, 3: 4}


def test_block_table():
    blocks = block_table(assign_blocks(_events(), DesignOptions(CONDITIONS)))
    assert blocks.condition.tolist() == ["a", "b", "a"]
    np.testing.assert_allclose(blocks.onset, [10.0, 60.0, 110.0])
    np.testing.assert_allclose(blocks.offset, [19.3, 69.3, 119.3])
    assert blocks.n_trials.tolist() == [4, 4, 4]


@pytest.mark.parametrize(
    "events, message",
    [
        (pd.DataFrame({"onset": [1.0], "duration": [0.3]}), "trial_type"),
        (pd.DataFrame({"onset": [1.0], "duration": [0.3], "trial_type": ["x"]}), "trial types x"),
        (pd.DataFrame({"onset": ["n/a"], "duration": [0.3], "trial_type": ["a"]}), "not numbers"),
        (
            pd.DataFrame({"onset": [1.0, 2.0], "duration": 0.3, "trial_type": ["a", "b"], "block": [1, 1]}),
            "mix several conditions",
        ),
    ],
)
def test_bad_events_are_explained(events, message):
    with pytest.raises(EventsError, match=message):
        assign_blocks(events, DesignOptions(CONDITIONS))
