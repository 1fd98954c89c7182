"""Nipype interfaces of the MEG stage: load, call :mod:`bids_app.meg`, save.

Files exchanged between nodes: the Maxwell-filtered recording (``*_tsss_raw.fif``), the forward
model (``*-fwd.fif``, cached by content in the work folder's ``headmodels``), the run's power
table (TSV) and summaries for the report (JSON). Bad-data errors of the pure code are re-raised
with the name of the file they concern.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_app.interfaces.errors import about
from bids_app.interfaces.threads import limit_threads, num_threads_trait
from bids_app.io.derivatives import raw_uri, write_json, write_tsv
from bids_app.options import as_dict, from_dict

LOGGER = logging.getLogger("nipype.interface")


def _optional(value):
    return value if isdefined(value) and value else None


def read_meg_raw(path: str):
    """Read a BIDS MEG recording with MNE-BIDS (bad channels from ``channels.tsv``).

    Falls back to :func:`mne.io.read_raw_fif` for files outside a BIDS tree (the Maxwell-filtered
    recordings of the work folder).
    """
    import mne

    try:
        import mne_bids

        bids_path = mne_bids.get_bids_path_from_fname(path)
        return mne_bids.read_raw_bids(bids_path, extra_params={"preload": True},
                                      verbose="error")
    except Exception as err:  # noqa: BLE001 - not a BIDS path: plain reader
        LOGGER.debug("read_raw_bids failed for %s (%s); reading the file directly", path, err)
        return mne.io.read_raw_fif(path, preload=True, allow_maxshield="yes", verbose="error")


# --------------------------------------------------------------------------------------------------
class _MaxwellInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="raw MEG recording (BIDS)")
    calibration = traits.Str(desc="fine-calibration file (.dat)")
    cross_talk = traits.Str(desc="cross-talk file (.fif)")
    options = traits.Dict(mandatory=True, desc="MaxwellOptions (bids_app.options.as_dict)")
    num_threads = num_threads_trait()


class _MaxwellOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="Maxwell-filtered recording (FIF)")
    report = File(exists=True, desc="summary for the report (JSON)")
    settings = traits.Dict(desc="what was done, for the derivative's sidecar")


class MaxwellFilter(SimpleInterface):
    """tSSS of one recording (skipped for SSS-processed data or when disabled)."""

    input_spec = _MaxwellInputSpec
    output_spec = _MaxwellOutputSpec

    def _run_interface(self, runtime):
        from bids_app.meg.maxwell import MaxwellResult, tsss
        from bids_app.meg.options import MaxwellOptions
        from bids_app.meg.qc import sensor_spectra

        options = from_dict(MaxwellOptions, self.inputs.options)
        path = self.inputs.in_file
        raw = read_meg_raw(path)
        marked_bad = list(raw.info["bads"])
        freqs, before = sensor_spectra(raw)
        with about(path), limit_threads(self.inputs.num_threads):
            if options.maxfilter:
                result = tsss(raw, options, calibration=_optional(self.inputs.calibration),
                              cross_talk=_optional(self.inputs.cross_talk))
            else:
                result = MaxwellResult(raw=raw, applied=False, reason="disabled ([meg] maxfilter)")
        cwd = Path(runtime.cwd)
        out = cwd / (Path(path).name.split(".")[0] + "_tsss_raw.fif")
        result.raw.save(out, overwrite=True, verbose="error")
        summary = result.summary()
        summary.update(kind="meg_maxwell", source=str(path),
                       calibration=_optional(self.inputs.calibration),
                       cross_talk=_optional(self.inputs.cross_talk),
                       st_duration=options.st_duration_s,
                       sfreq=float(raw.info["sfreq"]), duration_s=float(raw.times[-1]),
                       marked_bad=marked_bad, psd_freqs=np.round(freqs, 3).tolist(),
                       psd={ch: {"before": np.round(before[ch], 4).tolist()} for ch in before})
        if result.applied:
            _, after = sensor_spectra(result.raw)
            for ch in summary["psd"]:
                if ch in after:
                    summary["psd"][ch]["after"] = np.round(after[ch], 4).tolist()
        write_json(cwd / "maxwell.json", summary)
        self._results.update(out_file=str(out), report=str(cwd / "maxwell.json"),
                             settings=self._settings(options, result, marked_bad))
        return runtime

    def _settings(self, options, result, marked_bad) -> dict:
        """The sidecar's record of this step ([meg] option names; DESIGN 4.3 step 1)."""
        settings = {"maxfilter": options.maxfilter, "maxfilter_applied": result.applied}
        if not result.applied:
            return {**settings, "maxfilter_note": result.reason}
        calibration, cross_talk = (_optional(self.inputs.calibration),
                                   _optional(self.inputs.cross_talk))
        return {
            **settings,
            **as_dict(options),
            "origin_mm": (None if result.origin_mm is None
                          else [round(float(v), 2) for v in result.origin_mm]),
            "bad_channels": sorted(set(marked_bad) | set(result.noisy) | set(result.flat)),
            "calibration": raw_uri(calibration) if calibration else None,
            "cross_talk": raw_uri(cross_talk) if cross_talk else None,
        }


