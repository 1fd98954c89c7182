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
effect's ``rho`` differs in one condition, its distinct condition (non-zero there and zero in
the others in :func:`default_effects`; reversed there in :func:`recovery_effects`); a
task-invariant effect has the same ``rho`` for all conditions. Null parcels have fMRI amplitudes
but no MEG coupling.
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
SOURCE_MODELS = ("noise", "oscillation")
SPATIAL_MODELS = ("parcel", "focal")


@dataclass
class Effect:
    """One planted MEG-fMRI coupling.

    ``regions`` maps an atlas name to parcel-name patterns (fnmatch, case-insensitive); for an
    atlas without patterns (the data-driven fallback, whose names only give the lobe) the
    parcels whose centroids are nearest to ``center_mm`` (fsaverage/MNI305 mm, per hemisphere:
    x is mirrored for the right) are used. ``window_ms`` is the (first, last) window start (ms)
    of the planted windows, which cover ``first`` to ``last + 200`` ms after each picture.
    """

    name: str
    kind: str
    hemi: tuple[str, ...]
    band: str
    window_ms: tuple[float, float]
    rho: dict[str, float]
    regions: dict[str, list[str]]
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    max_parcels: int = 3
    parcels: list[str] = field(default_factory=list)

    def distinct_conditions(self, conditions) -> list[str]:
        """The conditions whose coupling differs from the others' (a task-dependent effect's
        condition: ``b`` of ``{a: 0, b: 0.9, c: 0}`` and of ``{a: 0.95, b: -0.95, c: 0.95}``);
        every condition for a task-invariant effect or when no two couplings are equal."""
        rho = {c: self.rho.get(c, 0.0) for c in conditions}
        values = list(rho.values())
        common = max(values, key=values.count)
        if self.kind == "task-invariant" or values.count(common) == 1:
            return list(rho)
        return [c for c, r in rho.items() if r != common]

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
    null_centers_mm: list[tuple[float, float, float]] = field(default_factory=list)
    max_null_parcels: int = 4
    null_parcels: list[str] = field(default_factory=list)
    shared_weight: float = 0.7
    fmri_base: float = 1.0
    fmri_gain: float = 0.6
    meg_gain: float = 0.6
    #: course of a planted parcel: "noise" (band-limited Gaussian noise) or "oscillation" (at
    #: the band's centre, slowly drifting phase: a block's power is exactly the planted one)
    source_model: str = "noise"
    #: where the planted activity is: "parcel" (every MEG grid point and BOLD voxel of the
    #: effect's parcels in the analysis atlas, one course) or "focal" (per effect and
    #: hemisphere a site of ``focal_points`` off-grid points with fixed normal orientation and
    #: the BOLD voxels within ``focal_bold_radius_mm``: :mod:`bids_app.simulate.focal`)
    spatial_model: str = "parcel"
    focal_points: int = 3
    #: one course shared by the points of a site (True) or one each, same envelope (False)
    focal_coherent: bool = False
    #: triangles whose centre lies this close to the site's centre hold its points (mm)
    focal_spread_mm: float = 5.0
    #: amplitude of each focal point (nAm)
    focal_nam: float = 30.0
    focal_bold_radius_mm: float = 8.0
    #: focal sites are centred at ``Effect.center_mm`` (None) or at the centroid of the
    #: effect's ``regions[plant_atlas]`` labels in a planting atlas given to the simulator
    #: (``--plant-atlas-file``), which need not be the atlas the app analyses with
    plant_atlas: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self, conditions) -> None:
        if self.source_model not in SOURCE_MODELS:
            raise ValueError(f"source_model must be one of {SOURCE_MODELS}, "
                             f"got {self.source_model!r}")
        if self.spatial_model not in SPATIAL_MODELS:
            raise ValueError(f"spatial_model must be one of {SPATIAL_MODELS}, "
                             f"got {self.spatial_model!r}")
        if self.focal_points < 1 or min(self.focal_spread_mm, self.focal_nam,
                                        self.focal_bold_radius_mm) <= 0:
            raise ValueError("focal_points, focal_spread_mm, focal_nam and "
                             "focal_bold_radius_mm must be positive")
        for effect in self.effects:
            effect.check(conditions)


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
                         "fallback": []},
                center_mm=(-48.0, 18.0, 10.0),
            ),
            Effect(
                name="left-temporal", kind="task-dependent", hemi=("lh",), band="theta",
                window_ms=(200.0, 333.4), rho={**zero, a: 0.9},
                regions={"destrieux": ["G_temp_sup-Lateral*", "S_temporal_sup*"],
                         "desikan": ["superiortemporal*", "bankssts*"],
                         "fallback": []},
                center_mm=(-58.0, -28.0, 6.0),
            ),
            Effect(
                name="right-parietal", kind="task-dependent", hemi=("rh",), band="lowgamma",
                window_ms=(500.0, 600.0), rho={**zero, c: 0.9},
                regions={"destrieux": ["G_pariet_inf-Supramar*"],
                         "desikan": ["supramarginal*"],
                         "fallback": []},
                center_mm=(52.0, -42.0, 34.0),
            ),
            Effect(
                name="occipital-alpha", kind="task-invariant", hemi=("lh", "rh"), band="alpha",
                window_ms=(200.0, 500.0), rho={a: -0.8, b: -0.8, c: -0.8},
                regions={"destrieux": ["S_calcarine*", "G_cuneus*", "Pole_occipital*"],
                         "desikan": ["pericalcarine*", "cuneus*", "lateraloccipital*"],
                         "fallback": []},
                center_mm=(-12.0, -96.0, 4.0), max_parcels=2,
            ),
        ],
        null_regions={"destrieux": ["G_parietal_sup-lh*", "S_central-rh*", "G_precentral-rh*"],
                      "desikan": ["superiorparietal*-lh", "precentral*-rh"]},
        null_centers_mm=[(-24.0, -62.0, 58.0), (36.0, -20.0, 60.0), (22.0, 30.0, 48.0)],
    )


