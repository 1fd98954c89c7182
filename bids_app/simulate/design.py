"""The experimental design of the simulated picture-naming study (DESIGN 7).

Each run: ``dummy_s`` of dummy scans (fMRI), then alternating rest (21 s) and task blocks (30 s),
ending with a rest. A block starts with an instruction (2 s) followed by 10 pictures shown for
300 ms, 1.8-4.2 s apart (onset to onset). Every condition has ``blocks_per_condition`` blocks per
run in random order. The MEG and the BOLD run with the same run label follow the same timeline
(same block order and picture times), so that a block's latent engagement is shared by both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from bids_app.config import DEFAULT_CONDITIONS

#: Trigger codes written on the stimulus channel and in the MEG events' ``value`` column.
INSTRUCTION_CODE = 10


@dataclass(frozen=True)
class Design:
    """Parameters of the simulated study (times in s, rates in Hz)."""

    n_subjects: int = 10
    n_runs: int = 2
    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    blocks_per_condition: int = 5
    pictures_per_block: int = 10
    picture_duration_s: float = 0.3
    isi_range_s: tuple[float, float] = (1.8, 4.2)
    instruction_s: float = 2.0
    block_s: float = 30.0
    rest_s: float = 21.0
    tr_s: float = 3.0
    dummy_volumes: int = 5
    meg_sfreq: float = 600.0
    task: str = "naming"
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def dummy_s(self) -> float:
        return self.dummy_volumes * self.tr_s

    @property
    def n_blocks(self) -> int:
        return self.blocks_per_condition * len(self.conditions)

    @property
    def run_duration_s(self) -> float:
        """From the first dummy volume to the end of the final rest."""
        return self.dummy_s + self.n_blocks * (self.rest_s + self.block_s) + self.rest_s

    @property
    def n_volumes(self) -> int:
        """Volumes acquired per run, dummies included."""
        return int(np.ceil(self.run_duration_s / self.tr_s))

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("extra")
        return data


#: Presets of ``megfmri-fusion-simulate --preset``.
PRESETS: dict[str, Design] = {
    # the published design: 10 subjects x 2 runs, 5 blocks per condition, MEG at 600 Hz
    "paper": Design(),
    # short runs for tests and the demo: 8 subjects x 2 runs = 16 observations, 2 blocks per
    # condition per run, MEG at 250 Hz (Nyquist 125 Hz, above the 90-Hz top of high gamma)
    "small": Design(n_subjects=8, blocks_per_condition=2, meg_sfreq=250.0),
}


def make_design(preset: str = "small", **changes) -> Design:
    """A preset, optionally changed (``n_subjects``, ``n_runs``, ``meg_sfreq``...)."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset '{preset}': allowed are {', '.join(PRESETS)}.")
    changes = {k: v for k, v in changes.items() if v is not None}
    return replace(PRESETS[preset], **changes)


def run_events(design: Design, rng: np.random.Generator) -> pd.DataFrame:
    """The stimulus timeline of one run.

    Returns
    -------
    events : DataFrame
        Columns ``onset`` (s from the first acquired volume / start of the MEG recording),
        ``duration`` (s), ``trial_type`` (a condition or ``instruction``), ``block`` (1..n in
        time order; n/a for instructions is written as the block of the instruction) and
        ``value`` (trigger code: 1.. for the conditions, 10 for instructions).
    """
    order = np.repeat(np.arange(len(design.conditions)), design.blocks_per_condition)
    rng.shuffle(order)
    rows = []
    t = design.dummy_s
    lo, hi = design.isi_range_s
    budget = design.block_s - design.instruction_s - design.picture_duration_s - 0.5
    for block, cond_index in enumerate(order, start=1):
        t += design.rest_s
        condition = design.conditions[cond_index]
        rows.append((t, design.instruction_s, "instruction", block, INSTRUCTION_CODE))
        while True:  # picture intervals within the block's length
            isis = rng.uniform(lo, hi, size=design.pictures_per_block - 1)
            if isis.sum() <= budget:
                break
        onsets = t + design.instruction_s + np.concatenate([[0.0], np.cumsum(isis)])
        for onset in onsets:
            rows.append((round(float(onset), 4), design.picture_duration_s, condition, block,
                         cond_index + 1))
        t += design.block_s
    return pd.DataFrame(rows, columns=["onset", "duration", "trial_type", "block", "value"])
