"""The quality-control views of the participant report (issue 24), opened in headless Chromium.

Summaries are built here as the stage nodes write them, with figures drawn by the report's own
functions from constructed data (a phantom head, a spherical scalp, a simulated EOG): every
view must be on the page and not blank, the flicker view must show one frame on screen and all
of them on paper, and the two misregistration measures must put a warning at the top of the
page when, and only when, they are computed on data off by 10 mm. The same checks run on the
simulated study in tests/test_end_to_end.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pytest

from bids_app.fmri.qc import display_volumes, residual_shift
from bids_app.meg.coreg_qc import head_point_distances, residual_translation
from bids_app.reports import qc_figures
from bids_app.reports.participant import build_participant_report
from browser import browser, has_content, print_to_pdf, render
from test_qc_measures import phantom, EPI_CONTRAST, T1_CONTRAST

RUN = "task-naming_run-01"


@pytest.fixture(scope="module")
def chromium():
    if browser() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the report "
                    "pages cannot be opened in a browser")


def _sphere(radius_mm: float, center=(0.0, -10.0, 5.0)):
    sphere = mne.surface._get_ico_surface(3)
    return sphere["rr"] * radius_mm + np.asarray(center), sphere["tris"]


def _registration_summary(folder: Path, offset_mm) -> dict:
    """What RegistrationQC writes, for a phantom registered ``offset_mm`` off."""
    t1w, t1w_affine = phantom((96, 112, 96), 2.0, T1_CONTRAST)
    epi, epi_affine = phantom((56, 66, 48), 3.0, EPI_CONTRAST)
    t1w_to_epi = np.eye(4)
    t1w_to_epi[:3, 3] = -np.asarray(offset_mm, float)
    shift = residual_shift(epi, epi_affine, t1w, t1w_affine, np.linalg.inv(t1w_to_epi))
    meshes = [_sphere(55.0), _sphere(62.0)]              # "white" and "pial"
    shown = display_volumes(epi, epi_affine, t1w, t1w_affine, t1w_to_epi,
                            bounds_mm=np.array([[-75, -100, -65], [75, 80, 75.0]]))
    folder.mkdir(parents=True, exist_ok=True)
    figures = qc_figures.registration_figures(shown.t1w, shown.epi_before, shown.epi_after,
                                              shown.affine, meshes, folder, run=RUN)
    return {"kind": "fmri_registration_qc", "residual_shift_mm": float(np.linalg.norm(shift)),
            "residual_shift_xyz_mm": shift.tolist(), "figures": figures}


def _anatomy_summary(folder: Path, offset_mm) -> dict:
    """What AnatomyQC writes, for head points on a spherical scalp and a transform
    ``offset_mm`` off."""
    rng = np.random.default_rng(0)
    rr, tris = _sphere(0.09, center=(0.0, 0.0, 0.04))
    rr = rr / 1.0
    top = np.flatnonzero(rr[:, 2] > 0.03)
    points = rr[rng.choice(top, 100, replace=False)] + rng.normal(0, 0.0015, (100, 3))
    trans = np.eye(4)
    trans[:3, 3] = np.asarray(offset_mm, float) / 1000.0
    distances = head_point_distances(points, trans, rr, tris)
    shift = residual_translation(points, trans, rr, tris)
    folder.mkdir(parents=True, exist_ok=True)
    fiducials = {"nasion": np.array([0, 90, 40.0]), "lpa": np.array([-80, 0, 40.0]),
                 "rpa": np.array([80, 0, 40.0])}
    coreg = qc_figures.coregistration_figure(
        scalp=(1000 * rr, tris), helmet=_sphere(120.0, center=(0, 0, 40)),
        head_points=1000 * (points + trans[:3, 3]), distances_mm=distances,
        fiducials_digitised=fiducials, fiducials_mri=fiducials,
        path=folder / "coregistration.png", title="coregistration")
    skull = _sphere(70.0)
    t1w, t1w_affine = phantom((80, 96, 80), 2.0, T1_CONTRAST)
    sources = rng.normal(0, 25, (500, 3)) + [0, -10, 5]
    bem = qc_figures.headmodel_figure(t1w, t1w_affine, skull, sources,
                                      folder / "headmodel.png", title="head model")
    return {"kind": "anat_qc", "template_fit": True, "n_head_points": 100,
            "head_point_median_mm": float(np.median(distances)),
            "head_point_max_mm": float(distances.max()),
            "residual_translation_mm": float(np.linalg.norm(shift)),
            "figures": {"coregistration": str(coreg), "headmodel": str(bem)}}


def _meg_summaries() -> list[dict]:
    rng = np.random.default_rng(2)
    freqs = np.linspace(0, 100, 201)
    onsets = np.sort(rng.uniform(5, 290, 60))
    ptp = rng.gamma(4, 15, 60)
    ptp[[3, 17]] = [400.0, 260.0]
    time = np.arange(0.1, 300, 0.2)
    maxwell = {"kind": "meg_maxwell", "applied": True, "st_duration": 10.0,
               "origin_mm": [0.0, 0.0, 40.0], "noisy": ["MEG2443"], "flat": [],
               "marked_bad": ["MEG0111"], "sfreq": 250.0, "duration_s": 300.0,
               "psd_freqs": freqs.tolist(),
               "psd": {ch: {"before": (-26 - 0.01 * freqs + 0.3 * np.exp(-(freqs - 10) ** 2)
                                       ).tolist(),
                            "after": (-27 - 0.01 * freqs + 0.3 * np.exp(-(freqs - 10) ** 2)
                                      ).tolist()} for ch in ("mag", "grad")}}
    blocks = [{"condition": c, "block": b, "n_trials": 10, "n_rejected": r, "n_kept": 10 - r,
               "included": r < 6} for b, (c, r) in enumerate(
                   [("animals", 0), ("tools", 1), ("faces", 7), ("animals", 0)], start=1)]
    power = {"kind": "meg_power", "eog_channels": ["EOG061"], "eog_reject_uv": 150.0,
             "blocks": blocks, "bands": {}, "n_sources": 5124, "head_model": "BEM",
             "eog_trace": {"time_s": time.tolist(), "low_uv": (-20 + 0 * time).tolist(),
                           "high_uv": (20 + 300 * (np.abs(time - 60) < 0.3)).tolist()},
             "trials": {"onset_s": onsets.tolist(), "ptp_uv": ptp.tolist(),
                        "kept": (ptp < 150).tolist()}}
    return [maxwell, power]


def _report(out: Path, work: Path, *, misregistered: bool) -> Path:
    offset = (0.0, 10.0, 0.0) if misregistered else (0.0, 0.0, 0.0)
    summaries = [
        ("anatomy", {"kind": "anat_coregistration", "method": "template fiducials fitted to "
                     "the digitised fiducials", "template_fit": True}),
        ("anatomy", _anatomy_summary(work / "anat", offset)),
        (RUN, {"kind": "fmri_registration", "method": "ANTs rigid", "nmi_before": 1.20,
               "nmi_after": 1.30}),
        (RUN, _registration_summary(work / "fmri", offset)),
        *[(RUN, s) for s in _meg_summaries()],
    ]
    return build_participant_report(output_dir=out, subject="01", plan_text="plan",
                                     anatomy_mode="freesurfer", warnings=[],
                                     summaries=summaries, conditions=["animals", "tools", "faces"],
                                     bands=["alpha"])


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("qc")
    return {kind: _report(root / kind / "out", root / kind / "work",
                          misregistered=kind == "misregistered")
            for kind in ("good", "misregistered")}


VIEWS = {  # figure name (after sub-01_) -> the view it shows
    f"{RUN}_desc-regafter_bold.png": "EPI after registration",
    f"{RUN}_desc-regbefore_bold.png": "EPI before registration",
    f"{RUN}_desc-regt1w_bold.png": "T1w with the same contours",
    "desc-coreg_meg.png": "MEG-MRI coregistration",
    "desc-bem_meg.png": "head model",
    f"{RUN}_desc-psd_meg.png": "spectra before/after tSSS",
    f"{RUN}_desc-trials_meg.png": "trials kept/rejected",
    f"{RUN}_desc-eog_meg.png": "EOG and threshold",
}


def test_every_view_is_on_the_page_and_not_blank(pages, chromium):
    page = pages["good"]
    shown = render(page)
    assert shown.broken == []
    figures = page.parent / "sub-01" / "figures"
    for name, view in VIEWS.items():
        png = figures / f"sub-01_{name}"
        assert png.is_file(), f"{view}: {png.name} missing"
        assert has_content(png), f"{view}: {png.name} is blank"
    rendered = {Path(src).name for src in shown.visible}
    # every view on screen, except the flicker's hidden frames (one of three shown)
    assert {f"sub-01_{n}" for n in VIEWS} - rendered == {
        f"sub-01_{RUN}_desc-regbefore_bold.png", f"sub-01_{RUN}_desc-regt1w_bold.png"}
    assert "MEG-MRI coregistration" in shown.subtitles
    assert "Head model over the MRI" in shown.subtitles
    assert f"{RUN}: bad channels" in shown.subtitles
    html = page.read_text()
    assert "MEG2443" in html and "noisy (MNE find_bad_channels_maxwell)" in html
    assert "MEG0111" in html and "marked bad in channels.tsv" in html


def test_flicker_frames_share_one_size_and_all_print(pages, chromium, tmp_path):
    """The toggle overlays frames of one pixel size; printed, every frame is on paper."""
    from matplotlib.image import imread

    figures = pages["good"].parent / "sub-01" / "figures"
    sizes = {imread(figures / f"sub-01_{RUN}_desc-{d}_bold.png").shape
             for d in ("regafter", "regbefore", "regt1w")}
    assert len(sizes) == 1, sizes
    pdf = print_to_pdf(pages["good"], tmp_path / "page.pdf")
    screen = len(render(pages["good"]).visible)
    assert pdf.count(b"/Subtype /Image") >= screen + 2, "hidden flicker frames not printed"


def test_template_fit_is_said_in_red(pages, chromium):
    shown = render(pages["good"])
    assert any("template fit" in a for a in shown.alerts), shown.alerts
    assert any("template fit" in w for w in shown.warnings)


def test_misregistration_is_flagged_at_the_top_from_its_measure(pages, chromium):
    """The good page has neither warning; the page of a run registered 10 mm off and a head-MRI
    transform 10 mm off has both, first on the page, with the measured values."""
    good, bad = render(pages["good"]), render(pages["misregistered"])
    assert bad.first_block == "warnings"

    def about(shown, words):
        return [w for w in shown.warnings if words in w]

    assert not about(good, "registration looks off") and not about(good, "coregistration looks")
    [epi] = about(bad, "EPI-T1w registration looks off")
    [meg] = about(bad, "MEG-MRI coregistration looks off")
    saved = json.loads((pages["misregistered"].parent / "logs" / "reports" /
                        "sub-01_warnings.json").read_text())
    assert epi in saved["warnings"] and meg in saved["warnings"]
    shift = float(epi.split("best ")[1].split(" mm")[0])
    translation = float(meg.split("shift of ")[1].split(" mm")[0])
    assert 9.0 <= shift <= 11.0 and 8.0 <= translation <= 11.0