def recovery_effects(conditions) -> EffectSet:
    """The default effects made as detectable as the method allows (docs/statistics.md): each
    task-dependent coupling reversed in its distinct condition (-0.95 there, 0.95 in the other
    two), so that the normalisation over conditions does not cancel it, and planted sources that
    oscillate, so that a block's MEG power is the planted one."""
    effect_set = default_effects(conditions)
    for effect in effect_set.effects:
        if effect.kind == "task-dependent":
            effect.rho = {c: -0.95 if r else 0.95 for c, r in effect.rho.items()}
    effect_set.source_model = "oscillation"
    return effect_set


def focal_effects(conditions) -> EffectSet:
    """The recovery couplings planted in focal sources (issue 25): per effect and hemisphere
    three off-grid points with fixed normal orientation and band-limited activity (each its
    own course), and BOLD within 8 mm, centred at the effects' locations and so not shaped
    like any analysis parcel (:mod:`bids_app.simulate.focal`)."""
    effect_set = recovery_effects(conditions)
    effect_set.spatial_model = "focal"
    effect_set.source_model = "noise"
    return effect_set


#: Effect sets shipped with the simulator (``--effects NAME``).
EFFECT_SETS = {"default": default_effects, "recovery": recovery_effects,
               "focal": focal_effects}


def load_effects(path: Path, conditions) -> EffectSet:
    """Read effects from JSON (same fields as :func:`default_effects` produces)."""
    data = json.loads(Path(path).read_text())
    effects = [Effect(**{**e, "hemi": tuple(e["hemi"]), "window_ms": tuple(e["window_ms"]),
                         "center_mm": tuple(e.get("center_mm", (0.0, 0.0, 0.0)))})
               for e in data.pop("effects")]
    data.pop("null_parcels", None)
    for effect in effects:
        effect.parcels = []
    effect_set = EffectSet(effects=effects, **data)
    effect_set.check(conditions)
    return effect_set


def _hemi_of(name: str) -> str:
    return "rh" if name.endswith("-rh") else "lh"


