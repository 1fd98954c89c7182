"""Write the simulated study as a BIDS dataset with its ground truth.

Layout written at ``out``::

    dataset_description.json, README, participants.tsv, task-naming_bold.json, ...
    sub-XX/anat/sub-XX_T1w.nii.gz (+ .json with anatomical landmarks)
    sub-XX/meg/sub-XX_task-naming_run-R_meg.fif (+ channels, coordsystem, events)
    sub-XX/func/sub-XX_task-naming_run-R_bold.nii.gz (+ events)
    derivatives/freesurfer/sub-XX/            the template anatomy as the subject's FreeSurfer
    sourcedata/simulation/truth.json          design, seed, planted effects, null parcels
    sourcedata/simulation/blocks.tsv          latent, fMRI amplitude, MEG change per block
    sourcedata/simulation/sub-XX_run-R_motion.tsv   simulated head motion of each BOLD run

Every random draw comes from one seed (a separate stream per subject and run), so the same seed
gives byte-identical files and a different seed different data.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import logging
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_app import __version__
from bids_app.io.derivatives import save_nifti_gz
from bids_app.simulate import fmri as sim_fmri
from bids_app.simulate import meg as sim_meg
from bids_app.simulate.design import Design, run_events
from bids_app.simulate.effects import EffectSet, resolve_parcels, simulate_blocks
from bids_app.simulate.focal import place_sites, site_gain, site_voxels

LOGGER = logging.getLogger(__name__)

#: Fixed recording date of every simulated file (byte-identical outputs).
MEAS_DATE = 1262304000.0  # 2010-01-01 00:00:00 UTC

_EVENTS_JSON = {
    "onset": {"Description": "Onset from the start of the recording (first acquired volume "
              "for BOLD, first sample for MEG).", "Units": "s"},
    "duration": {"Description": "Duration of the stimulus.", "Units": "s"},
    "trial_type": {"Description": "Condition of the picture, or the block instruction.",
                   "Levels": {}},
    "block": {"Description": "Block number within the run (1..n in time order)."},
    "value": {"Description": "Trigger code on STI101 (conditions 1..3, instruction 10)."},
}


@dataclass
class TemplateAnatomy:
    """What the simulator needs of the template anatomy (built by :mod:`bids_app.simulate.anatomy`)."""

    subjects_dir: Path
    subject: str
    white: list  # [(rr_mm, tris)] lh, rh
    pial: list
    inner_skull: tuple
    parcel_names: list[str]
    vertex_parcel: np.ndarray  # parcel index per fMRI-grid vertex (lh then rh), -1 none
    mid_rr: np.ndarray  # mid-thickness coordinates of those vertices (mm)
    src: object  # mne.SourceSpaces of the MEG grid
    point_parcel: np.ndarray  # parcel index per MEG grid point, -1 none
    atlas: str
    parcel_centroids: np.ndarray  # (n_parcels, 3) mm, white surface

    @functools.cached_property
    def bem(self):
        """Single-layer BEM solution (mne.ConductorModel), computed on first use (about 10 s):
        the simulator builds it while the BOLD runs are being written."""
        from bids_app.meg.headmodel import bem_solution
        from bids_app.meg.options import HeadModelOptions

        return bem_solution(self.subject, self.subjects_dir, HeadModelOptions())


def _stream(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def write_dataset(
    out: Path,
    *,
    design: Design,
    effects: EffectSet,
    anatomy: TemplateAnatomy,
    seed: int,
    preset: str,
    meg_template: Path | None = None,
    noise_cov: Path | None = None,
    plant_labels: dict | None = None,
    n_jobs: int | None = None,
) -> Path:
    """Simulate every subject and run and write the BIDS dataset at ``out``.

    Subjects are simulated in ``n_jobs`` processes (default: all CPUs); each writes into its
    own staging folder, so MNE-BIDS's shared files (participants.tsv, scans) never race.
    ``plant_labels`` (``{hemi: AtlasLabels}``) is the planting atlas of focal effects placed by
    region (``EffectSet.plant_atlas``).
    """
    import mne

    out = Path(out)
    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    sites = []
    if effects.spatial_model == "focal":
        sites = place_sites(effects, anatomy, _stream(seed, 6), plant_labels)
        LOGGER.info("Focal sites: %s", "; ".join(
            f"{s.name} at ({', '.join(f'{v:.0f}' for v in s.centre_mm)}) mm in "
            f"{', '.join(s.parcels)}" for s in sites))
    resolve_parcels(effects, anatomy.parcel_names, anatomy.atlas, anatomy.parcel_centroids,
                    preset=bool(sites))
    LOGGER.info("Planted effects: %s",
                "; ".join(f"{e.name} ({e.band}, {', '.join(e.parcels)})" for e in effects.effects))

    # the design of every (subject, run); MEG and BOLD runs share it
    subjects = [f"{i:02d}" for i in range(1, design.n_subjects + 1)]
    runs = [f"{r:02d}" for r in range(1, design.n_runs + 1)]
    events = {(s, r): run_events(design, _stream(seed, 1, i, j))
              for i, s in enumerate(subjects) for j, r in enumerate(runs)}
    blocks = simulate_blocks(design, events, anatomy.parcel_names, effects, _stream(seed, 2),
                             sites=sites)
    units = list(anatomy.parcel_names) + [site.name for site in sites]

    # sensors and head (one anatomy and head position for everybody)
    head = sim_meg.template_head()
    info = (sim_meg.template_info(meg_template, design.meg_sfreq) if meg_template
            else sim_meg.vectorview_like_info(design.meg_sfreq, head))
    info = sim_meg.finish_info(info, head, MEAS_DATE)
    cov = mne.read_cov(noise_cov, verbose="error") if noise_cov else None
    if cov is not None:
        missing = set(mne.pick_info(info, mne.pick_types(info, meg=True)).ch_names) - set(cov.ch_names)
        if missing:
            raise ValueError(f"the noise covariance {noise_cov} lacks channels of the sensor "
                             f"array (e.g. {sorted(missing)[:3]}); use it with the matching "
                             "--meg-template recording")
    base, gm = sim_fmri.epi_templates(anatomy.white, anatomy.pial, anatomy.inner_skull)
    parcel_of_voxel = sim_fmri.voxel_parcels(anatomy.mid_rr, anatomy.vertex_parcel, gm)
    for k, site in enumerate(sites):  # a site's BOLD voxels follow the site, not the parcel
        ribbon = np.argwhere(parcel_of_voxel >= 0)
        xyz = ribbon @ sim_fmri.bold_affine()[:3, :3].T + sim_fmri.bold_affine()[:3, 3]
        near = site_voxels(xyz, site.centre_mm, effects.focal_bold_radius_mm)
        parcel_of_voxel[tuple(ribbon[near].T)] = len(anatomy.parcel_names) + k

    n_grid = sum(len(s["vertno"]) for s in anatomy.src)
    planted = _planted_items(effects, anatomy, sites, n_grid)
    sim_dir = out / "sourcedata" / "simulation"
    sim_dir.mkdir(parents=True, exist_ok=True)
    shared = {
        "out": out, "design": design, "info": info, "anatomy": anatomy, "planted": planted,
        "units": units, "n_grid": n_grid,
        "source_model": effects.source_model, "base": base, "parcel_of_voxel": parcel_of_voxel,
        "cov": cov, "seed": seed, "events": events, "blocks": blocks,
        "head_mri_t": head["head_mri_t"], "runs": runs, "n_subjects": len(subjects),
    }
    jobs = list(enumerate(subjects))
    for _, sub in jobs:  # each subject is written apart, then moved into the dataset
        staging = _staging(out, sub)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()

    n_cpus = n_jobs or os.cpu_count() or 1

    def head_model() -> dict:
        """What the MEG runs need beyond ``shared``: the T1w (for the landmarks) and the gain
        of the BEM forward model (BEM and forward about 25 s, the T1w 4 s)."""
        forward = _forward(info, head["head_mri_t"], anatomy)
        t1 = sim_fmri.synth_t1(anatomy.white, anatomy.pial, anatomy.inner_skull, _stream(seed, 3))
        gain = sim_meg.fixed_gain(forward, anatomy.src)
        if sites:  # the focal points' own columns after the grid's
            points = np.concatenate([site.points_mm for site in sites])
            normals = np.concatenate([site.normals for site in sites])
            extra, names = site_gain(info, head["head_mri_t"], anatomy.bem, points, normals)
            if names != gain.ch_names:
                raise RuntimeError("focal and grid forward models list channels differently")
            gain = sim_meg.FixedGain(np.hstack([gain.matrix, extra]), gain.ch_names)
        return {"gain": gain, "t1": t1}

    # The BOLD runs need no head model: they start at once in the worker processes, and this
    # process builds the BEM, the forward model and the T1w meanwhile; the MEG runs follow.
    if n_cpus > 1:
        context = multiprocessing.get_context("fork")
        n_workers = min(n_cpus, len(jobs))
        slots = meg_slots(n_workers, MEG_PEAK_COPIES * 8 * info["nchan"]
                          * round(design.run_duration_s * design.meg_sfreq),
                          available_memory_bytes())
        shared["meg_slots"] = context.Semaphore(slots)
        with concurrent.futures.ProcessPoolExecutor(n_workers, mp_context=context,
                                                    initializer=_init_worker,
                                                    initargs=(shared,)) as pool:
            try:
                bold = [pool.submit(_simulate_subject_bold, job) for job in jobs]
                heavy = head_model()
                meg = [pool.submit(_simulate_subject_meg, job, heavy) for job in jobs]
                for future in concurrent.futures.as_completed(bold + meg):
                    future.result()
            except BaseException:  # the first failure stops the jobs not yet started
                pool.shutdown(cancel_futures=True)
                raise
    else:
        shared["meg_slots"] = contextlib.nullcontext()
        _init_worker(shared)
        for job in jobs:
            _simulate_subject_bold(job)
        heavy = head_model()
        for job in jobs:
            _simulate_subject_meg(job, heavy)
    for _, sub in jobs:  # move each subject into the dataset (workers wrote apart)
        target = out / f"sub-{sub}"
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(_staging(out, sub) / f"sub-{sub}"), target)
        shutil.rmtree(_staging(out, sub))

    _write_top_level(out, design, subjects)
    blocks.to_csv(sim_dir / "blocks.tsv", sep="\t", index=False, float_format="%.6f")
    truth = {
        "generated_by": f"megfmri-fusion-simulate {__version__}",
        "preset": preset,
        "seed": seed,
        "design": design.as_dict(),
        "conditions": list(design.conditions),
        "parcellation": anatomy.atlas,
        "meg_template": str(meg_template) if meg_template else None,
        "effects": [
            {"name": e.name, "kind": e.kind, "parcels": e.parcels,
             "hemi": sorted({"rh" if p.endswith("-rh") else "lh" for p in e.parcels}),
             "band": e.band, "window_starts_ms": [w for w in _window_starts()
                                                   if e.window_ms[0] - 1e-6 <= w
                                                   <= e.window_ms[1] + 1e-6],
             "condition": e.distinct_conditions(design.conditions), "rho": e.rho}
            for e in effects.effects
        ],
        "null_parcels": effects.null_parcels,
        "sites": [site.to_dict() for site in sites],
        "model": {k: v for k, v in effects.to_dict().items()
                  if k not in ("effects", "null_regions", "null_parcels")},
    }
    (sim_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    LOGGER.info("Simulated %d subjects x %d runs in %.0f s: %s", len(subjects), len(runs),
                time.time() - t_start, out)
    return out


def _planted_items(effects: EffectSet, anatomy: TemplateAnatomy, sites: list,
                   n_grid: int) -> list[dict]:
    """What :func:`bids_app.simulate.meg.source_activity` plants: each planted parcel's grid
    points with one course (parcel model), or each focal site's points, whose gain columns
    follow the grid's (focal model)."""
    window = {e.name: (e.window_ms[0] / 1000, (e.window_ms[1] + 200.0) / 1000)
              for e in effects.effects}
    band = {e.name: e.band for e in effects.effects}
    if not sites:
        return [{"unit": p, "band": e.band, "window_s": window[e.name], "coherent": True,
                 "nam": PARCEL_NAM, "points": np.flatnonzero(
                     anatomy.point_parcel == anatomy.parcel_names.index(p))}
                for e in effects.effects for p in e.parcels]
    items, column = [], n_grid
    for site in sites:
        n = len(site.points_mm)
        items.append({"unit": site.name, "band": band[site.effect], "window_s": window[site.effect],
                      "coherent": effects.focal_coherent, "nam": effects.focal_nam,
                      "points": np.arange(column, column + n)})
        column += n
    return items


