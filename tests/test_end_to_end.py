"""The whole app on a simulated study: participant level for every subject, then the group level.

Five subjects x one run of the small preset (the fewest observations the group level accepts),
through the real command line (:func:`bids_app.cli.run.run`), the nipype graph, the MultiProc
plugin and the work-directory cache. Checks the exit codes, every file and column of DESIGN 6,
the JSON sidecars and the settings they record, that the official validator accepts both the
simulated dataset and the output folder, the reports, that the input dataset is untouched, that
a second participant run reuses the cache, and that the fMRI block values, the realignment and
the MEG power follow the simulated truth.

About 11 minutes on 2 cores inside the full suite (measured 2026-11-29: simulation 1.5 min,
participant level 9.2 min — per run realignment ~110 s, tSSS ~28 s, DICS ~19 s — group level
31 s, then the checks).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_app.cli.run import run
from browser import browser, has_content, render
from bids_app.cli.simulate import DEMO_CONFIG, simulate
from bids_app.io.validation import validate
from skeleton import fingerprint

# one module-scoped study: pyproject's ``--dist loadfile`` keeps every test of this file on one
# xdist worker (``loadgroup`` marks are ignored by pytest 9.2, pytest-xdist issue 1386)
pytestmark = pytest.mark.slow

N_SUBJECTS = 5
BANDS = {"theta", "alpha", "lowbeta", "highbeta", "lowgamma", "highgamma"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Simulate, run both levels once, and hand the folders to the tests."""
    root = tmp_path_factory.mktemp("e2e")
    bids, out, work = root / "bids", root / "out", root / "work"
    simulate(bids, preset="small", n_subjects=N_SUBJECTS, n_runs=1, seed=4, n_jobs=2)
    before = fingerprint(bids)
    config = root / "config.toml"
    config.write_text(DEMO_CONFIG + "\n[stats]\nn_bootstrap = 2000\n")
    common = ["-w", str(work), "--nprocs", "2", "--random-seed", "1", "--config", str(config)]
    # the participant level runs the official BIDS validator on the simulated dataset
    codes = {"participant": run([str(bids), str(out), "participant", *common])}
    common.append("--skip-bids-validation")
    codes["group"] = run([str(bids), str(out), "group", *common])
    return {"bids": bids, "out": out, "work": work, "common": common, "codes": codes,
            "before": before, "config": config}


def _single(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {found}"
    return found[0]


def _table(path: Path) -> pd.DataFrame:
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    assert sidecar.is_file(), f"{path.name} has no JSON sidecar"
    described = json.loads(sidecar.read_text())
    table = pd.read_csv(path, sep="\t")
    for column in table.columns:
        assert column in described, f"{sidecar.name} does not describe column {column!r}"
    return table


def test_both_levels_succeed_and_input_is_untouched(study):
    assert study["codes"] == {"participant": 0, "group": 0}
    assert fingerprint(study["bids"]) == study["before"]


def test_simulated_dataset_passes_the_bids_validator(study):
    """bids-validator-deno reports no error (warnings allowed)."""
    report = validate(study["bids"])
    assert report.errors == {}


def test_derivatives_pass_the_bids_validator(study):
    """The output folder is a derivative dataset that bids-validator-deno accepts: no error,
    with the files no BIDS-Derivatives rule covers listed in its .bidsignore (as fMRIPrep
    does), and the label GIFTIs named and described as BIDS asks."""
    import subprocess

    from bids_app.io.validation import parse_report, validator_executable

    out = study["out"]
    assert (out / ".bidsignore").read_text().splitlines()[:2] == ["*.html", "logs"]
    proc = subprocess.run([validator_executable(), str(out), "--format", "json", "--no-color"],
                          capture_output=True, text=True, timeout=600)
    report = parse_report(json.loads(proc.stdout))
    assert report.errors == {}, report.summary("errors")
    label = json.loads(_single(out, "hemi-L_space-fsaverage5_atlas-*_dseg.json").read_text())
    assert label["SpatialReference"].startswith("https://")


def test_derivatives_root(study):
    out = study["out"]
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "megfmri-fusion"
    assert description["GeneratedBy"][0]["Version"]
    assert "SourceDatasets" in description
    assert list((out / "logs").glob("config-*.toml")), "effective configuration not saved"
    dseg = _table(_single(out, "atlas-*_dseg.tsv"))
    assert {"index", "name", "hemi", "n_vertices", "included"} <= set(dseg.columns)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.partial*"))


def test_participant_tables(study):
    out = study["out"]
    for s in range(1, N_SUBJECTS + 1):
        sub = f"sub-{s:02d}"
        bold = _table(_single(out / sub / "func", f"{sub}_task-naming_run-*_atlas-*_desc-blocks_bold.tsv"))
        assert list(bold.columns[:5]) == ["condition", "block", "parcel", "value", "normalized"]
        assert bold.condition.nunique() == 3 and np.isfinite(bold.normalized).all()
        meg = _table(_single(out / sub / "meg", f"{sub}_task-naming_run-*_atlas-*_desc-dics_meg.tsv.gz"))
        assert list(meg.columns[:7]) == ["condition", "block", "band", "window_start_ms", "parcel",
                                         "relchange", "normalized"]
        assert set(meg.band) == BANDS and meg.window_start_ms.nunique() == 22
        assert set(meg.parcel) == set(bold.parcel)
        assert np.isfinite(meg.normalized).all()
        report = (out / f"{sub}.html").read_text()
        assert "Maxwell" in report and "<img" in report


def _sidecar(folder: Path, pattern: str) -> dict:
    path = _single(folder, pattern)
    return json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())


