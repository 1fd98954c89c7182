"""The participant report ``sub-<label>.html`` (issue 7).

Built from the JSON summaries that the stage nodes write (each with a ``kind``), the run plan
and the warnings met on the way. Every summary kind has a renderer below; an unknown kind is
shown as a plain table so nothing is silently dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from bids_app import __version__
from bids_app.reports import figures, qc_figures
from bids_app.reports.cortex import parcel_values_on_vertices
from bids_app.reports.html import Section, render_page, write_page

LOGGER = logging.getLogger(__name__)

#: Captions of the quality-control figures: what a good result looks like, and what to do
#: when it does not (issue 24; docs/reports.md shows each figure).
CAPTIONS = {
    "registration": (
        "Mean EPI where its header puts it (before) and where the registration puts it "
        "(after), and the T1w, with the subject's white (blue) and pial (red) surfaces; choose "
        "a frame or let the first two flicker. Good: after registration the contours follow the "
        "EPI's brain outline, ventricles and grey-white border as closely as they follow the "
        "T1w's, in all three planes. If they are off by more than a voxel (3 mm), or 'before' "
        "fits better: check the images' headers (same scanner session?), set [fmri] "
        "coregistration_init = \"center-of-mass\" for images from different sessions, or give "
        "FreeSurfer (--fs-subjects-dir) for boundary-based registration."),
    "coverage": (
        "Share of each parcel's grid points whose BOLD voxel has signal (inside the field of "
        "view, not masked), on the inflated fsaverage5 cortex. Good: green everywhere. Red or "
        "yellow parcels lost signal (field of view cut the brain, susceptibility dropout): "
        "their fMRI values rest on fewer points or are missing; exclude them "
        "([anatomy] exclude_regions) or acquire a larger field of view."),
    "bad_channels": (
        "MEG channels left out of the Maxwell filter and why. Good: none or a few. Many noisy "
        "channels point to a problem in the recording (a magnetised object, a broken sensor); "
        "check the raw data, and mark channels you know to be bad in channels.tsv."),
    "psd": (
        "Mean power spectrum of the good magnetometers and gradiometers, before and after "
        "Maxwell filtering (tSSS). Good: 'after' lies below 'before' at low frequencies "
        "(environmental interference removed) and keeps the alpha peak near 10 Hz; line "
        "noise peaks (50/60 Hz) may remain. If 'after' is above 'before' or flat: check the "
        "fine-calibration and cross-talk files and the bad channels."),
    "trials": (
        "Trials kept (blue) and rejected for eye movements (red) per block; blocks with too "
        "few trials ([meg] min_trials_per_block) are left out. Good: most trials kept in "
        "every block. Many rejections: look at the EOG figure; a threshold too low for the "
        "recording's EOG scale can be raised with [meg] eog_reject_uv."),
    "eog": (
        "Top: the EOG over the run (range in 0.2-s bins), rejected trials shaded. Bottom: "
        "each trial's EOG peak-to-peak amplitude between the epoch's start and end, against "
        "the threshold. Good: blinks stand out as sparse peaks and only the trials with them "
        "cross the line. If most trials cross it, the EOG is noisy or scaled wrongly (check "
        "its unit in channels.tsv); if none do while blinks are visible, the threshold is too "
        "high."),
    "coregistration": (
        "MEG-MRI coregistration in the MRI frame, seen from the top, the front and the left: "
        "the scalp from the MRI (beige), the MEG helmet (blue), the digitised head points "
        "coloured by their distance to the scalp, the digitised (circles) and MRI (crosses) "
        "fiducials. Good: the points lie on the scalp all round (yellow, a few mm), the "
        "circles on the crosses, the head inside the helmet. Points off the scalp on one side "
        "and sunk on the other mean a shifted transform: provide the -trans.fif made with "
        "'mne coreg', or correct the anatomical landmarks in the T1w sidecar."),
    "headmodel": (
        "The BEM inner skull (green) on slices of the T1w, with the source grid points "
        "(red) within 3 mm of each slice. Good: the green line follows the inside of the "
        "skull without cutting the brain, and every point lies in the cortex inside it. A "
        "surface crossing the brain or points outside it: remake the BEM surfaces "
        "('mne watershed_bem') or check the FreeSurfer reconstruction."),
}


class ReportContext:
    """Where figures go and how to name them for one participant."""

    def __init__(self, output_dir: Path, subject: str, conditions: Sequence[str],
                 bands: Sequence[str]):
        self.output_dir = Path(output_dir)
        self.subject = subject
        self.conditions = list(conditions)
        self.bands = list(bands)
        self.figure_dir = self.output_dir / f"sub-{subject}" / "figures"
        self.warnings: list[str] = []
        self.atlas: str | None = None          # set by the anatomy summary

    def cortex(self):
        """(per-vertex parcel labels, parcel table) of the atlas in use, or None."""
        from bids_app.io.derivatives import atlas_table_path, read_table
        from bids_app.reports.cortex import vertex_labels

        table = atlas_table_path(self.output_dir, self.atlas)
        labels = vertex_labels(self.output_dir, self.atlas) if self.atlas else None
        if labels is None or not table.is_file():
            return None
        return labels, read_table(table)

    def figure_path(self, name: str) -> tuple[Path, str]:
        """Absolute path and the page-relative path of a figure.

        ``name`` continues the subject's entities as fMRIPrep names its figures, e.g.
        ``task-naming_run-01_desc-motion_bold`` gives
        ``sub-01/figures/sub-01_task-naming_run-01_desc-motion_bold.png``.
        """
        path = self.figure_dir / f"sub-{self.subject}_{name}.png"
        return path, str(path.relative_to(self.output_dir))

    def copy_figure(self, source: str | None, name: str) -> str | None:
        """Copy a figure a stage node drew (in the work folder) to :meth:`figure_path`; the
        page-relative path, or None when neither the source nor an earlier copy exists (a
        ``--reports-only`` rebuild after the work folder was deleted keeps earlier copies)."""
        import shutil

        path, rel = self.figure_path(name)
        if source and Path(source).is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path)
        return rel if path.is_file() else None


# --------------------------------------------------------------------------------------------------
# Renderers: (summary, run label, context, section) -> None
# --------------------------------------------------------------------------------------------------
def _fmri_motion(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle(f"{run}: head motion")
    sec.items([("volumes (after dummies)", s["n_volumes"]),
               ("max translation (mm)", f"{s['max_translation_mm']:.2f}"),
               ("max rotation (deg)", f"{s['max_rotation_deg']:.2f}"),
               ("mean / max framewise displacement (mm)",
                f"{s['mean_fd_mm']:.3f} / {s['max_fd_mm']:.3f}")])
    motion = _motion_table(s)
    if motion is not None:
        path, rel = ctx.figure_path(f"{run}_desc-motion_bold")
        figures.motion_figure(motion, path, f"{run} head motion")
        sec.figure(rel, "Realignment parameters and framewise displacement (Power et al.).")
    if s["max_fd_mm"] > 0.9:
        ctx.warnings.append(f"{run}: framewise displacement reaches {s['max_fd_mm']:.2f} mm")


def _motion_table(s: dict) -> pd.DataFrame | None:
    """The realignment parameters: embedded in the summary, else read from its motion file."""
    if "motion" in s:
        return pd.DataFrame(s["motion"])
    motion_tsv = Path(s.get("motion_tsv", ""))
    return pd.read_csv(motion_tsv, sep="\t") if motion_tsv.is_file() else None


def _fmri_registration(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle(f"{run}: registration of the mean EPI to the T1w")
    pairs = [("method", s.get("method", ""))]
    if "nmi_before" in s:
        pairs += [("normalised mutual information before", f"{s['nmi_before']:.4f}"),
                  ("normalised mutual information after", f"{s['nmi_after']:.4f}")]
        if s["nmi_after"] < s["nmi_before"]:
            ctx.warnings.append(f"{run}: the EPI-T1w registration lowered the mutual information;"
                                " check the registration")
    if "bbr_cost" in s:
        pairs.append(("BBR cost", f"{s['bbr_cost']:.3f}"))
    sec.items(pairs)


def _fmri_registration_qc(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    from bids_app.fmri.qc import RESIDUAL_SHIFT_WARN_MM

    shift = s["residual_shift_mm"]
    xyz = ", ".join(f"{v:+.0f}" for v in s.get("residual_shift_xyz_mm", []))
    sec.items([("residual shift to the best match (mm)", f"{shift:.1f} (x, y, z: {xyz})")])
    if shift >= RESIDUAL_SHIFT_WARN_MM:
        ctx.warnings.append(
            f"{run}: the EPI-T1w registration looks off: the mean EPI matches the T1w best "
            f"{shift:.1f} mm away from where it was registered (limit "
            f"{RESIDUAL_SHIFT_WARN_MM:g} mm); see the registration figure")
    frames = [(label, ctx.copy_figure(s.get("figures", {}).get(key), f"{run}_desc-{desc}_bold"))
              for key, desc, label in (("after", "regafter", "EPI after"),
                                       ("before", "regbefore", "EPI before"),
                                       ("t1w", "regt1w", "T1w"))]
    frames = [(label, rel) for label, rel in frames if rel]
    if len(frames) >= 2:
        sec.flicker(frames, CAPTIONS["registration"])


def _fmri_sampling(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    pairs = [("source", s.get("source", "BOLD sampled at the grid points (nearest voxel)"))]
    if "n_points" in s:
        pairs += [("grid points", s["n_points"]), ("outside the BOLD field of view", s["n_outside"]),
                  ("on voxels without signal", s["n_zero"])]
    sec.items(pairs)
    if s.get("empty_parcels"):
        ctx.warnings.append(f"{run}: parcels without fMRI signal: {', '.join(s['empty_parcels'])}")
    cortex = ctx.cortex() if s.get("coverage") else None
    if cortex is not None:
        lh, rh = parcel_values_on_vertices({k: 100.0 * v for k, v in s["coverage"].items()},
                                           *cortex)
        path, rel = ctx.figure_path(f"{run}_desc-coverage_bold")
        figures.cortex_figure(lh, rh, path, title=f"{run}: grid points with BOLD signal (%)",
                              cmap="RdYlGn", symmetric=False, vmax=100.0)
        partial = sorted(k for k, v in s["coverage"].items() if v < 0.5)
        sec.figure(rel, CAPTIONS["coverage"] + (f" Parcels below 50 %: {', '.join(partial)}."
                                                if partial else " Every parcel is above 50 %."))


def _fmri_blocks(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle(f"{run}: parcel block values")
    sec.items([("blocks", s["n_blocks"])] + [(f"blocks of {c}", n) for c, n in
                                              s["blocks_per_condition"].items()])
    averaged = pd.DataFrame(s["averaged"])
    if not averaged.empty:
        path, rel = ctx.figure_path(f"{run}_desc-blocks_bold")
        figures.block_values_figure(averaged, path, ctx.conditions,
                                    f"{run}: normalised fMRI block values")
        sec.figure(rel, "Block values averaged per condition (normalised per run).")


def _meg_maxwell(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle(f"{run}: Maxwell filtering")
    if s["applied"]:
        origin = s.get("origin_mm")
        pairs = [("method", "tSSS" if s.get("st_duration") else "SSS"),
                 ("tSSS buffer (s)", s.get("st_duration")),
                 ("expansion origin (mm)",
                  ", ".join(f"{v:.1f}" for v in origin) if origin else "n/a"),
                 ("fine calibration", s.get("calibration") or "none"),
                 ("cross-talk", s.get("cross_talk") or "none"),
                 ("noisy channels", ", ".join(s["noisy"]) or "none"),
                 ("flat channels", ", ".join(s["flat"]) or "none")]
    else:
        pairs = [("Maxwell filtering", f"not applied: {s['reason']}")]
    pairs += [("sampling rate (Hz)", s.get("sfreq")), ("duration (s)", s.get("duration_s"))]
    sec.items(pairs)
    if len(s.get("noisy", [])) + len(s.get("flat", [])) > 20:
        ctx.warnings.append(f"{run}: {len(s['noisy']) + len(s['flat'])} bad MEG channels")
    sec.subtitle(f"{run}: bad channels")
    sec.table(bad_channel_table(s))
    sec.text(CAPTIONS["bad_channels"])
    if s.get("psd"):
        path, rel = ctx.figure_path(f"{run}_desc-psd_meg")
        qc_figures.psd_figure(s["psd"], s["psd_freqs"], path,
                              title=f"{run}: mean sensor power spectrum")
        sec.figure(rel, CAPTIONS["psd"])


def _meg_power(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle(f"{run}: epochs and event-related DICS")
    blocks = pd.DataFrame(s["blocks"])
    eog = ", ".join(s.get("eog_channels") or []) or "none (no rejection)"
    sec.items([("EOG channels", eog), ("rejection threshold (µV)", s.get("eog_reject_uv")),
               ("trials kept", f"{int(blocks['n_kept'].sum())} of {int(blocks['n_trials'].sum())}"),
               ("head model", s.get("head_model")), ("grid points", s.get("n_sources"))])
    if not s.get("eog_channels"):
        ctx.warnings.append(f"{run}: no EOG channel, trials were not rejected for eye movements")
    excluded = blocks[~blocks["included"].astype(bool)]
    for row in excluded.itertuples():
        ctx.warnings.append(f"{run}: block {row.block} ({row.condition}) left out, only "
                            f"{row.n_kept} of {row.n_trials} trials kept")
    path, rel = ctx.figure_path(f"{run}_desc-trials_meg")
    labels = [f"{r.block} {r.condition}" for r in blocks.itertuples()]
    qc_figures.trials_figure(labels, blocks["n_kept"].tolist(),
                             (blocks["n_trials"] - blocks["n_kept"]).tolist(),
                             (~blocks["included"].astype(bool)).tolist(), path,
                             title=f"{run}: trials kept and rejected per block")
    sec.figure(rel, CAPTIONS["trials"])
    if s.get("trials") and s.get("eog_trace", {}).get("time_s"):
        path, rel = ctx.figure_path(f"{run}_desc-eog_meg")
        qc_figures.eog_figure(s["eog_trace"], s["trials"], s.get("eog_reject_uv"), path,
                              title=f"{run}: EOG ({eog}) and trial rejection")
        sec.figure(rel, CAPTIONS["eog"])
    cortex = ctx.cortex() if s.get("parcel_maps") else None
    if cortex is not None:
        rows = [(f"{band}, {m['window_start_ms']:.0f}-{m['window_start_ms'] + 200:.0f} ms",
                 *parcel_values_on_vertices(m["values"], *cortex))
                for band, m in s["parcel_maps"].items()]
        path, rel = ctx.figure_path(f"{run}_desc-maps_meg")
        figures.cortex_rows_figure(rows, path, title=f"{run}: DICS power change")
        sec.figure(rel, "DICS power change from the baseline per parcel (mean over blocks), "
                        "per band in the window where the mean change is largest.")
    if s.get("band_means"):
        path, rel = ctx.figure_path(f"{run}_desc-bands_meg")
        figures.band_timecourse_figure(s["band_means"], path,
                                       title=f"{run}: mean source power change")
        sec.figure(rel, "Relative DICS power change from the baseline, averaged over parcels "
                        "and blocks, per band and window.")
    sec.table(pd.DataFrame([{"band": b, "Hz": f"{v['fmin']:g}-{v['fmax']:g}",
                             "wavelets": v["n_wavelets"],
                             "cycles": f"{min(v['n_cycles']):g}-{max(v['n_cycles']):g}",
                             "largest |parcel change|": v["max_abs_relchange"]}
                            for b, v in s["bands"].items()]))


def _anat_parcellation(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle("Parcellation and analysis grids")
    per_hemi = ", ".join(f"{h}: {n}" for h, n in sorted(s["included_per_hemi"].items()))
    sec.items([("atlas", s["atlas"]), ("parcels (all / included per hemisphere)",
                                       f"{s['n_parcels']} / {per_hemi}"),
               ("MEG grid", f"{s['meg_grid']} ({s['n_meg_points']} points)"),
               ("fMRI grid", s["fmri_grid"])])
    ctx.warnings.extend(s.get("warnings") or [])
    ctx.atlas = s["atlas"]
    cortex = ctx.cortex()
    if cortex is not None:
        labels, table = cortex
        colour = {name: float(i % 20) for i, name in enumerate(table["name"])}
        included = set(table["name"][table["included"].astype(bool)])
        lh, rh = parcel_values_on_vertices(
            {k: v for k, v in colour.items() if k in included}, labels, table)
        path, rel = ctx.figure_path(f"atlas-{s['atlas']}_dseg")
        figures.cortex_figure(lh, rh, path, title=f"{s['atlas']} parcels (fsaverage5)",
                              cmap="tab20", categorical=True)
        sec.figure(rel, "Parcels used in the analysis on the inflated cortex (excluded "
                        "regions not coloured).")


def _anat_coregistration(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle("MEG-MRI coregistration")
    sec.items([("method", s.get("method", ""))])
    if s.get("template_fit"):
        sec.text("The head-MRI transform came from a template fit (template fiducials fitted to "
                 "the digitised ones), not from this participant's MRI: sources are placed "
                 "approximately. Provide the subject's FreeSurfer reconstruction "
                 "(--fs-subjects-dir) and a -trans.fif, or anatomical landmarks in the T1w "
                 "sidecar.", alert=True)
        ctx.warnings.append("MEG-MRI coregistration: the head-MRI transform is a template fit, "
                            "not the participant's own")


def _anat_qc(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    from bids_app.meg.coreg_qc import RESIDUAL_TRANSLATION_WARN_MM

    pairs = [("digitised head points", s.get("n_head_points", 0))]
    if "head_point_median_mm" in s:
        shift = s["residual_translation_mm"]
        pairs += [("head point to scalp, median / max (mm)",
                   f"{s['head_point_median_mm']:.1f} / {s['head_point_max_mm']:.1f}"),
                  ("residual translation onto the scalp (mm)", f"{shift:.1f}")]
        if shift >= RESIDUAL_TRANSLATION_WARN_MM:
            ctx.warnings.append(
                f"MEG-MRI coregistration looks off: the head points fit the scalp best after a "
                f"further shift of {shift:.1f} mm (limit {RESIDUAL_TRANSLATION_WARN_MM:g} mm; "
                f"median distance {s['head_point_median_mm']:.1f} mm); see the coregistration "
                "figure")
    elif s.get("n_head_points"):
        pairs.append(("head point to scalp", "not measured: no scalp surface"))
    sec.items(pairs)
    rel = ctx.copy_figure(s.get("figures", {}).get("coregistration"), "desc-coreg_meg")
    if rel:
        sec.figure(rel, CAPTIONS["coregistration"])
    rel = ctx.copy_figure(s.get("figures", {}).get("headmodel"), "desc-bem_meg")
    if rel:
        sec.subtitle("Head model over the MRI")
        sec.figure(rel, CAPTIONS["headmodel"])


def bad_channel_table(s: dict) -> pd.DataFrame:
    """One row per bad MEG channel of a Maxwell summary, with why it is bad."""
    reasons: dict[str, list[str]] = {}
    for key, why in (("marked_bad", "marked bad in channels.tsv"),
                     ("noisy", "noisy (MNE find_bad_channels_maxwell)"),
                     ("flat", "flat (MNE find_bad_channels_maxwell)")):
        for name in s.get(key) or []:
            reasons.setdefault(name, []).append(why)
    return pd.DataFrame([{"channel": k, "why": "; ".join(v)} for k, v in sorted(reasons.items())],
                        columns=["channel", "why"])


def _anat_items(title: str) -> Callable:
    def render(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
        sec.subtitle(title)
        sec.items((k.replace("_", " "), v) for k, v in s.items()
                  if k != "kind" and not isinstance(v, (dict, list)))
    return render


def _generic(s: dict, run: str, ctx: ReportContext, sec: Section) -> None:
    sec.subtitle(f"{run}: {s.get('kind', 'summary')}")
    sec.items((k, v) for k, v in s.items() if k != "kind" and not isinstance(v, (dict, list)))


RENDERERS: dict[str, tuple[str, Callable]] = {
    "fmri_motion": ("fMRI", _fmri_motion),
    "fmri_registration": ("fMRI", _fmri_registration),
    "fmri_sampling": ("fMRI", _fmri_sampling),
    "fmri_blocks": ("fMRI", _fmri_blocks),
    "meg_maxwell": ("MEG", _meg_maxwell),
    "meg_power": ("MEG", _meg_power),
    "anat_parcellation": ("Anatomy and parcels", _anat_parcellation),
    "anat_headmodel": ("Anatomy and parcels", _anat_items("MEG head model")),
    "anat_coregistration": ("Anatomy and parcels", _anat_coregistration),
    "anat_qc": ("Anatomy and parcels", _anat_qc),
    "fmri_registration_qc": ("fMRI", _fmri_registration_qc),
    "anat_template": ("Anatomy and parcels", _anat_items("Template anatomy")),
}
#: Section order of the page.
SECTION_ORDER = ("Run plan", "Anatomy and parcels", "fMRI", "MEG", "Methods", "About")


def register_renderer(kind: str, section: str, function: Callable) -> None:
    """Add the renderer of a summary kind (used by the MEG and anatomy stages)."""
    RENDERERS[kind] = (section, function)


def build_participant_report(
    *,
    output_dir: Path,
    subject: str,
    plan_text: str,
    anatomy_mode: str,
    warnings: Sequence[str],
    summaries: Sequence[tuple[str, dict]],
    conditions: Sequence[str],
    bands: Sequence[str],
    methods_markdown: str | None = None,
) -> Path:
    """Write ``<output_dir>/sub-<subject>.html`` and its figures.

    Parameters
    ----------
    plan_text : str
        :meth:`bids_app.io.bids.SubjectPlan.describe`.
    anatomy_mode : str
        ``freesurfer``, ``recon-all`` or ``template``.
    warnings : sequence of str
        Warnings from discovery and workflow building (shown at the top).
    summaries : sequence of (run label, summary dict)
        Stage summaries; ``run label`` is ``"anatomy"`` for subject-level ones.
    """
    from bids_app.reports.html import markdown_to_html

    ctx = ReportContext(output_dir, subject, conditions, bands)
    ctx.warnings.extend(warnings)
    if anatomy_mode == "template":
        ctx.warnings.insert(0, "Template anatomy (fsaverage) used instead of the subject's own: "
                               "parcels and sources are approximate.")
    sections = {name: Section(name) for name in SECTION_ORDER}
    sections["Run plan"].preformatted(plan_text)
    sections["Run plan"].items([("anatomy", anatomy_mode)])
    for run, summary in summaries:
        section, render = RENDERERS.get(summary.get("kind", ""), ("About", _generic))
        try:
            render(summary, run, ctx, sections[section])
        except (KeyError, ValueError, OSError) as err:  # a broken summary must not hide others
            LOGGER.warning("Report: could not render %s of %s: %s", summary.get("kind"), run, err)
            ctx.warnings.append(f"{run}: the {summary.get('kind')} summary could not be shown")
    if methods_markdown:
        sections["Methods"].raw(markdown_to_html(methods_markdown))
    sections["About"].items([("megfmri-fusion", __version__), *_versions()])
    used = [s for s in sections.values() if s.parts]
    page = render_page(f"sub-{subject}", f"megfmri-fusion {__version__} participant report",
                       used, ctx.warnings)
    from bids_app.io.derivatives import atomic_write_text

    atomic_write_text(report_warnings_path(output_dir, subject), json.dumps(
        {"subject": subject, "sections": {s.title: s.anchor for s in used},
         "warnings": ctx.warnings}, indent=2))
    return write_page(Path(output_dir) / f"sub-{subject}.html", page)


def _versions() -> list[tuple[str, str]]:
    import importlib.metadata as md

    out = []
    for name in ("mne", "mne-bids", "nipype", "pybids", "nibabel", "nilearn", "numpy", "scipy",
                 "antspyx"):
        try:
            out.append((name, md.version(name)))
        except md.PackageNotFoundError:
            continue
    return out


def report_inputs_path(output_dir: Path, subject: str) -> Path:
    """Where a participant report's inputs are kept for ``--reports-only``."""
    return Path(output_dir) / "logs" / "reports" / f"sub-{subject}.json"


