"""The MEG branch of one run: raw -> tSSS -> epochs -> DICS parcel power (DESIGN 4.3)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_app.interfaces.derivatives import DerivativesSink
from bids_app.interfaces.meg import BandPower, ForwardModel, MaxwellFilter
from bids_app.io.bids import RunPair, SubjectPlan
from bids_app.workflows.resources import estimate_mem_gb, meg_data_gb

#: Fields every anatomy workflow provides to the MEG branch.
ANAT_FIELDS = ("src", "bem", "trans", "parcellation", "atlas_label")


def init_meg_run_wf(
    *,
    pair: RunPair,
    subject: SubjectPlan,
    output_dir: Path,
    conditions: list[str],
    bands: dict[str, tuple[float, float]],
    window_starts_ms: list[float],
    cache_dir: Path,
    block_gap_s: float = 8.0,
    maxfilter: bool = True,
    st_duration_s: float | None = 10.0,
    st_correlation: float = 0.98,
    origin: str = "auto",
    find_bad_channels: bool = True,
    tmin_s: float = -0.2,
    tmax_s: float = 1.0,
    padding_s: float = 0.5,
    eog_reject_uv: float | None = 150.0,
    missing_eog: str = "warn",
    min_trials_per_block: int = 5,
    ch_type: str = "grad",
    freq_step_hz: float = 1.0,
    n_cycles: float = 7.0,
    window_length_ms: float = 200.0,
    baseline_ms: tuple[float, float] = (-200.0, 0.0),
    dics_reg: float = 0.2,
    pick_ori: str = "normal",
    baseline_scope: str = "block",
    omp_nthreads: int = 1,
    name: str = "meg_run_wf",
) -> pe.Workflow:
    """Parcel DICS power of one MEG run in bands and windows.

    Parameters
    ----------
    pair : RunPair
        The run (``meg`` recording and ``meg_events``).
    subject : SubjectPlan
        The subject (its ``meg_calibration`` and ``meg_crosstalk`` files).
    output_dir : Path
        Derivatives root; the run's ``desc-dics_meg.tsv.gz`` is written there.
    conditions, block_gap_s
        Condition names and block detection (:func:`bids_app.blocks.assign_blocks`).
    bands, window_starts_ms, window_length_ms, baseline_ms, freq_step_hz, n_cycles
        Frequency bands (Hz), windows and baseline (ms), wavelets
        (:func:`bids_app.meg.event_related_power`).
    cache_dir : Path
        Where forward models are cached by content (shared by runs and subjects).
    maxfilter, st_duration_s, st_correlation, origin, find_bad_channels
        tSSS (:func:`bids_app.meg.tsss`).
    tmin_s, tmax_s, padding_s, eog_reject_uv, missing_eog, min_trials_per_block, ch_type
        Epochs and rejection (:func:`bids_app.meg.make_epochs`).
    dics_reg, pick_ori, baseline_scope
        DICS filters and the baseline of each block.
    omp_nthreads : int
        Threads of the forward model and the FFTs.

    Inputs
    ------
    src, bem, trans, parcellation, atlas_label
        From the anatomy workflow.

    Outputs
    -------
    power
        Power table (TSV, in the work folder).
    out_file
        The derivative written to ``output_dir``.
    report_data
        List of JSON summaries for the participant report.
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = _DESC.format(
        tsss=(_TSSS_DESC.format(st=st_duration_s, corr=st_correlation) if maxfilter else ""),
        tmin=int(round(tmin_s * 1000)), tmax=int(round(tmax_s * 1000)), eog=eog_reject_uv,
        sensors="planar gradiometers" if ch_type == "grad" else "magnetometers",
        bands=", ".join(f"{k} {v[0]:g}-{v[1]:g} Hz" for k, v in bands.items()),
        n_windows=len(window_starts_ms), length=window_length_ms,
        first=window_starts_ms[0], last=window_starts_ms[-1], cycles=n_cycles,
        b0=baseline_ms[0], b1=baseline_ms[1], reg=dics_reg, ori=_ORIENTATION[pick_ori],
        baseline=_BASELINE[baseline_scope],
    )
    inputnode = pe.Node(niu.IdentityInterface(fields=list(ANAT_FIELDS)), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["power", "out_file", "report_data"]),
                         name="outputnode")
    data_gb = meg_data_gb(pair.meg)
    maxwell = pe.Node(
        MaxwellFilter(in_file=str(pair.meg), apply=maxfilter, st_duration=st_duration_s,
                      st_correlation=st_correlation, origin=origin,
                      find_bad_channels=find_bad_channels, num_threads=omp_nthreads),
        name="maxwell_filter", n_procs=omp_nthreads,
        mem_gb=estimate_mem_gb("maxwell_filter", data_gb))
    if subject.meg_calibration:
        maxwell.inputs.calibration = str(subject.meg_calibration)
    if subject.meg_crosstalk:
        maxwell.inputs.cross_talk = str(subject.meg_crosstalk)
    forward = pe.Node(ForwardModel(cache_dir=str(cache_dir), n_jobs=omp_nthreads),
                      name="forward_model", n_procs=omp_nthreads, mem_gb=2.0)
    power = pe.Node(
        BandPower(events=str(pair.meg_events), conditions=list(conditions),
                  block_gap_s=block_gap_s, tmin_s=tmin_s, tmax_s=tmax_s, padding_s=padding_s,
                  eog_reject_uv=eog_reject_uv, missing_eog=missing_eog,
                  min_trials_per_block=min_trials_per_block, ch_type=ch_type,
                  bands={k: list(v) for k, v in bands.items()}, freq_step_hz=freq_step_hz,
                  n_cycles=n_cycles, window_starts_ms=list(window_starts_ms),
                  window_length_ms=window_length_ms, baseline_ms=tuple(baseline_ms),
                  dics_reg=dics_reg, pick_ori=pick_ori, baseline_scope=baseline_scope,
                  n_jobs=omp_nthreads),
        name="band_power", n_procs=omp_nthreads, mem_gb=estimate_mem_gb("band_power", data_gb))
    sink = pe.Node(
        DerivativesSink(base_directory=str(output_dir), source_file=str(pair.meg),
                        datatype="meg", suffix="meg", desc="dics", compress=True,
                        description="Event-related DICS power per block, band, window and "
                        "parcel: relative change from the block's baseline ('relchange') and "
                        "its per-run normalisation ('normalized'; DESIGN 4.3)."),
        name="ds_power", run_without_submitting=True)
    reports = pe.Node(niu.Merge(2), name="merge_reports", run_without_submitting=True)
    settings = pe.Node(niu.Merge(2), name="merge_settings", run_without_submitting=True)
    workflow.connect([
        (inputnode, forward, [("src", "src"), ("bem", "bem"), ("trans", "trans")]),
        (maxwell, forward, [("out_file", "in_file")]),
        (maxwell, power, [("out_file", "in_file")]),
        (forward, power, [("forward", "forward"), ("is_sphere", "is_sphere")]),
        (inputnode, power, [("parcellation", "parcellation")]),
        (inputnode, sink, [("atlas_label", "atlas")]),
        (power, sink, [("out_file", "in_file")]),
        (maxwell, settings, [("settings", "in1")]),
        (power, settings, [("settings", "in2")]),
        (settings, sink, [("out", "settings")]),
        (maxwell, reports, [("report", "in1")]),
        (power, reports, [("report", "in2")]),
        (power, outputnode, [("out_file", "power")]),
        (sink, outputnode, [("out_file", "out_file")]),
        (reports, outputnode, [("out", "report_data")]),
    ])
    return workflow