def test_participant_sidecars_record_the_settings_used(study):
    """Each participant table's sidecar says how it was made: the raw file, the route and the
    block volumes of the fMRI values; whether tSSS ran, the trials kept and the DICS settings
    of the MEG values (DESIGN 6; the demo configuration, defaults otherwise)."""
    out = study["out"]
    bold = _sidecar(out / "sub-01" / "func", "*_desc-blocks_bold.tsv")
    assert bold["Sources"] == ["bids:raw:sub-01/func/sub-01_task-naming_run-01_bold.nii.gz"]
    assert {k: bold[k] for k in ("fmri_route", "repetition_time_s", "dummy_scans",
                                 "highpass_period_s", "block_volumes", "rest_volumes")} == {
        "fmri_route": "ants", "repetition_time_s": 3.0, "dummy_scans": 5,
        "highpass_period_s": 510.0, "block_volumes": 11, "rest_volumes": 6}
    meg = _sidecar(out / "sub-01" / "meg", "*_desc-dics_meg.tsv.gz")
    assert meg["Sources"] == ["bids:raw:sub-01/meg/sub-01_task-naming_run-01_meg.fif"]
    assert meg["maxfilter_applied"] is True and meg["st_duration_s"] == 10.0
    assert meg["find_bad_channels"] is False          # the demo configuration
    assert meg["eog_channels"] and 0 <= meg["n_trials_rejected"] < meg["n_trials"] == 60
    assert set(meg["bands"]) == BANDS and meg["bands"]["alpha"] == [8.0, 13.0]
    assert (meg["dics_reg"], meg["pick_ori"], meg["baseline_scope"], meg["head_model"]) == (
        0.2, "normal", "block", "BEM")
    assert meg["baseline_ms"] == [-200.0, 0.0] and meg["window_length_ms"] == 200.0