def report_warnings_path(output_dir: Path, subject: str) -> Path:
    """Where a participant report's warnings and section anchors are kept for the group
    report (one line per participant, with links and the warnings repeated)."""
    return Path(output_dir) / "logs" / "reports" / f"sub-{subject}_warnings.json"


def save_report_inputs(output_dir: Path, subject: str, **inputs) -> Path:
    """Keep everything :func:`build_participant_report` needs (summaries with their motion tables
    embedded, so that the work folder may be deleted) in :func:`report_inputs_path`."""
    from bids_app.io.derivatives import atomic_write_text

    summaries = []
    for run, summary in inputs.pop("summaries"):
        motion = _motion_table(summary)
        if motion is not None and "motion" not in summary:
            summary = {**summary, "motion": motion.to_dict(orient="list")}
        summaries.append([run, summary])
    payload = {"subject": subject, **inputs, "summaries": summaries}
    return atomic_write_text(report_inputs_path(output_dir, subject),
                             json.dumps(payload, default=str))


def rebuild_participant_report(output_dir: Path, subject: str) -> Path:
    """Write ``sub-<subject>.html`` again from the saved inputs and ``logs/CITATION.md``."""
    from bids_app.errors import BadDataError, MissingInputError

    path = report_inputs_path(output_dir, subject)
    if not path.is_file():
        raise MissingInputError(
            f"No saved report inputs for sub-{subject} ({path}): run the participant level for "
            "this subject first (without --reports-only).")
    try:
        inputs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BadDataError(
            f"The saved report inputs {path} cannot be read ({err}): run the participant level "
            f"for sub-{subject} again (without --reports-only) to write them anew.") from None
    inputs.pop("subject")
    inputs["summaries"] = [tuple(pair) for pair in inputs["summaries"]]
    methods = Path(output_dir) / "logs" / "CITATION.md"
    return build_participant_report(
        output_dir=Path(output_dir), subject=subject, **inputs,
        methods_markdown=methods.read_text() if methods.is_file() else None)


def load_summaries(paths_by_run: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, dict]]:
    """Read the JSON summaries of each run (missing files are skipped with a warning)."""
    out = []
    for run, paths in paths_by_run:
        for path in paths or []:
            try:
                out.append((run, json.loads(Path(path).read_text())))
            except (OSError, json.JSONDecodeError) as err:
                LOGGER.warning("Report: cannot read %s: %s", path, err)
    return out