# --------------------------------------------------------------------------------------------------
class _ForwardInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="recording whose sensors and head position "
                   "are modelled")
    src = File(exists=True, mandatory=True, desc="analysis grid (source space, FIF)")
    bem = traits.Str(mandatory=True, desc="BEM solution (FIF) or 'sphere'")
    trans = File(exists=True, mandatory=True, desc="head -> MRI transform (FIF)")
    cache_dir = traits.Str(mandatory=True, desc="folder of content-cached forward models")
    num_threads = num_threads_trait()


class _ForwardOutputSpec(TraitedSpec):
    forward = File(exists=True, desc="forward model (FIF)")
    is_sphere = traits.Bool(desc="spherical head model")


class ForwardModel(SimpleInterface):
    """Forward model of one run, computed once per content (sensors, head position, anatomy)."""

    input_spec = _ForwardInputSpec
    output_spec = _ForwardOutputSpec

    def _run_interface(self, runtime):
        import mne

        from bids_app.meg.headmodel import content_key, forward_model, sphere_model

        info = mne.io.read_info(self.inputs.in_file, verbose="error")
        src = mne.read_source_spaces(self.inputs.src, verbose="error")
        trans = mne.read_trans(self.inputs.trans, verbose="error")
        is_sphere = self.inputs.bem == "sphere"
        bem = sphere_model(info) if is_sphere else mne.read_bem_solution(self.inputs.bem,
                                                                           verbose="error")
        cache = Path(self.inputs.cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"forward-{content_key(info, trans, src, bem)}-fwd.fif"
        if path.is_file():
            LOGGER.info("Forward model: reusing %s", path.name)
        else:
            with limit_threads(self.inputs.num_threads):
                fwd = forward_model(info, trans, src, bem, n_jobs=self.inputs.num_threads)
            partial = path.with_name(f".{path.stem}.{os.getpid()}-fwd.fif")
            mne.write_forward_solution(partial, fwd, overwrite=True, verbose="error")
            os.replace(partial, path)  # atomic: concurrent runs never read half a file
        self._results.update(forward=str(path), is_sphere=is_sphere)
        return runtime


# --------------------------------------------------------------------------------------------------
class _PowerInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="Maxwell-filtered recording")
    events = File(exists=True, mandatory=True, desc="BIDS events.tsv of the MEG run")
    forward = File(exists=True, mandatory=True, desc="forward model")
    is_sphere = traits.Bool(False, usedefault=True, desc="spherical head model")
    parcellation = File(exists=True, mandatory=True, desc="parcellation.npz")
    design = traits.Dict(mandatory=True, desc="DesignOptions (bids_app.options.as_dict)")
    epochs = traits.Dict(mandatory=True, desc="EpochOptions (bids_app.options.as_dict)")
    dics = traits.Dict(mandatory=True, desc="DICSOptions (bids_app.options.as_dict)")
    num_threads = num_threads_trait()


class _PowerOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="power table (TSV)")
    report = File(exists=True, desc="summary for the report (JSON)")
    settings = traits.Dict(desc="what was done, for the derivative's sidecar")