def test_group_tables_and_report(study):
    group = study["out"] / "group"
    columns = {
        "desc-observations_meg.tsv.gz": ["subject", "run", "condition", "band",
                                         "window_start_ms", "parcel", "value"],
        "desc-observations_bold.tsv": ["subject", "run", "condition", "parcel", "value"],
        "desc-spearman_stat.tsv": ["parcel", "hemi", "condition", "band", "window_start_ms",
                                   "rho", "p", "significant"],
        "desc-ward_clusters.tsv": ["parcel", "hemi", "cluster", "leaf_order"],
        "desc-bootstrap_stat.tsv": ["cluster", "hemi", "condition", "band", "window_start_ms",
                                    "rho", "ci99_low", "ci99_high", "ci999_low", "ci999_high"],
        "desc-effects_table.tsv": ["condition", "cluster", "hemi", "band", "start_ms", "end_ms",
                                   "ci_level"],
        "desc-megttest_stat.tsv": ["condition_a", "condition_b", "cluster", "hemi", "band",
                                   "window_start_ms", "t", "p", "significant"],
    }
    tables = {}
    for suffix, expected in columns.items():
        table = _table(_single(group, f"task-naming_atlas-*_{suffix}"))
        assert set(expected) <= set(table.columns), f"{suffix}: {list(table.columns)}"
        tables[suffix] = table
    observations = tables["desc-observations_bold.tsv"]
    assert observations[["subject", "run"]].drop_duplicates().shape[0] == N_SUBJECTS
    spearman = tables["desc-spearman_stat.tsv"]
    n_parcels = spearman.parcel.nunique()
    assert len(spearman) == n_parcels * 3 * 6 * 22
    assert spearman.rho.between(-1, 1).all() and spearman.p.between(0, 1).all()
    boot = tables["desc-bootstrap_stat.tsv"]
    assert (boot.ci999_low <= boot.ci99_low + 1e-12).all()
    assert (boot.ci99_high <= boot.ci999_high + 1e-12).all()
    assert len(list((group / "figures").glob("*.png"))) >= 4
    page = (study["out"] / "group.html").read_text()
    assert "<img" in page
    # the group level's methods text is written and shown after the participant level's
    methods = (study["out"] / "logs" / "CITATION-group.md").read_text()
    assert methods.startswith("# Methods: group level") and "Spearman rank correlation" in methods
    assert page.index("Spearman rank correlation") > page.index("event-related DICS beamformer") > 0


def test_written_tables_reproduce_their_own_statistics(study):
    """Issue 19, item 10: a reader recomputing from the published tables gets the published
    numbers, bit for bit. Each participant MEG table's ``normalized`` from its ``relchange``;
    the group observations from the participant tables; every group statistic from the
    observation tables and the settings in their sidecars (``tests/reproduce.py``)."""
    from bids_app.io.derivatives import read_table
    from reproduce import assert_group_tables_reproduce, meg_normalized_from_relchange

    out = study["out"]
    for path in sorted(out.glob("sub-*/meg/*_desc-dics_meg.tsv.gz")):
        table = read_table(path)
        assert np.array_equal(meg_normalized_from_relchange(table), table["normalized"]), path
    atlas = _single(out, "atlas-*_dseg.tsv").name[len("atlas-"):-len("_dseg.tsv")]
    assert_group_tables_reproduce(out, "naming", atlas)


def test_fmri_block_values_follow_the_simulated_truth(study):
    """The latent engagement drives the BOLD amplitude of every block: per subject, the app's
    block values correlate with the simulated amplitudes, r >= 0.9 over all blocks and parcels
    of a run (issue bar; measured 0.943 and 0.945 on sub-01 of the small preset, 0.932-0.960
    over its 16 runs)."""
    truth = pd.read_csv(study["bids"] / "sourcedata" / "simulation" / "blocks.tsv", sep="\t",
                        dtype={"subject": str, "run": str})
    for s in range(1, N_SUBJECTS + 1):
        sub = f"{s:02d}"
        bold = pd.read_csv(_single(study["out"] / f"sub-{sub}" / "func",
                                   "*desc-blocks_bold.tsv"), sep="\t")
        merged = bold.merge(truth[truth.subject == sub], on=["condition", "block", "parcel"])
        assert len(merged) == len(bold)
        r = np.corrcoef(merged["value"], merged["fmri_amplitude"])[0, 1]
        assert r >= 0.9, f"sub-{sub}: r = {r:.2f}"