#: Amplitude of every grid point of a planted parcel (nAm), parcel model.
PARCEL_NAM = 30.0

_SHARED: dict = {}
_FORWARDS: dict = {}


def _forward(info, trans, anatomy: TemplateAnatomy):
    """The forward model, computed once per process for identical inputs (in one thread: the
    worker processes have the other cores)."""
    import mne

    from bids_app.meg.headmodel import content_key

    key = content_key(info, trans, anatomy.src, anatomy.bem)
    if key not in _FORWARDS:
        _FORWARDS[key] = mne.make_forward_solution(info, trans, anatomy.src, anatomy.bem,
                                                   meg=True, eeg=False, n_jobs=1,
                                                   verbose="error")
    return _FORWARDS[key]


def _staging(out: Path, sub: str) -> Path:
    return out / f".staging-sub-{sub}"


def _init_worker(shared: dict) -> None:
    """Give a worker process the data every subject needs (limited to one thread)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _SHARED.clear()
    _SHARED.update(shared)


def _run_inputs(sub: str, run: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The events of one run and its rows of the blocks table (shared by MEG and BOLD)."""
    blocks = _SHARED["blocks"]
    return (_SHARED["events"][(sub, run)],
            blocks[(blocks.subject == sub) & (blocks.run == run)])


def _simulate_subject_bold(job: tuple[int, str]) -> None:
    """Write the BOLD runs of one subject (and the true head motion of each)."""
    i, sub = job
    sh = _SHARED
    for j, run in enumerate(sh["runs"]):
        LOGGER.info("Simulating BOLD of sub-%s run-%s (subject %d/%d)", sub, run, i + 1,
                    sh["n_subjects"])
        ev, run_blocks = _run_inputs(sub, run)
        motion = _write_bold_run(_staging(sh["out"], sub), sub, run, sh["design"], sh["base"],
                                 sh["parcel_of_voxel"], sh["units"], ev, run_blocks,
                                 _stream(sh["seed"], 5, i, j))
        # as the app's realignment parameters (and fMRIPrep's): mm and radians
        motion = np.column_stack([motion[:, :3], np.radians(motion[:, 3:])])
        pd.DataFrame(motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y",
                                      "rot_z"]).to_csv(
            sh["out"] / "sourcedata" / "simulation" / f"sub-{sub}_run-{run}_motion.tsv",
            sep="\t", index=False, float_format="%.8f")


