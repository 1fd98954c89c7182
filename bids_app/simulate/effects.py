"""Planted effects and the latent engagement that couples MEG and fMRI (DESIGN 7).

Every (subject, run, condition, block, parcel) has a latent engagement ``z``:

    z = sqrt(w) * g[subject, run, condition, group] + sqrt(1 - w) * e[subject, run, condition, block, parcel]

where ``group`` is the planted effect a parcel belongs to (a parcel outside every effect is a
group of its own), so that an effect's parcels move together, and ``g``, ``e`` are independent
standard normal draws. Then

* fMRI block amplitude (% signal change) = ``fmri_base + fmri_gain * z`` in every parcel;
* MEG relative band-power change in the effect's band and windows (planted parcels only)
  = ``meg_gain * (rho_c * z + sqrt(1 - rho_c**2) * n)`` with ``n`` standard normal and ``rho_c``
  the effect's intended correlation for condition ``c`` (clipped at -0.8).

At the block level the MEG change and the fMRI amplitude of a planted parcel therefore correlate
with ``rho_c``; the observed correlation over (subject, run) observations is lower, as both
modalities add measurement noise and the normalisation subtracts the run mean. A task-dependent
effect has a non-zero ``rho`` for one condition only; a task-invariant effect has the same
``rho`` for all conditions. Null parcels have fMRI amplitudes but no MEG coupling.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app.simulate.design import Design

BANDS = ("theta", "alpha", "lowbeta", "highbeta", "lowgamma", "highgamma")
KINDS = ("task-dependent", "task-invariant")


@dataclass
class Effect:
    """One planted MEG-fMRI coupling.

    ``regions`` maps an atlas name to parcel-name patterns (fnmatch, case-insensitive);
    ``window_ms`` is the (first, last) window start (ms) of the planted windows, which cover
    ``first`` to ``last + 200`` ms after each picture.
    """

    name: str
    kind: str
    hemi: tuple[str, ...]
    band: str
    window_ms: tuple[float, float]
    rho: dict[str, float]
    regions: dict[str, list[str]]
    max_parcels: int = 3
    parcels: list[str] = field(default_factory=list)

    def check(self, conditions) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"effect {self.name}: kind must be one of {KINDS}, got {self.kind}")
        if self.band not in BANDS:
            raise ValueError(f"effect {self.name}: band must be one of {BANDS}, got {self.band}")
        unknown = set(self.rho) - set(conditions)
        if unknown:
            raise ValueError(f"effect {self.name}: unknown conditions {sorted(unknown)}")
        if not all(-1 < r < 1 for r in self.rho.values()):
            raise ValueError(f"effect {self.name}: every rho must be in (-1, 1)")
        if self.window_ms[0] > self.window_ms[1]:
            raise ValueError(f"effect {self.name}: window_ms must be (first, last)")


@dataclass
class EffectSet:
    """The planted effects, the null parcels and the model constants."""

    effects: list[Effect]
    null_regions: dict[str, list[str]]
    max_null_parcels: int = 4
    null_parcels: list[str] = field(default_factory=list)
    shared_weight: float = 0.7
    fmri_base: float = 1.0
    fmri_gain: float = 0.6
    meg_gain: float = 0.6

    def to_dict(self) -> dict:
        return asdict(self)


def default_effects(conditions) -> EffectSet:
    """Effects echoing the paper's Table 1: three task-dependent couplings (one per condition)
    and a task-invariant negative alpha coupling in occipital cortex."""
    a, b, c = list(conditions)[:3]
    zero = {a: 0.0, b: 0.0, c: 0.0}
    return EffectSet(
        effects=[
            Effect(
                name="left-frontal", kind="task-dependent", hemi=("lh",), band="highbeta",
                window_ms=(300.0, 400.0), rho={**zero, b: 0.9},
                regions={"destrieux": ["G_front_inf-Opercular*", "G_front_inf-Triangul*"],
                         "desikan": ["parsopercularis*", "parstriangularis*"],
                         "fallback": ["frontal_*"]},
            ),
            Effect(
                name="left-temporal", kind="task-dependent", hemi=("lh",), band="theta",
                window_ms=(200.0, 333.4), rho={**zero, a: 0.9},
                regions={"destrieux": ["G_temp_sup-Lateral*", "S_temporal_sup*"],
                         "desikan": ["superiortemporal*", "bankssts*"],
                         "fallback": ["temporal_*"]},
            ),
            Effect(
                name="right-parietal", kind="task-dependent", hemi=("rh",), band="lowgamma",
                window_ms=(500.0, 600.0), rho={**zero, c: 0.9},
                regions={"destrieux": ["G_pariet_inf-Supramar*"],
                         "desikan": ["supramarginal*"],
                         "fallback": ["parietal_*"]},
            ),
            Effect(
                name="occipital-alpha", kind="task-invariant", hemi=("lh", "rh"), band="alpha",
                window_ms=(200.0, 500.0), rho={a: -0.8, b: -0.8, c: -0.8},
                regions={"destrieux": ["S_calcarine*", "G_cuneus*", "Pole_occipital*"],
                         "desikan": ["pericalcarine*", "cuneus*", "lateraloccipital*"],
                         "fallback": ["occipital_*"]},
                max_parcels=2,
            ),
        ],
        null_regions={"destrieux": ["G_parietal_sup-lh*", "S_central-rh*", "G_precentral-rh*"],
                      "desikan": ["superiorparietal*-lh", "precentral*-rh"],
                      "fallback": ["parietal_*-lh", "central_*-rh"]},
    )


def load_effects(path: Path, conditions) -> EffectSet:
    """Read effects from JSON (same fields as :func:`default_effects` produces)."""
    data = json.loads(Path(path).read_text())
    effects = [Effect(**{**e, "hemi": tuple(e["hemi"]), "window_ms": tuple(e["window_ms"])})
               for e in data.pop("effects")]
    effect_set = EffectSet(effects=effects, **data)
    for effect in effect_set.effects:
        effect.check(conditions)
    return effect_set


def _hemi_of(name: str) -> str:
    return "rh" if name.endswith("-rh") else "lh"


def resolve_parcels(effect_set: EffectSet, parcel_names: list[str], atlas: str) -> EffectSet:
    """Choose the parcels of each effect and the null parcels among ``parcel_names``.

    Parcels are matched by the effect's patterns for ``atlas`` within its hemispheres, sorted
    by name, and at most ``max_parcels`` per hemisphere are kept. A parcel belongs to one effect
    at most. Raises ``ValueError`` when an effect matches no included parcel.
    """
    taken: set[str] = set()
    for effect in effect_set.effects:
        patterns = effect.regions.get(atlas)
        if not patterns:
            raise ValueError(f"effect {effect.name} has no region patterns for atlas '{atlas}'")
        chosen = []
        for hemi in effect.hemi:
            matches = sorted(
                n for n in parcel_names
                if _hemi_of(n) == hemi and n not in taken
                and any(fnmatch.fnmatch(n.lower(), p.lower()) for p in patterns)
            )
            chosen += matches[: effect.max_parcels]
        if not chosen:
            raise ValueError(
                f"effect {effect.name}: no included parcel matches {patterns} in {effect.hemi}"
            )
        effect.parcels = chosen
        taken.update(chosen)
    patterns = effect_set.null_regions.get(atlas, [])
    nulls = sorted(n for n in parcel_names if n not in taken
                   and any(fnmatch.fnmatch(n.lower(), p.lower()) for p in patterns))
    effect_set.null_parcels = nulls[: effect_set.max_null_parcels]
    return effect_set


def simulate_blocks(
    design: Design,
    events_by_run: dict[tuple[str, int], pd.DataFrame],
    parcel_names: list[str],
    effect_set: EffectSet,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Latent engagement, fMRI amplitude and MEG power change of every block and parcel.

    Parameters
    ----------
    events_by_run : dict
        ``(subject, run) -> events`` from :func:`bids_app.simulate.design.run_events`.

    Returns
    -------
    blocks : DataFrame
        ``subject, run, condition, block, parcel, latent, fmri_amplitude, effect,
        meg_relchange`` (``effect`` empty and ``meg_relchange`` 0 outside planted parcels).
    """
    effect_of = {p: e for e in effect_set.effects for p in e.parcels}
    groups = sorted({e.name for e in effect_set.effects}) + [p for p in parcel_names
                                                           if p not in effect_of]
    group_index = {g: i for i, g in enumerate(groups)}
    parcel_group = np.array([group_index[effect_of[p].name] if p in effect_of else group_index[p]
                             for p in parcel_names])
    w = effect_set.shared_weight
    rows = []
    for (subject, run), events in sorted(events_by_run.items()):
        blocks = events[events.trial_type != "instruction"].drop_duplicates("block")
        shared = {c: rng.standard_normal(len(groups)) for c in design.conditions}
        for block, condition in zip(blocks.block, blocks.trial_type):
            z = (np.sqrt(w) * shared[condition][parcel_group]
                 + np.sqrt(1 - w) * rng.standard_normal(len(parcel_names)))
            noise = rng.standard_normal(len(parcel_names))
            for k, parcel in enumerate(parcel_names):
                effect = effect_of.get(parcel)
                change = 0.0
                if effect is not None:
                    rho = effect.rho.get(condition, 0.0)
                    change = effect_set.meg_gain * (rho * z[k] + np.sqrt(1 - rho**2) * noise[k])
                    change = max(change, -0.8)
                rows.append((subject, run, condition, int(block), parcel, z[k],
                             effect_set.fmri_base + effect_set.fmri_gain * z[k],
                             effect.name if effect else "", change))
    return pd.DataFrame(rows, columns=["subject", "run", "condition", "block", "parcel", "latent",
                                       "fmri_amplitude", "effect", "meg_relchange"])
