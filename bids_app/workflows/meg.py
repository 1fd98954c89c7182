"""The MEG branch of one run: raw -> tSSS -> epochs -> DICS parcel power (DESIGN 4.3)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_app.interfaces.derivatives import DerivativesSink
from bids_app.interfaces.meg import BandPower, ForwardModel, MaxwellFilter
from bids_app.design import DesignOptions
from bids_app.io.bids import RunPair, SubjectPlan
from bids_app.meg.options import DICSOptions, EpochOptions, MaxwellOptions
from bids_app.options import as_dict
from bids_app.workflows.resources import estimate_mem_gb, meg_data_gb

#: Fields every anatomy workflow provides to the MEG branch.
ANAT_FIELDS = ("src", "bem", "trans", "parcellation", "atlas_label")


def init_meg_run_wf(
    *,
    pair: RunPair,
    subject: SubjectPlan,
    output_dir: Path,
    design: DesignOptions,
    maxwell: MaxwellOptions,
    epochs: EpochOptions,
    dics: DICSOptions,
    cache_dir: Path,
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
    design : DesignOptions
        Condition names and block detection (:func:`bids_app.blocks.assign_blocks`).
    maxwell : MaxwellOptions
        tSSS (:func:`bids_app.meg.tsss`).
    epochs : EpochOptions
        Epochs and rejection (:func:`bids_app.meg.make_epochs`).
    dics : DICSOptions
        Frequency bands, windows, baseline, wavelets, DICS filters and the baseline of each
        block (:func:`bids_app.meg.event_related_power`).
    cache_dir : Path
        Where forward models are cached by content (shared by runs and subjects).
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
    starts = dics.window_starts_ms
    workflow.__desc__ = _DESC.format(
        tsss=(_TSSS_DESC.format(st=maxwell.st_duration_s, corr=maxwell.st_correlation)
              if maxwell.maxfilter else ""),
        tmin=int(round(epochs.tmin_s * 1000)), tmax=int(round(epochs.tmax_s * 1000)),
        eog=epochs.eog_reject_uv,
        sensors="planar gradiometers" if epochs.ch_type == "grad" else "magnetometers",
        bands=", ".join(f"{k} {v[0]:g}-{v[1]:g} Hz" for k, v in dics.bands.items()),
        n_windows=len(starts), length=dics.window_length_ms, first=starts[0], last=starts[-1],
        cycles=dics.n_cycles, b0=dics.baseline_ms[0], b1=dics.baseline_ms[1], reg=dics.dics_reg,
        ori=_ORIENTATION[dics.pick_ori], baseline=_BASELINE[dics.baseline_scope],
    )
    inputnode = pe.Node(niu.IdentityInterface(fields=list(ANAT_FIELDS)), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["power", "out_file", "report_data"]),
                         name="outputnode")
    data_gb = meg_data_gb(pair.meg)
    maxwell_filter = pe.Node(
        MaxwellFilter(in_file=str(pair.meg), options=as_dict(maxwell),
                      num_threads=omp_nthreads),
        name="maxwell_filter", n_procs=omp_nthreads,
        mem_gb=estimate_mem_gb("maxwell_filter", data_gb))
    if subject.meg_calibration:
        maxwell_filter.inputs.calibration = str(subject.meg_calibration)
    if subject.meg_crosstalk:
        maxwell_filter.inputs.cross_talk = str(subject.meg_crosstalk)
    forward = pe.Node(ForwardModel(cache_dir=str(cache_dir), num_threads=omp_nthreads),
                      name="forward_model", n_procs=omp_nthreads, mem_gb=2.0)
    power = pe.Node(
        BandPower(events=str(pair.meg_events), design=as_dict(design),
                  epochs=as_dict(epochs), dics=as_dict(dics), num_threads=omp_nthreads),
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
        (maxwell_filter, forward, [("out_file", "in_file")]),
        (maxwell_filter, power, [("out_file", "in_file")]),
        (forward, power, [("forward", "forward"), ("is_sphere", "is_sphere")]),
        (inputnode, power, [("parcellation", "parcellation")]),
        (inputnode, sink, [("atlas_label", "atlas")]),
        (power, sink, [("out_file", "in_file")]),
        (maxwell_filter, settings, [("settings", "in1")]),
        (power, settings, [("settings", "in2")]),
        (settings, sink, [("out", "settings")]),
        (maxwell_filter, reports, [("report", "in1")]),
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