def test_realignment_recovers_the_simulated_motion(study):
    """The realignment parameters in the participant report inputs equal the simulated head
    motion (dummy volumes dropped, relative to the first kept volume): within 0.1 mm and 0.1 deg
    for every volume (measured on the small preset: <= 0.046 mm and <= 0.034 deg)."""
    sim = study["bids"] / "sourcedata" / "simulation"
    for s in range(1, N_SUBJECTS + 1):
        sub = f"{s:02d}"
        saved = json.loads((study["out"] / "logs" / "reports" / f"sub-{sub}.json").read_text())
        motion = [summary for _, summary in saved["summaries"]
                  if summary.get("kind") == "fmri_motion"]
        assert len(motion) == 1
        found = pd.DataFrame(motion[0]["motion"])
        truth = pd.read_csv(sim / f"sub-{sub}_run-01_motion.tsv", sep="\t")
        truth = truth.iloc[motion[0]["dummy_scans"]:].reset_index(drop=True)
        truth -= truth.iloc[0]
        assert len(found) == len(truth)
        error = (found[truth.columns] - truth).abs().max()
        assert error[["trans_x", "trans_y", "trans_z"]].max() < 0.1, error
        assert np.degrees(error[["rot_x", "rot_y", "rot_z"]].max()) < 0.1, error


def test_meg_power_follows_the_planted_changes_in_planted_parcels_only(study):
    """In each planted effect's band and windows, the block-wise DICS power change of the
    planted parcels follows the simulated change (the effect's shared engagement), pooled over
    the 5 subjects x 6 blocks; null parcels in the same band and windows follow it much less.

    Null parcels are not at zero: the beamformer leaks power from the planted sources to
    parcels 4-6 cm away (measured on the small preset, 8 subjects x 2 runs, 96 blocks, with the
    default DICS regularisation of 0.2: planted r = 0.49-0.75 per effect, mean 0.59; null
    parcels -0.04-0.51, mean 0.23, the highest for a parietal parcel beside the occipital alpha
    source). With 30 blocks here, r has a standard
    error of about 0.17 per effect, hence the margins."""
    sim = study["bids"] / "sourcedata" / "simulation"
    truth = json.loads((sim / "truth.json").read_text())
    blocks = pd.read_csv(sim / "blocks.tsv", sep="\t", dtype={"subject": str, "run": str})
    planted_r, null_r = [], []
    for effect in truth["effects"]:
        windows = np.round(effect["window_starts_ms"], 1)
        found, planted, nulls = [], [], {p: [] for p in truth["null_parcels"]}
        for s in range(1, N_SUBJECTS + 1):
            sub = f"{s:02d}"
            table = pd.read_csv(_single(study["out"] / f"sub-{sub}" / "meg", "*_desc-dics_meg.tsv.gz"),
                                sep="\t")
            table = table[(table.band == effect["band"])
                          & table.window_start_ms.round(1).isin(windows)]
            shared = (blocks[(blocks.subject == sub) & blocks.parcel.isin(effect["parcels"])]
                      .groupby("block").meg_relchange.mean())
            mine = table[table.parcel.isin(effect["parcels"])].groupby("block").relchange.mean()
            found += list(mine)
            planted += list(shared.reindex(mine.index))
            for parcel in nulls:
                other = table[table.parcel == parcel].groupby("block").relchange.mean()
                nulls[parcel] += list(zip(other, shared.reindex(other.index)))
        planted_r.append(np.corrcoef(found, planted)[0, 1])
        null_r += [np.corrcoef(*zip(*pairs))[0, 1] for pairs in nulls.values()]
    assert min(planted_r) > 0.2 and np.mean(planted_r) > 0.35, planted_r
    assert np.mean(planted_r) - np.mean(null_r) > 0.15, (planted_r, null_r)


def test_second_participant_run_reuses_the_cache(study):
    """Nothing changed: every node is found in the work directory and the outputs stay valid."""
    target = study["out"] / "sub-01" / "func"
    mtime = {p: p.stat().st_mtime for p in target.iterdir()}
    code = run([str(study["bids"]), str(study["out"]), "participant", "--participant-label",
                "01", *study["common"]])
    assert code == 0
    assert {p: p.stat().st_mtime for p in target.iterdir()} == mtime


# --------------------------------------------------------------------------------------------------
# Reports, opened in a real headless browser
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium():
    if browser() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the report "
                    "pages cannot be opened in a browser")


PARTICIPANT_SECTIONS = ["Run plan", "Anatomy and parcels", "fMRI", "MEG", "Methods", "About"]


