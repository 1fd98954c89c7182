"""Where does a focal source's power change go? (issue 25; table in docs/meg.md)

Not a speed benchmark: a fidelity chain. A focal study is simulated with the app's simulator
(``--effects focal``: per effect and hemisphere 3 off-grid cortical points with fixed normal
orientation, each with its own band-limited course, placed independently of the analysis
parcels), on a real Neuromag sensor array with a real noise covariance and at a sampling rate
other than the defaults. For every focal site, every block's relative power change in the
effect's windows is measured at each stage of the chain and correlated (Pearson, all blocks of
all runs) with the planted change (``sourcedata/simulation/blocks.tsv``):

* **sensors**: the 10 gradiometers with the largest gain for the site, power from the app's
  wavelet CSD (no beamformer);
* **LCMV, true points**: a unit-gain scalar LCMV (``w = C⁻¹g / gᵀC⁻¹g``, regularisation 5 %
  of the mean sensor variance, as MNE's ``reg``) with the true gain ``g`` of each point, on
  band-pass-filtered data, power as mean square in the windows; on the unprocessed recording
  and on the app's tSSS output. It knows where the sources are and how they point: it bounds
  what a measurement can reach;
* **DICS, true points, known orientation**: the same scalar filter on the app's wavelet CSD;
* **app DICS at the true points**: MNE's ``make_dics`` on a free-orientation forward model of
  the true points with the app's previous default (``pick_ori="max-power"``);
* **app, holding parcel**: the app's DICS on its analysis grid and parcels (the functions of
  :mod:`bids_app.meg.dics`), value of the parcel holding most of the site's points, and its
  rank among all parcels by correlation — for each choice: orientation (max-power or the
  cortical normal), regularisation, baseline (the block's own or the run's mean), and the
  parcel summary (mean, first principal component, the most powerful point).

The run with the app's defaults goes through :func:`bids_app.meg.power.event_related_power`
itself and is checked against the same variant built from the parts.

Run from the repository root (about 15 minutes on 2 cores, most of it the simulation and the
tSSS; the study is kept in ``--folder`` and reused)::

    python benchmarks/focal_fidelity.py [--folder /tmp/focal-fidelity] [--n-subjects 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from scipy import signal

from bids_app.config import Config
from bids_app.meg import dics
from bids_app.meg.epochs import make_epochs
from bids_app.meg.maxwell import tsss
from bids_app.meg.options import DICSOptions, EpochOptions, MaxwellOptions
from bids_app.meg.power import event_related_power
from bids_app.simulate import meg as sim_meg
from bids_app.simulate.anatomy import prepare_template_anatomy
from bids_app.simulate.focal import gain_along_normals, holding_parcels, site_forward

MEG = Config().meg
STARTS = np.array(Config().window_starts_ms())
WINDOWS_S = np.array([MEG.baseline_ms] + [[s, s + MEG.window_length_ms] for s in STARTS]) / 1e3
SHARED = Path(os.environ.get("MEGFMRI_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data"))


def simulate_study(folder: Path, effects: str, n_subjects: int, n_runs: int,
                   sfreq: float) -> Path:
    """The study (reused when present): paper design, real sensors and noise when found."""
    from bids_app.cli.simulate import simulate

    bids = folder / f"bids-{effects}"
    if (bids / "sourcedata" / "simulation" / "truth.json").is_file():
        return bids
    testing = SHARED / "mne-testing-data"
    template = testing / "SSS" / "sample_audvis_trunc_raw_sss.fif"
    cov = testing / "MEG" / "sample" / "sample_audvis_trunc-cov.fif"
    real = template.is_file() and cov.is_file()
    print(f"simulating {n_subjects} subjects x {n_runs} runs at {sfreq:g} Hz "
          f"({'real Neuromag array and noise covariance' if real else 'ad-hoc noise'})")
    return simulate(bids, preset="paper", n_subjects=n_subjects, n_runs=n_runs,
                    effects=effects, sfreq=sfreq, meg_template=template if real else None,
                    noise_cov=cov if real else None, overwrite=True, n_jobs=1)


def run_epochs(path: Path, events: pd.DataFrame, processed: bool, cache: Path) -> mne.Epochs:
    """The app's epochs of one run, after the app's tSSS when ``processed`` (the tSSS output
    is kept in ``cache`` for the next run of the benchmark)."""
    done = cache / path.name.replace("_meg.fif", "_proc-tsss_meg.fif")
    if processed and done.is_file():
        raw = mne.io.read_raw_fif(done, preload=True, verbose="error")
    else:
        raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
        if processed:
            raw = tsss(raw, MaxwellOptions(find_bad_channels=False)).raw
            cache.mkdir(parents=True, exist_ok=True)
            raw.save(done, verbose="error")
    trials = events[events.trial_type != "instruction"].rename(columns={"trial_type":
                                                                        "condition"})
    return make_epochs(raw, trials, Config().options(EpochOptions)).epochs


def band_csd(epochs: mne.BaseEpochs, band) -> tuple:
    """The app's per-block wavelet CSDs (``(blocks, 1 + windows, r, r)`` in the data basis),
    the pooled CSD, the basis and the frequencies."""
    freqs = dics.band_frequencies(*band, MEG.freq_step_hz)
    cycles = dics.capped_n_cycles(freqs, MEG.n_cycles, epochs.info["sfreq"], len(epochs.times))
    groups = epochs.metadata["block"].to_numpy() - 1
    csd, pooled, basis = dics.event_related_csd(epochs.get_data(), epochs.info["sfreq"],
                                                epochs.times, freqs=freqs, n_cycles=cycles,
                                                groups=groups, windows_s=WINDOWS_S,
                                                return_basis=True)
    return csd, pooled, basis, freqs


def change(power: np.ndarray, inside: np.ndarray, scope: str = "block") -> np.ndarray:
    """Relative change of ``power`` (blocks, 1 + windows, ...) in the effect's windows."""
    base = dics.baseline_reference(power[:, :1], scope)
    return dics.relative_change(power[:, 1:], base)[:, inside].mean(axis=1)