def resolve_parcels(effect_set: EffectSet, parcel_names: list[str], atlas: str,
                    centroids: np.ndarray | None = None, *, preset: bool = False) -> EffectSet:
    """Choose the parcels of each effect and the null parcels among ``parcel_names``.

    With name patterns for ``atlas``, parcels matching them within the effect's hemispheres are
    sorted by name and at most ``max_parcels`` per hemisphere kept; without patterns, the
    ``max_parcels`` parcels nearest to ``center_mm`` (``centroids``: parcel centroids in mm, in
    the order of ``parcel_names``). A parcel belongs to one effect at most. Raises
    ``ValueError`` when an effect matches no included parcel. With ``preset`` the effects keep
    the parcels they have (the parcels holding their focal sites) and only the null parcels
    are chosen.
    """
    taken: set[str] = {p for e in effect_set.effects for p in e.parcels} if preset else set()
    for effect in effect_set.effects if not preset else []:
        patterns = effect.regions.get(atlas)
        chosen = []
        for hemi in effect.hemi:
            candidates = [n for n in parcel_names if _hemi_of(n) == hemi and n not in taken]
            if patterns:
                matches = sorted(n for n in candidates
                                 if any(fnmatch.fnmatch(n.lower(), p.lower()) for p in patterns))
            else:
                matches = _nearest(candidates, parcel_names, centroids,
                                   _mirror(effect.center_mm, hemi))
            chosen += matches[: effect.max_parcels]
        if not chosen:
            raise ValueError(f"effect {effect.name}: no included parcel of atlas '{atlas}' "
                             f"matches {patterns or effect.center_mm} in {effect.hemi}")
        effect.parcels = chosen
        taken.update(chosen)
    patterns = effect_set.null_regions.get(atlas)
    free = [n for n in parcel_names if n not in taken]
    if patterns:
        nulls = sorted(n for n in free
                       if any(fnmatch.fnmatch(n.lower(), p.lower()) for p in patterns))
    else:
        nulls = []
        for center in effect_set.null_centers_mm:
            hemi = "rh" if center[0] > 0 else "lh"
            nulls += _nearest([n for n in free if _hemi_of(n) == hemi and n not in nulls],
                              parcel_names, centroids, tuple(center))[:1]
    effect_set.null_parcels = nulls[: effect_set.max_null_parcels]
    return effect_set


def _mirror(center, hemi: str) -> tuple[float, float, float]:
    x, y, z = center
    return (abs(x) if hemi == "rh" else -abs(x), y, z)


def _nearest(candidates, parcel_names, centroids, center) -> list[str]:
    if centroids is None:
        raise ValueError("parcel centroids are needed to place effects by location")
    index = {n: i for i, n in enumerate(parcel_names)}
    dist = {n: float(np.linalg.norm(centroids[index[n]] - np.asarray(center))) for n in candidates}
    return sorted(candidates, key=lambda n: dist[n])


def simulate_blocks(
    design: Design,
    events_by_run: dict[tuple[str, int], pd.DataFrame],
    parcel_names: list[str],
    effect_set: EffectSet,
    rng: np.random.Generator,
    sites: list | None = None,
) -> pd.DataFrame:
    """Latent engagement, fMRI amplitude and MEG power change of every block and unit.

    Parameters
    ----------
    events_by_run : dict
        ``(subject, run) -> events`` from :func:`bids_app.simulate.design.run_events`.
    sites : list of FocalSite | None
        Focal sites (:mod:`bids_app.simulate.focal`): units of their own after the parcels,
        carrying their effect; the parcels then carry no effect.

    Returns
    -------
    blocks : DataFrame
        ``subject, run, condition, block, parcel, latent, fmri_amplitude, effect,
        meg_relchange`` (``parcel`` is the unit: a parcel or a site's name; ``effect`` empty
        and ``meg_relchange`` 0 outside planted units).
    """
    if sites:
        by_name = {e.name: e for e in effect_set.effects}
        effect_of = {site.name: by_name[site.effect] for site in sites}
        parcel_names = list(parcel_names) + [site.name for site in sites]
    else:
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
