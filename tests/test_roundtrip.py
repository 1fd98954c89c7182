"""Published tables reproduce their own statistics (issue 19, item 10).

Written with 10 significant digits, block averages that differed only in their last bits were
equal in the observation tables: recomputing Spearman from ``desc-observations_*`` gave another
rho than ``desc-spearman_stat`` (by up to 3e-3 in one cell of 55,440 on the demo). Every table
is now written with the shortest text that reads back as the same float. The group level runs
here on participant outputs whose values lie on a 0.01 grid, where such near-ties are common;
``tests/test_end_to_end.py`` checks the same on the simulated study.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bids_app.cli.run import run
from bids_app.io.derivatives import read_table, write_table
from participant_outputs import ATLAS, TASK, write_study
from reproduce import assert_group_tables_reproduce, assert_same_table


def test_written_floats_read_back_identical(tmp_path):
    """Any float64, on a grid or not, tiny, huge, negative zero or missing, reads back as the
    same number, in plain and gzipped tables."""
    rng = np.random.default_rng(0)
    grid = np.round(rng.normal(size=(4000, 2)) * 100) / 100
    values = np.concatenate([grid.mean(axis=1),                 # near-ties after averaging
                             rng.normal(size=2000) * 10.0 ** rng.integers(-300, 300, 2000),
                             [0.1 + 0.2, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, np.nan]])
    table = pd.DataFrame({"parcel": [f"p{i}" for i in range(len(values))], "value": values})
    for name in ("t.tsv", "t.tsv.gz"):
        write_table(table, tmp_path / name, description="round trip")
        assert_same_table(read_table(tmp_path / name), table, name)


def test_ten_digits_would_not_do():
    """Why: two block averages equal in their first ten digits are different numbers."""
    a, b = np.mean([0.1, 0.2]), np.mean([0.15, 0.15])
    assert a != b and f"{a:.10g}" == f"{b:.10g}"


@pytest.fixture(scope="module")
def group_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    bids, out = write_study(root, n_subjects=6, n_runs=1)
    code = run([str(bids), str(out), "group", "-w", str(root / "work"), "--nprocs", "2",
                "--random-seed", "3", "--n-clusters", "4", "--n-bootstrap", "500"])
    assert code == 0
    return out


def test_group_statistics_reproduce_from_the_written_tables(group_study):
    """Observations = block averages of the participant tables; Spearman, Ward clusters,
    bootstrap intervals, effects and t-tests recomputed from the observation tables (with the
    settings of their sidecars) = the written tables, bit for bit."""
    assert_group_tables_reproduce(group_study, TASK, ATLAS)


def test_participant_fmri_table_holds_the_values_computed(tmp_path):
    """The fMRI block table a run writes equals, bit for bit, the block values computed in
    memory from the same time series (the published table is this step's file, copied)."""
    from bids_app.blocks import DesignOptions, assign_blocks
    from bids_app.fmri.options import BlockOptions
    from bids_app.options import as_dict
    from bids_app.fmri import block_estimates
    from bids_app.interfaces.fmri import BlockValues
    from bids_app.io.checks import read_events
    from bids_app.io.derivatives import write_tsv
    from skeleton import CONDITIONS, write_events

    rng = np.random.default_rng(1)
    series = pd.DataFrame(100 + rng.normal(size=(60, 4)), columns=["a-lh", "b-lh", "c-rh", "d-rh"])
    write_tsv(series, tmp_path / "timeseries.tsv")
    events = write_events(tmp_path / "events.tsv")
    options = BlockOptions(dummy_scans=0, highpass_period_s=128.0)
    step = BlockValues(timeseries=str(tmp_path / "timeseries.tsv"), events=str(events), tr=2.0,
                       design=as_dict(DesignOptions(list(CONDITIONS))), options=as_dict(options))
    written = read_table(step.run(cwd=str(tmp_path)).outputs.out_file)
    trials = assign_blocks(read_events(events), DesignOptions(list(CONDITIONS), block_gap_s=8.0))
    expected = block_estimates(read_table(tmp_path / "timeseries.tsv"), trials, tr=2.0,
                               options=options)
    assert_same_table(written, expected, "blocks")


def test_every_table_is_written_by_the_one_writer():
    """Tables (work-folder steps included) are written by bids_app.io.derivatives only, in its
    exact format; the simulator, which writes a raw dataset, is the exception."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "bids_app"
    writers = [str(p.relative_to(package)) for p in package.rglob("*.py")
               if ".to_csv(" in p.read_text() and p.parts[-2] != "simulate"]
    assert writers == ["io/derivatives.py"]