def scalar_power(cov: np.ndarray, many: np.ndarray, gains: np.ndarray, reg: float = 0.05):
    """Summed power of unit-gain scalar beamformers with known gains (columns of ``gains``)."""
    loaded = cov + reg * np.trace(cov) / len(cov) * np.eye(len(cov))
    inverse_gain = np.linalg.solve(loaded, gains)
    weights = inverse_gain / np.sum(gains * inverse_gain, axis=0)
    return np.einsum("ip,...ij,jp->...", weights, many, weights)


def lcmv_true_points(epochs: mne.BaseEpochs, band, gains: np.ndarray, window_ms) -> np.ndarray:
    """Block relative change of the summed power of scalar LCMVs at the true points."""
    sfreq, times = epochs.info["sfreq"], epochs.times
    sos = signal.butter(4, band, btype="bandpass", fs=sfreq, output="sos")
    data = signal.sosfiltfilt(sos, epochs.get_data(), axis=-1)
    keep = (times >= MEG.tmin_s - 1e-9) & (times <= MEG.tmax_s + 1e-9)
    data, times = data[..., keep], times[keep]
    cov = np.einsum("ect,edt->cd", data, data) / (data.shape[0] * data.shape[2])
    values, vectors = np.linalg.eigh(cov)
    basis = vectors[:, values > values.max() * 1e-12]   # tSSS leaves ~70 dimensions
    reduced = basis.T @ cov @ basis
    loaded = reduced + 0.05 * np.trace(reduced) / len(cov) * np.eye(len(reduced))
    g = basis.T @ gains
    inverse_gain = np.linalg.solve(loaded, g)
    weights = basis @ (inverse_gain / np.sum(g * inverse_gain, axis=0))
    course = np.einsum("cp,ect->ept", weights, data)
    window = (times >= window_ms[0] / 1e3) & (times <= window_ms[1] / 1e3)
    baseline = (times >= MEG.baseline_ms[0] / 1e3) & (times <= MEG.baseline_ms[1] / 1e3)
    blocks = epochs.metadata["block"].to_numpy()
    active = np.array([(course[blocks == b][..., window] ** 2).mean((0, 2)).sum()
                       for b in np.unique(blocks)])
    rest = np.array([(course[blocks == b][..., baseline] ** 2).mean((0, 2)).sum()
                     for b in np.unique(blocks)])
    return active / rest - 1


def grid_power(info, forward, pooled, freqs, csd, basis, *, pick_ori, reg):
    filters = dics.dics_filters(info, forward, pooled, freqs, reg=reg, pick_ori=pick_ori)
    return dics.source_power(filters, csd, basis=basis)       # (blocks, 1 + windows, sources)