def _check_page(html: Path, sections: list[str]):
    shown = render(html)
    assert shown.n_images > 0, f"{html.name}: no images"
    assert shown.broken == [], f"{html.name}: images that did not load: {shown.broken}"
    for title in sections:
        assert title in shown.sections, f"{html.name}: section {title!r} missing"
    assert shown.first_block == "warnings", "warnings must come first"
    return shown


def test_participant_report_renders_with_warnings_on_top(study, chromium):
    shown = _check_page(study["out"] / "sub-01.html", PARTICIPANT_SECTIONS)
    # without an installed Destrieux atlas the fallback parcellation is used: said at the top
    atlas = _single(study["out"], "atlas-*_dseg.tsv").name.split("_")[0][len("atlas-"):]
    if atlas == "fallback":
        assert any("fallback parcels" in w for w in shown.warnings), shown.warnings
    assert "Parcellation and analysis grids" in shown.subtitles
    pngs = sorted((study["out"] / "sub-01" / "figures").glob("*.png"))
    for png in pngs:
        assert has_content(png), f"{png.name} is blank"
    # named as fMRIPrep names its figures: the run's entities, then desc and the modality
    names = [png.name for png in pngs]
    assert "sub-01_task-naming_run-01_desc-motion_bold.png" in names, names
    assert f"sub-01_atlas-{atlas}_dseg.png" in names, names
    pattern = (r"sub-01_(task-naming_run-01_desc-[a-z0-9]+_(bold|meg)|atlas-[a-z0-9]+_dseg"
               r"|desc-[a-z]+_meg)\.png")
    assert all(re.fullmatch(pattern, name) for name in names), names
    # the quality-control views of issue 24, each on the page (flicker frames hidden but
    # loaded) and not blank (checked above)
    views = {"desc-regafter_bold", "desc-regbefore_bold", "desc-regt1w_bold",
             "desc-coverage_bold", "desc-psd_meg", "desc-trials_meg", "desc-eog_meg"}
    expected = {f"sub-01_task-naming_run-01_{v}.png" for v in views}
    expected |= {"sub-01_desc-coreg_meg.png", "sub-01_desc-bem_meg.png"}
    assert expected <= set(names), expected - set(names)
    visible = {Path(src).name for src in shown.visible}
    assert expected - visible == {"sub-01_task-naming_run-01_desc-regbefore_bold.png",
                                  "sub-01_task-naming_run-01_desc-regt1w_bold.png"}
    assert {"MEG-MRI coregistration", "Head model over the MRI",
            "task-naming_run-01: bad channels"} <= set(shown.subtitles)
    # the demo's registrations are right: neither misregistration warning
    assert not [w for w in shown.warnings if "looks off" in w], shown.warnings


