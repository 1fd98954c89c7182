"""How often does the group level find a coupling confined to one condition? (DESIGN 4-5, 7)

Not a speed benchmark: a Monte-Carlo measurement of the method's sensitivity, with the block
model of the simulator (:mod:`bids_app.simulate.effects`) and the paper's per-run normalisation,
but without the MEG and fMRI measurement chain (so it is an upper bound for the full pipeline).

Model, per observation (subject x run), condition and block, for the parcels of one planted
effect (``n_parcels``) and for independent null parcels::

    z    = sqrt(w) g[obs, condition] + sqrt(1 - w) e[obs, condition, block, parcel]
    fMRI = gain_f z + small noise
    MEG  = gain_m (rho_c z + sqrt(1 - rho_c^2) n) + measurement noise,   rho_c = rho in the
           coupled condition, 0 in the others (MEG scaled by ``uncoupled_sd`` there)

Each modality is normalised per observation and parcel as the app does (minus the mean over
all blocks of all conditions, divided by the standard deviation), averaged per condition, and
then :func:`bids_app.stats.run_group_statistics` runs on the planted parcels plus null parcels
(one band, three windows, the coupling in the middle one, K = 2, 500 resamples).

Prints, per setting: the mean Spearman rho of the cluster-averaged values in the coupled
condition and in the others, the share of groups in which the planted effect is in the
effects table (right condition, planted cluster, 99 % level), the share in which the coupled
condition's cluster correlation is significant in the planted window. The last setting couples
all three conditions (a task-invariant effect: "effect found" is then expected to stay low,
since no condition differs from the others, and "significant" is the sensitivity).

Run from the repository root::

    python benchmarks/sensitivity.py [--groups 30]
"""

import argparse
import logging
import time

import numpy as np
from scipy.stats import spearmanr

from bids_app.stats import run_group_statistics

CONDITIONS = ["a", "b", "c"]   # the coupling is in "b"


def normalise(values: np.ndarray) -> np.ndarray:
    """(obs, condition, block, parcel): minus the mean over all blocks and conditions of each
    observation and parcel, divided by their standard deviation; then the mean per condition."""
    n_obs, n_cond, n_blocks, n_parcels = values.shape
    flat = values.reshape(n_obs, n_cond * n_blocks, n_parcels)
    centred = values - flat.mean(1)[:, None, None, :]
    return (centred / flat.std(1)[:, None, None, :]).mean(2)


def simulate_group(rng, *, n_obs, n_blocks, rho, uncoupled_sd, meg_noise, w=0.7, n_parcels=3,
                   in_all_conditions=False):
    shape = (n_obs, len(CONDITIONS), n_blocks, n_parcels)
    z = (np.sqrt(w) * rng.standard_normal(shape[:2])[:, :, None, None]
         + np.sqrt(1 - w) * rng.standard_normal(shape))
    fmri = 0.6 * z + 0.05 * rng.standard_normal(shape)
    coupling = np.array([rho if in_all_conditions else 0.0, rho,
                         rho if in_all_conditions else 0.0])[None, :, None, None]
    scale = np.array([uncoupled_sd, 1.0, uncoupled_sd])[None, :, None, None]
    meg = 0.6 * scale * (coupling * z + np.sqrt(1 - coupling**2) * rng.standard_normal(shape))
    meg = np.maximum(meg, -0.8) + meg_noise * rng.standard_normal(shape)
    return normalise(fmri), normalise(meg)          # (obs, condition, parcel) each


def measure(n_groups, seed=0, **setting):
    rng = np.random.default_rng(seed)
    n_null = 6
    rho_b, rho_other, found, significant = [], [], 0, 0
    for _ in range(n_groups):
        fmri, meg = simulate_group(rng, **setting)
        n_obs, _, n_parcels = fmri.shape
        pooled = [spearmanr(meg[:, c].mean(1), fmri[:, c].mean(1))[0] for c in range(3)]
        rho_b.append(pooled[1])
        rho_other.append((pooled[0] + pooled[2]) / 2)
        parcels = n_parcels + n_null
        meg_all = rng.standard_normal((n_obs, parcels, 3, 1, 3))
        meg_all[:, :n_parcels, :, 0, 1] = meg.transpose(0, 2, 1)
        fmri_all = np.concatenate([fmri, rng.standard_normal((n_obs, 3, n_null))], axis=2)
        result = run_group_statistics(
            meg_all, fmri_all.transpose(0, 2, 1), parcels=[f"p{i}" for i in range(parcels)],
            hemis=["lh"] * parcels, conditions=CONDITIONS, bands=["beta"],
            windows_ms=[0.0, 100.0, 200.0], n_clusters=2, n_bootstrap=500, seed=0,
            min_observations=5)
        clusters, effects = result["clusters"], result["effects"]
        planted = clusters.cluster.iloc[0]
        found += bool(((effects.condition == "b") & (effects.cluster == planted)
                       & (effects.ci_level == 0.99)).any())
        boot = result["bootstrap"]
        significant += bool(boot[(boot.cluster == planted) & (boot.condition == "b")
                                 & (boot.window_start_ms == 100.0)].significant.any())
    return np.mean(rho_b), np.mean(rho_other), found / n_groups, significant / n_groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100, help="simulated groups per setting")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    settings = [
        ("simulator model, n = 16 (small)", dict(n_obs=16, n_blocks=2, rho=0.9,
                                                  uncoupled_sd=1.0, meg_noise=0.4)),
        ("simulator model, n = 20 (paper)", dict(n_obs=20, n_blocks=5, rho=0.9,
                                                  uncoupled_sd=1.0, meg_noise=0.4)),
        ("simulator model, n = 32 (16 x 2)", dict(n_obs=32, n_blocks=2, rho=0.9, uncoupled_sd=1.0,
                                         meg_noise=0.4)),
        ("quiet uncoupled MEG, rho .95, n = 16", dict(n_obs=16, n_blocks=2, rho=0.95,
                                                      uncoupled_sd=0.3, meg_noise=0.2)),
        ("quiet uncoupled MEG, rho .95, n = 24", dict(n_obs=24, n_blocks=2, rho=0.95,
                                                      uncoupled_sd=0.3, meg_noise=0.2)),
        ("task-invariant (all conditions), n = 16", dict(n_obs=16, n_blocks=2, rho=0.9,
                                                         uncoupled_sd=1.0, meg_noise=0.4,
                                                         in_all_conditions=True)),
    ]
    print(f"{'setting':40s} {'rho coupled':>11s} {'rho others':>10s} {'effect found':>12s} "
          f"{'significant':>11s}")
    for label, setting in settings:
        start = time.perf_counter()
        rho_b, rho_o, found, sig = measure(args.groups, **setting)
        print(f"{label:40s} {rho_b:11.2f} {rho_o:10.2f} {found:12.2f} {sig:11.2f}"
              f"   ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