def summaries(power, inside, point_parcel, n_parcels, scope):
    """Per-parcel block values (blocks, parcels) of three summaries of the grid points."""
    per_point = change(power, inside, scope)                    # (blocks, sources)
    mean = dics.parcel_average(per_point, point_parcel, n_parcels)
    pca = np.full_like(mean, np.nan)
    peak = np.full_like(mean, np.nan)
    for k in range(n_parcels):
        points = np.flatnonzero(point_parcel == k)
        if len(points) == 0:
            continue
        values = per_point[:, points]
        centred = values - values.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        component = centred @ vt[0]
        pca[:, k] = component * np.sign(np.corrcoef(component, mean[:, k])[0, 1] or 1.0)
        strongest = points[np.argmax(power[:, 1:][:, inside][..., points].mean((0, 1)))]
        peak[:, k] = per_point[:, strongest]
    return {"mean": mean, "first principal component": pca, "most powerful point": peak}


def planted_units(truth: dict, anatomy) -> list[dict]:
    """What was planted, as units of the block table: each focal site (its points and normals)
    or, for the parcel model, each planted parcel (its grid points and their normals), with the
    analysis parcel holding it (for a site: the parcel of the grid point nearest most points)."""
    grid = np.concatenate([s["rr"][s["vertno"]] for s in anatomy.src]) * 1e3
    normals = np.concatenate([s["nn"][s["vertno"]] for s in anatomy.src])
    names = list(anatomy.parcel_names)
    units = []
    for site in truth["sites"]:
        points = np.array(site["points_mm"])
        parcel = holding_parcels(points, anatomy, ("lh", "rh").index(site["hemi"]))[0]
        units.append({"name": site["name"], "effect": site["effect"], "points_mm": points,
                      "normals": np.array(site["normals"]), "holding": names.index(parcel)})
    if not units:
        for effect in truth["effects"]:
            for parcel in effect["parcels"]:
                inside = anatomy.point_parcel == names.index(parcel)
                units.append({"name": parcel, "effect": effect["name"],
                              "points_mm": grid[inside], "normals": normals[inside],
                              "holding": names.index(parcel)})
    return units