_TSSS_DESC = (
    "Each recording was Maxwell-filtered with temporal extension (tSSS; buffer {st:g} s, "
    "correlation limit {corr:g}) with MNE-Python's implementation [@mne; @tsss], after automatic "
    "detection of noisy and flat channels, using the system's fine-calibration and cross-talk "
    "files when available; recordings already SSS-processed were left unchanged. "
)
_ORIENTATION = {"normal": "oriented along the cortical normal of each grid point",
                "max-power": "maximum-power orientation"}
_BASELINE = {"block": "the block's baseline",
             "run": "the mean baseline of the run's blocks"}
_DESC = (
    "{tsss}Epochs from {tmin} to {tmax} ms around each picture were cut and trials in which an "
    "EOG channel exceeded {eog} µV peak-to-peak were rejected. Source power was estimated on "
    "the {sensors} with an event-related DICS beamformer [@dics; @mne] on the ico-4 grid in the "
    "bands {bands}: cross-spectral densities from Morlet wavelets (up to {cycles:g} cycles, 1-Hz "
    "spacing, averaged within each band) were computed for each block of pictures in "
    "{n_windows} windows of {length:g} ms starting from {first:g} to {last:g} ms and in the "
    "baseline ({b0:g} to {b1:g} ms); one filter per run and band (regularisation {reg:g}, "
    "unit-noise-gain, {ori}) was computed from the cross-spectral density pooled over all "
    "trials and windows. The relative power change from {baseline} was averaged over the grid points of each parcel and normalised per run and band (mean over "
    "blocks removed per window, divided by the standard deviation over blocks and windows)."
)