class BandPower(SimpleInterface):
    """Epochs, EOG rejection and event-related DICS power of one run in parcels."""

    input_spec = _PowerInputSpec
    output_spec = _PowerOutputSpec

    def _run_interface(self, runtime):
        import mne

        from bids_app.blocks import DesignOptions, assign_blocks
        from bids_app.io.parcellation_npz import read_parcellation
        from bids_app.io.checks import read_events
        from bids_app.meg import (band_time_course, event_related_power, make_epochs,
                                  peak_window_maps)
        from bids_app.meg.options import DICSOptions, EpochOptions
        from bids_app.meg.qc import eog_envelope, eog_peak_to_peak

        design = from_dict(DesignOptions, self.inputs.design)
        epoch_options = from_dict(EpochOptions, self.inputs.epochs)
        dics = from_dict(DICSOptions, self.inputs.dics)
        raw = mne.io.read_raw_fif(self.inputs.in_file, preload=True, verbose="error")
        with about(self.inputs.events):
            trials = assign_blocks(read_events(Path(self.inputs.events)), design)
        forward = mne.read_forward_solution(self.inputs.forward, verbose="error")
        parcels = read_parcellation(self.inputs.parcellation)
        with about(self.inputs.in_file), limit_threads(self.inputs.num_threads):
            epochs = make_epochs(raw, trials, epoch_options)
        # the trials kept per block come from the events and the EOG: the run's events file
        with about(self.inputs.events), limit_threads(self.inputs.num_threads):
            result = event_related_power(
                epochs.epochs, forward, epochs.counts,
                parcel_of_source=source_parcels(forward, parcels),
                parcel_names=parcels["names"], options=dics,
                reduce_rank=self.inputs.is_sphere, n_jobs=self.inputs.num_threads)
        cwd = Path(runtime.cwd)
        write_tsv(result.table, cwd / "power.tsv")
        write_json(cwd / "power.json", {
            "kind": "meg_power",
            "source": str(self.inputs.in_file),
            "eog_channels": epochs.eog_channels,
            "eog_reject_uv": epoch_options.eog_reject_uv,
            "eog_trace": eog_envelope(raw),
            "trials": {"onset_s": np.round(trials["onset"].to_numpy(float), 3).tolist(),
                       "ptp_uv": np.round(eog_peak_to_peak(
                           raw, trials["onset"].to_numpy(float), tmin=epoch_options.tmin_s,
                           tmax=epoch_options.tmax_s), 2).tolist(),
                       "kept": [bool(k) for k in epochs.kept]},
            "blocks": result.blocks.to_dict(orient="records"),
            "bands": result.band_summary,
            "n_sources": int(forward["nsource"]),
            "head_model": "sphere" if self.inputs.is_sphere else "BEM",
            "band_means": band_time_course(result.table),
            "parcel_maps": peak_window_maps(result.table),
        })
        self._results.update(out_file=str(cwd / "power.tsv"), report=str(cwd / "power.json"),
                             settings=self._settings(epoch_options, dics, epochs, result,
                                                     forward))
        return runtime

    def _settings(self, epoch_options, dics, epochs, result, forward) -> dict:
        """The sidecar's record of this step: the options as used ([meg] option names) and what
        they led to (DESIGN 4.3 steps 2-6)."""
        blocks = result.blocks
        return {
            "sampling_frequency_hz": float(epochs.epochs.info["sfreq"]),
            **as_dict(epoch_options),
            **as_dict(dics),
            "eog_channels": list(epochs.eog_channels),
            "n_trials": int(blocks["n_trials"].sum()),
            "n_trials_rejected": int(blocks["n_rejected"].sum()),
            "blocks_left_out": [int(b) for b in blocks.loc[~blocks["included"], "block"]],
            "head_model": "sphere" if self.inputs.is_sphere else "BEM",
            "n_sources": int(forward["nsource"]),
        }


def source_parcels(forward, parcels: dict) -> np.ndarray:
    """Parcel index of each source of ``forward`` (by vertex number), -1 outside."""
    out = []
    offset = 0
    for key, s in zip(("meg_vertices_lh", "meg_vertices_rh"), forward["src"]):
        vertices = np.asarray(parcels[key], int)
        parcel = np.asarray(parcels["meg_parcel"][offset:offset + len(vertices)], int)
        offset += len(vertices)
        lookup = dict(zip(vertices.tolist(), parcel.tolist()))
        out.append(np.array([lookup.get(int(v), -1) for v in s["vertno"]], int))
    return np.concatenate(out)