def test_misregistration_and_shifted_transform_are_flagged_on_top(study, chromium, tmp_path):
    """Issue 24: the real quality-control nodes rerun on sub-01's files with the EPI-T1w
    registration shifted by 10 mm and the head-MRI transform shifted by 10 mm; the report built
    from their summaries warns of both at the top, with the measures (measured on the small
    preset: residual shift 0 mm and residual translation < 0.1 mm as registered; 10.0 mm and
    10.0 mm shifted)."""
    import mne

    from bids_app.interfaces.anatomy import AnatomyQC
    from bids_app.interfaces.fmri import RegistrationQC
    from bids_app.reports.participant import build_participant_report, report_inputs_path

    from bids_app.workflows import workflow_name

    work = study["work"] / workflow_name("participant") / "sub_01_wf"
    fmri, anat = work / "fmri_task_naming_run_01_wf", work / "anat_wf"
    fs = study["bids"] / "derivatives" / "freesurfer"
    affine = np.loadtxt(fmri / "coregister" / "t1w_to_epi.txt")
    affine[:3, 3] += (0.0, 10.0, 0.0)
    np.savetxt(tmp_path / "shifted_t1w_to_epi.txt", affine)
    trans = mne.read_trans(anat / "head_mri_trans" / "head-mri-trans.fif")
    trans["trans"][:3, 3] += (0.01, 0.0, 0.0)
    mne.write_trans(tmp_path / "shifted-trans.fif", trans)
    (tmp_path / "reg").mkdir()
    (tmp_path / "anat").mkdir()
    registration = RegistrationQC(
        mean_file=str(fmri / "realign" / "bold_mean.nii.gz"), t1w=str(fs / "sub-01" / "mri" / "T1.mgz"),
        affine_file=str(tmp_path / "shifted_t1w_to_epi.txt"), subjects_dir=str(fs),
        subject_id="sub-01", fmri_grid=str(anat / "parcellate" / "fmri_grid.npz"),
        run="task-naming_run-01").run(cwd=str(tmp_path / "reg")).outputs.report
    anatomy = AnatomyQC(
        meg_file=str(_single(study["bids"] / "sub-01" / "meg", "*_meg.fif")),
        trans=str(tmp_path / "shifted-trans.fif"), subjects_dir=str(fs), subject_id="sub-01",
        inner_skull=str(fs / "sub-01" / "bem" / "inner_skull.surf"),
        src=str(anat / "parcellate" / "grid-src.fif")).run(cwd=str(tmp_path / "anat")).outputs.report
    shifted = {json.loads(Path(p).read_text())["kind"]: json.loads(Path(p).read_text())
               for p in (registration, anatomy)}
    assert 9.0 <= shifted["fmri_registration_qc"]["residual_shift_mm"] <= 11.0
    assert 9.0 <= shifted["anat_qc"]["residual_translation_mm"] <= 11.0
    inputs = json.loads(report_inputs_path(study["out"], "01").read_text())
    as_registered = {s["kind"]: s for _, s in inputs["summaries"] if s["kind"] in shifted}
    assert as_registered["fmri_registration_qc"]["residual_shift_mm"] < 2.0
    assert as_registered["anat_qc"]["residual_translation_mm"] < 1.0
    summaries = [(run, shifted.get(s["kind"], s)) for run, s in inputs["summaries"]]
    page = build_participant_report(
        output_dir=tmp_path / "out", subject="01", plan_text=inputs["plan_text"],
        anatomy_mode=inputs["anatomy_mode"], warnings=inputs["warnings"], summaries=summaries,
        conditions=inputs["conditions"], bands=inputs["bands"])
    shown = render(page)
    assert shown.first_block == "warnings" and shown.broken == []
    assert any("EPI-T1w registration looks off" in w for w in shown.warnings), shown.warnings
    assert any("MEG-MRI coregistration looks off" in w for w in shown.warnings), shown.warnings


def test_group_report_renders(study, chromium):
    shown = _check_page(study["out"] / "group.html",
                        ["Participants", "What the method can and cannot see", "Methods", "About"])
    # one line per participant, linking to its report's sections (issue 24)
    page = (study["out"] / "group.html").read_text()
    for s in range(1, N_SUBJECTS + 1):
        assert f'href="sub-{s:02d}.html#fmri"' in page and f'href="sub-{s:02d}.html#meg"' in page
    atlas = _single(study["out"], "atlas-*_dseg.tsv").name.split("_")[0][len("atlas-"):]
    if atlas == "fallback":  # the group page says so too, not "No warnings"
        assert any("fallback parcellation" in w for w in shown.warnings), shown.warnings
    assert "Effects (Table 1)" in shown.subtitles
    assert "Simulation: planted vs found" in shown.subtitles
    for png in (study["out"] / "group" / "figures").glob("*.png"):
        assert has_content(png), f"{png.name} is blank"


def test_reports_only_rebuilds_both_reports_without_the_work_folder(study, tmp_path):
    out = study["out"]
    for page in ("sub-02.html", "group.html"):
        (out / page).unlink()
    options = ["-w", str(tmp_path / "empty-work"), "--config", str(study["config"]),
               "--reports-only", "--skip-bids-validation"]
    assert run([str(study["bids"]), str(out), "participant", "--participant-label", "02",
                *options]) == 0
    assert run([str(study["bids"]), str(out), "group", *options]) == 0
    assert "<img" in (out / "sub-02.html").read_text()
    assert "<img" in (out / "group.html").read_text()
    assert not (tmp_path / "empty-work").exists() or not any((tmp_path / "empty-work").iterdir())