def _simulate_subject_meg(job: tuple[int, str], heavy: dict) -> None:
    """Write the anatomy (FreeSurfer subject, T1w with landmarks) and the MEG runs of one
    subject; ``heavy`` holds the T1w image and the forward model's gain."""
    import mne_bids

    i, sub = job
    sh = _SHARED
    out, design, anatomy = sh["out"], sh["design"], sh["anatomy"]
    staging = _staging(out, sub)
    fs_dir = out / "derivatives" / "freesurfer"
    fs_subject = f"sub-{sub}"
    _write_freesurfer_subject(anatomy, fs_dir, fs_subject, heavy["t1"])
    t1_path = mne_bids.BIDSPath(subject=sub, root=staging, datatype="anat", suffix="T1w",
                                extension=".nii.gz")
    landmarks = mne_bids.get_anat_landmarks(heavy["t1"], sh["info"], sh["head_mri_t"],
                                            fs_subject, fs_dir)
    mne_bids.write_anat(heavy["t1"], t1_path, landmarks=landmarks, overwrite=True,
                        verbose="error")
    for j, run in enumerate(sh["runs"]):
        LOGGER.info("Simulating MEG of sub-%s run-%s (subject %d/%d)", sub, run, i + 1,
                    sh["n_subjects"])
        ev, run_blocks = _run_inputs(sub, run)
        trials = ev[ev.trial_type != "instruction"]
        with sh["meg_slots"]:  # as many at once as the memory holds
            _write_meg_run(staging, sub, run, design, sh["info"], heavy["gain"], sh["n_grid"],
                           sh["planted"], sh["source_model"], ev, trials, run_blocks,
                           sh["cov"], _stream(sh["seed"], 4, i, j))