def correlation(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/focal-fidelity"))
    parser.add_argument("--effects", default="focal",
                        help="focal (the default) or recovery (the parcel-wide model)")
    parser.add_argument("--n-subjects", type=int, default=2)
    parser.add_argument("--n-runs", type=int, default=2)
    parser.add_argument("--sfreq", type=float, default=300.0)
    parser.add_argument("--app", action="store_true",
                        help="also run the app's participant level on the study (with its "
                        "defaults, into FOLDER/derivatives-EFFECTS) and correlate its fMRI and "
                        "MEG tables for each unit's holding parcel with the planted values")
    args = parser.parse_args()
    t0 = time.perf_counter()
    bids = simulate_study(args.folder, args.effects, args.n_subjects, args.n_runs, args.sfreq)
    t_sim = time.perf_counter() - t0
    sim_dir = bids / "sourcedata" / "simulation"
    truth = json.loads((sim_dir / "truth.json").read_text())
    planted_table = pd.read_csv(sim_dir / "blocks.tsv", sep="\t",
                                dtype={"subject": str, "run": str})
    planted_table["run"] = planted_table["run"].astype(int)
    effects = {e["name"]: e for e in truth["effects"]}
    anatomy = prepare_template_anatomy(args.folder / "anatomy")
    sites = planted_units(truth, anatomy)
    holding = {site["name"]: site["holding"] for site in sites}
    n_parcels = len(anatomy.parcel_names)
    head = sim_meg.template_head()
    bem = anatomy.bem
    results: dict[str, dict[str, list]] = {}
    parcel_rows: dict[str, dict[str, list]] = {}

    def record(stage, site, values, table=None):
        results.setdefault(stage, {}).setdefault(site, []).append(np.asarray(values))
        if table is not None:
            parcel_rows.setdefault(stage, {}).setdefault(site, []).append(table)

    t_chain = time.perf_counter()
    checked = False
    for meg_file in sorted(bids.glob("sub-*/meg/*_meg.fif")):
        sub = meg_file.name.split("_")[0][4:]
        run = int(meg_file.name.split("_run-")[1].split("_")[0])
        events = pd.read_csv(str(meg_file).replace("_meg.fif", "_events.tsv"), sep="\t")
        print(f"sub-{sub} run {run}: tSSS, epochs, CSDs", flush=True)
        cache = args.folder / f"tsss-{args.effects}"
        epochs = {"unprocessed": run_epochs(meg_file, events, False, cache),
                  "tSSS": run_epochs(meg_file, events, True, cache)}
        info = epochs["tSSS"].info
        forward = mne.make_forward_solution(info, head["head_mri_t"], anatomy.src, bem,
                                            meg=True, eeg=False, verbose="error")
        csds, grid_powers = {}, {}
        for site in sites:
            effect = effects[site["effect"]]
            band = sim_meg.BANDS[effect["band"]]
            inside = np.isclose(STARTS[:, None], effect["window_starts_ms"]).any(axis=1)
            window_ms = (min(effect["window_starts_ms"]),
                         max(effect["window_starts_ms"]) + MEG.window_length_ms)
            rows = planted_table[planted_table.subject == sub]
            rows = rows[(rows.run == run) & (rows.parcel == site["name"])].sort_values("block")
            record("planted", site["name"], rows.meg_relchange.to_numpy())
            points, normals = site["points_mm"], site["normals"]
            true_fwd = site_forward(info, head["head_mri_t"], bem, points, normals)
            gain, names = gain_along_normals(true_fwd)
            for kind, ep in epochs.items():
                order = [names.index(n) for n in ep.ch_names]
                g = gain[order]
                key = (kind, effect["band"])
                if key not in csds:
                    csds[key] = band_csd(ep, band)
                csd, pooled, basis, freqs = csds[key]
                record(f"LCMV, true points, known orientation ({kind})", site["name"],
                       lcmv_true_points(ep, band, g, window_ms))
                power = scalar_power(basis.T @ pooled @ basis, csd, basis.T @ g)
                record(f"DICS, true points, known orientation ({kind})", site["name"],
                       change(power, inside))
                if kind == "unprocessed":
                    top = np.argsort(-np.abs(g).sum(axis=1))[:10]
                    sensor = np.einsum("ci,...ij,cj->...c", basis[top], csd, basis[top]).sum(-1)
                    record("sensors: 10 most sensitive gradiometers", site["name"],
                           change(sensor, inside))
                    continue
                filters = dics.dics_filters(info, true_fwd, pooled, freqs, reg=MEG.dics_reg,
                                            pick_ori="max-power")
                record("app DICS at the true points, max-power", site["name"],
                       change(dics.source_power(filters, csd, basis=basis).sum(-1)[..., None],
                              inside)[:, 0])
                for pick_ori, reg in (("max-power", 0.2), ("normal", 0.05), ("normal", 0.2)):
                    if (effect["band"], pick_ori, reg) not in grid_powers:
                        grid_powers[effect["band"], pick_ori, reg] = grid_power(
                            info, forward, pooled, freqs, csd, basis, pick_ori=pick_ori, reg=reg)
                    power = grid_powers[effect["band"], pick_ori, reg]
                    for scope in ("block", "run"):
                        for how, table in summaries(power, inside, anatomy.point_parcel,
                                                    n_parcels, scope).items():
                            if how != "mean" and (pick_ori, reg, scope) != (
                                    "normal", MEG.dics_reg, MEG.baseline_scope):
                                continue
                            stage = (f"app grid, {pick_ori}, reg {reg}, {scope} baseline, "
                                     f"parcel {how}")
                            record(stage, site["name"], table[:, holding[site["name"]]], table)
                    if (pick_ori, reg) == (MEG.pick_ori, MEG.dics_reg) and not checked:
                        checked = _check_app_function(epochs["tSSS"], forward, anatomy, events,
                                                      effect, power, inside)
    t_chain = time.perf_counter() - t_chain
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux: KiB
    _print_table(results, parcel_rows, sites, holding, anatomy.parcel_names)
    print(f"\nsimulation {t_sim:.0f} s, chain {t_chain:.0f} s, peak memory "
          f"{peak / 1e9:.2f} GB")
    if args.app:
        app_tables(bids, args.folder, args.effects, sites, effects, planted_table,
                   anatomy.parcel_names)


def app_tables(bids, folder, effects_name, sites, effects, planted_table, parcel_names):
    """The app end to end (coregistration, realignment, sampling, tSSS, DICS): its fMRI block
    values and MEG relative changes of each unit's holding parcel against the planted ones."""
    from bids_app.cli.run import run

    out = folder / f"derivatives-{effects_name}"
    if not list(out.glob("sub-*/meg/*_desc-dics_meg.tsv.gz")):
        t0 = time.perf_counter()
        code = run([str(bids), str(out), "participant", "-w", str(folder / "work"),
                    "--nprocs", "2", "--random-seed", "1"])
        print(f"\napp participant level: exit {code}, {time.perf_counter() - t0:.0f} s")
    print(f"\n{'the app end to end, holding parcel':40s}{'fMRI r (rank)':>18s}"
          f"{'MEG r (rank)':>18s}")
    for site in sites:
        effect = effects[site["effect"]]
        parcel = parcel_names[site["holding"]]
        fmri, meg = [], []
        for table in sorted(out.glob("sub-*/func/*_desc-blocks_bold.tsv")):
            sub, run_label = table.name.split("_")[0], table.name.split("_run-")[1][:2]
            rows = planted_table[(planted_table.subject == sub[len("sub-"):])
                                 & (planted_table.run == int(run_label))
                                 & (planted_table.parcel == site["name"])].set_index("block")
            values = pd.read_csv(table, sep="\t").pivot(index="block", columns="parcel",
                                                        values="value")
            fmri.append(values.join(rows[["fmri_amplitude"]], how="inner"))
            meg_table = next(out.glob(f"{sub}/meg/{sub}_*run-{run_label}_*dics_meg.tsv.gz"))
            power = pd.read_csv(meg_table, sep="\t")
            power = power[(power.band == effect["band"])
                          & power.window_start_ms.round(1).isin(
                              np.round(effect["window_starts_ms"], 1))]
            change = power.groupby(["block", "parcel"]).relchange.mean().unstack("parcel")
            meg.append(change.join(rows[["meg_relchange"]], how="inner"))
        cells = []
        for frames, column in ((fmri, "fmri_amplitude"), (meg, "meg_relchange")):
            joined = pd.concat(frames)
            rs = joined.drop(columns=column).corrwith(joined[column])
            cells.append(f"{rs[parcel]:10.2f} (rank {int((rs > rs[parcel]).sum()) + 1:>2d})")
        print(f"{site['name']:40s}" + "".join(cells))


def _check_app_function(epochs, forward, anatomy, events, effect, power, inside) -> bool:
    """The app's own function with its defaults equals the chain's variant of the same choices
    (to 1e-6 relative): the chain measures what the app computes. Every block is kept here, as
    in the chain (the app leaves out blocks with fewer than 5 trials after EOG rejection)."""
    blocks = (epochs.metadata.groupby(["condition", "block"]).size().rename("n_kept")
              .reset_index())
    blocks["n_trials"] = blocks["n_kept"]
    blocks["n_rejected"] = 0
    options = dataclasses.replace(
        Config().options(DICSOptions), min_trials_per_block=1,
        bands={effect["band"]: list(sim_meg.BANDS[effect["band"]])})
    result = event_related_power(epochs, forward, blocks, parcel_of_source=anatomy.point_parcel,
                                 parcel_names=anatomy.parcel_names, options=options)
    table = result.table.pivot_table(index=["block", "parcel"], columns="window_start_ms",
                                     values="relchange")
    columns = [c for c in table.columns if np.isclose(c, STARTS[inside]).any()]
    assert len(columns) == inside.sum()
    app = table[columns].mean(axis=1).unstack("parcel")
    app = app[list(anatomy.parcel_names)].to_numpy()
    ours = dics.parcel_average(change(power, inside, MEG.baseline_scope), anatomy.point_parcel,
                               len(anatomy.parcel_names))
    np.testing.assert_allclose(app, ours, rtol=1e-6, atol=1e-9)
    print("  checked: event_related_power with the app's defaults = the chain's variant")
    return True


def _print_table(results, parcel_rows, sites, holding, parcel_names):
    names = [s["name"] for s in sites]
    short = [n.replace("site-", "") for n in names]
    planted = {n: np.concatenate(results["planted"][n]) for n in names}
    print(f"\n{'stage':72s}" + "".join(f"{s:>22s}" for s in short))
    for stage, by_site in results.items():
        if stage == "planted":
            continue
        cells = []
        for n in names:
            r = correlation(np.concatenate(by_site[n]), planted[n])
            if stage in parcel_rows:
                table = np.concatenate(parcel_rows[stage][n])
                rs = np.array([correlation(table[:, k], planted[n]) if np.nanstd(table[:, k]) > 0
                               else -np.inf for k in range(table.shape[1])])
                cells.append(f"{r:12.2f} (rank {int(np.sum(rs > r)) + 1:>2d})")
            else:
                cells.append(f"{r:22.2f}")
        print(f"{stage:72s}" + "".join(cells), flush=True)
    print("\nholding parcels: " + ", ".join(f"{n}: {parcel_names[holding[n]]}" for n in names))


if __name__ == "__main__":
    main()