#: A MEG run's process holds about this many copies of the run's samples at its peak, while
#: MNE colours the sensor noise (measured: 5.4 GB for a paper-preset run of 1.2 GB).
MEG_PEAK_COPIES = 4.5


def meg_slots(n_workers: int, run_bytes: float, available_bytes: float | None) -> int:
    """How many MEG runs may be simulated at once: all workers, unless their peaks would
    exceed 80 % of the memory available now (then fewer, at least one, with a log line)."""
    if available_bytes is None:
        return n_workers
    slots = max(1, min(n_workers, int(0.8 * available_bytes // run_bytes)))
    if slots < n_workers:
        LOGGER.info("A MEG run needs about %.1f GB and %.1f GB are available: %d MEG run(s) "
                    "at a time", run_bytes / 1e9, available_bytes / 1e9, slots)
    return slots


def available_memory_bytes() -> float | None:
    """Memory available to new work (Linux ``MemAvailable``), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _window_starts() -> list[float]:
    return [100.0 + k * 100.0 / 3.0 for k in range(22)]


def _write_freesurfer_subject(anatomy: TemplateAnatomy, fs_dir: Path, name: str, t1) -> None:
    target = fs_dir / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(anatomy.subjects_dir / anatomy.subject, target, symlinks=False)
    (target / "mri").mkdir(exist_ok=True)
    mgh = nib.MGHImage(np.asarray(t1.dataobj), t1.affine)
    nib.save(mgh, target / "mri" / "T1.mgz")


def _write_meg_run(out, sub, run, design, info, gain, n_grid, planted, source_model, events,
                   trials, run_blocks, cov, rng) -> None:
    import mne
    import mne_bids

    sources = sim_meg.source_activity(
        n_grid=n_grid, planted=planted,
        trials=trials.rename(columns={"trial_type": "condition"}), blocks=run_blocks,
        sfreq=design.meg_sfreq, duration_s=design.run_duration_s, rng=rng,
        source_model=source_model,
    )
    raw = sim_meg.simulate_run_raw(info, sources, gain, events, rng=rng, cov=cov)
    tmp = out / f".tmp_sub-{sub}_run-{run}_raw.fif"
    raw.save(tmp, fmt="short", overwrite=True, verbose="error")
    raw = mne.io.read_raw_fif(tmp, verbose="error")
    path = mne_bids.BIDSPath(subject=sub, task=design.task, run=run, datatype="meg", root=out)
    mne_bids.write_raw_bids(raw, path, overwrite=True, format="FIF", verbose="error")
    tmp.unlink()
    _write_events(path.copy().update(suffix="events", extension=".tsv").fpath, events, design,
                  with_value=True)


def _write_bold_run(out, sub, run, design, base, parcel_of_voxel, units, events,
                    run_blocks, rng) -> np.ndarray:
    regressors, block_ids = sim_fmri.block_regressors(events, design.n_volumes, design.tr_s)
    table = run_blocks.pivot(index="parcel", columns="block", values="fmri_amplitude")
    table = table.reindex(index=units, columns=block_ids)
    motion = sim_fmri.random_motion(design.n_volumes, rng)
    img = sim_fmri.synth_bold(base, parcel_of_voxel, table.to_numpy(), regressors,
                              tr=design.tr_s, rng=rng, motion=motion)
    func = out / f"sub-{sub}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    stem = f"sub-{sub}_task-{design.task}_run-{run}"
    save_nifti_gz(img, func / f"{stem}_bold.nii.gz")
    _write_events(func / f"{stem}_events.tsv", events, design, with_value=False)
    return motion


def _write_events(path: Path, events: pd.DataFrame, design: Design, *, with_value: bool) -> None:
    table = events if with_value else events.drop(columns="value")
    table.to_csv(path, sep="\t", index=False, float_format="%.4f")
    sidecar = {k: v for k, v in _EVENTS_JSON.items() if k in table.columns}
    sidecar["trial_type"] = dict(sidecar["trial_type"])
    sidecar["trial_type"]["Levels"] = {c: f"picture of condition {c}" for c in design.conditions}
    sidecar["trial_type"]["Levels"]["instruction"] = "instruction shown at the start of a block"
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")


def _write_top_level(out: Path, design: Design, subjects: list[str]) -> None:
    description = {
        "Name": "megfmri-fusion simulated picture-naming study",
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["megfmri-fusion simulator", "megfmri-fusion developers"],
        "GeneratedBy": [{"Name": "megfmri-fusion-simulate", "Version": __version__}],
    }
    (out / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    (out / f"task-{design.task}_bold.json").write_text(json.dumps({
        "TaskName": design.task,
        "RepetitionTime": design.tr_s,
        "TaskDescription": "Picture naming in blocks: " + ", ".join(design.conditions),
        "NumberOfVolumesDiscardedByScanner": 0,
    }, indent=2) + "\n")
    (out / "README").write_text(
        "Simulated MEG and fMRI of a block-design picture-naming study, written by "
        "megfmri-fusion-simulate. Every subject has the fsaverage anatomy "
        "(derivatives/freesurfer). The first "
        f"{design.dummy_volumes} volumes of each BOLD run are dummy scans. The planted "
        "MEG-fMRI couplings are in sourcedata/simulation/truth.json.\n"
    )
    participants = pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects],
                                 "age": "n/a", "sex": "n/a", "hand": "n/a"})
    participants.to_csv(out / "participants.tsv", sep="\t", index=False)
    (out / "participants.json").write_text(json.dumps({
        "participant_id": {"Description": "Simulated participant (fsaverage anatomy)."},
        "age": {"Description": "Not simulated.", "Units": "years"},
        "sex": {"Description": "Not simulated."},
        "hand": {"Description": "Not simulated."},
    }, indent=2) + "\n")
