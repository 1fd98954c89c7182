"""The fMRI branch: graph building for each route, FreeSurfer command lines, interfaces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bids_app.blocks import DesignOptions
from bids_app.fmri.options import BlockOptions, RegistrationOptions
from bids_app.io.bids import RunPair
from bids_app.io.parcellation_npz import write_parcellation
from bids_app.options import as_dict
from bids_app.workflows.fmri import init_fmri_run_wf

CONDITIONS = ["object_object", "action_action", "object_action"]


def _pair(tmp_path, fmriprep=False):
    files = {}
    for name in ("meg.fif", "meg_events.tsv", "bold.nii.gz", "bold_events.tsv", "L.func.gii",
                 "R.func.gii"):
        files[name] = tmp_path / f"sub-01_task-naming_run-01_{name}"
        files[name].write_text("")
    return RunPair(subject="01", task="naming", run="01", meg=files["meg.fif"],
                   meg_events=files["meg_events.tsv"], bold=files["bold.nii.gz"],
                   bold_events=files["bold_events.tsv"], repetition_time=3.0,
                   fmriprep_bold=(files["L.func.gii"], files["R.func.gii"]) if fmriprep else None)


def _nodes(wf):
    return {n.name for n in wf._graph.nodes()}



def _fmri_wf(*, design=None, blocks=None, registration=None, **kwargs):
    """The fMRI branch with the default options objects, or those given."""
    return init_fmri_run_wf(design=design or DesignOptions(CONDITIONS),
                            blocks=blocks or BlockOptions(),
                            registration=registration or RegistrationOptions(), **kwargs)

@pytest.mark.parametrize("route, expected, absent", [
    ("ants", {"realign", "coregister", "sample_parcels", "block_values", "ds_blocks"},
     {"bbregister", "vol2surf", "fsaverage_parcels"}),
    ("freesurfer", {"realign", "bbregister", "register_dat_to_affine", "vol2surf",
                    "surface_parcels", "block_values"}, {"coregister", "sample_parcels"}),
    ("fmriprep", {"fsaverage_parcels", "block_values", "ds_blocks"},
     {"realign", "coregister", "bbregister"}),
])
def test_routes_build(tmp_path, route, expected, absent):
    wf = _fmri_wf(pair=_pair(tmp_path, fmriprep=route == "fmriprep"),
                  output_dir=tmp_path / "out",
                  route="freesurfer" if route == "freesurfer" else "ants", seed=3,
                  omp_nthreads=2)
    nodes = _nodes(wf)
    assert expected <= nodes and not (absent & nodes)
    blocks = wf.get_node("block_values")
    assert blocks.inputs.tr == 3.0 and blocks.inputs.design["conditions"] == CONDITIONS
    assert wf.__desc__ and "[@" in wf.__desc__
    # the derivative's sidecar names the route and its settings ([fmri] option names)
    expected_route = {"ants": {"fmri_route": "ants", "projection_fraction": 0.5,
                               "coregistration_init": "header",
                               "coregistration_transform": "rigid"},
                      "freesurfer": {"fmri_route": "freesurfer", "projection_fraction": 0.5},
                      "fmriprep": {"fmri_route": "fmriprep"}}[route]
    assert wf.get_node("ds_blocks").inputs.sidecar == expected_route
    if route != "fmriprep":
        realign = wf.get_node("realign")
        assert realign.inputs.seed == 3 and realign.n_procs == 2


def test_optional_block_lengths(tmp_path):
    wf = _fmri_wf(pair=_pair(tmp_path), output_dir=tmp_path,
                  blocks=BlockOptions(block_volumes=11, rest_volumes=6))
    options = wf.get_node("block_values").inputs.options
    assert (options["block_volumes"], options["rest_volumes"]) == (11, 6)


def test_freesurfer_command_lines(tmp_path):
    """bbregister and mri_vol2surf command lines as the FreeSurfer route builds them."""
    wf = _fmri_wf(pair=_pair(tmp_path), output_dir=tmp_path, route="freesurfer",
                  registration=RegistrationOptions(projection_fraction=0.5))
    mean = tmp_path / "bold_mean.nii.gz"
    mean.write_text("")
    bbr = wf.get_node("bbregister")
    bbr.inputs.subjects_dir = str(tmp_path)
    bbr.inputs.subject_id = "sub-01"
    bbr.inputs.source_file = str(mean)
    cmd = bbr.interface.cmdline
    assert cmd.startswith("bbregister")
    for part in ("--t2", "--init-coreg", "--reg register.dat", "--s sub-01",
                 f"--mov {mean}"):
        assert part in cmd, (part, cmd)
    vol2surf = wf.get_node("vol2surf")
    from nipype.interfaces import freesurfer as fs

    node = fs.SampleToSurface(**{k: v for k, v in vol2surf.inputs.get().items()
                                 if v is not None and k not in ("hemi",)})
    reg = tmp_path / "register.dat"
    reg.write_text("")
    node.inputs.hemi = "lh"
    node.inputs.source_file = str(mean)
    node.inputs.reg_file = str(reg)
    node.inputs.subjects_dir = str(tmp_path)
    cmd = node.cmdline
    assert cmd.startswith("mri_vol2surf")
    for part in ("--hemi lh", "--projfrac 0.5", "--interp nearest", f"--reg {reg}",
                 f"--mov {mean}"):
        assert part in cmd, (part, cmd)


def test_surface_file_parcels(tmp_path):
    """The mri_vol2surf route picks the grid vertices of each hemisphere and averages parcels."""
    import nibabel as nib
    import pandas as pd

    from bids_app.interfaces.fmri import SurfaceFileParcels

    n_vert, n_vol = 8, 5
    rng = np.random.default_rng(0)
    lh, rh = rng.normal(size=(n_vert, n_vol)), rng.normal(size=(n_vert, n_vol))
    for name, data in (("lh.mgz", lh), ("rh.mgz", rh)):
        nib.save(nib.MGHImage(data[:, None, None, :].astype(np.float32), np.eye(4)),
                 tmp_path / name)
    np.savez(tmp_path / "grid.npz", white=np.zeros((4, 3)), pial=np.zeros((4, 3)),
             hemi=np.array([0, 0, 1, 1]), vertices=np.array([1, 5, 0, 7]))
    write_parcellation(tmp_path / "parc.npz", names=["a-lh", "b-rh"], hemis=["lh", "rh"],
                       fmri_parcel=np.array([0, 0, 1, -1]), meg_parcel=np.array([0]),
                       meg_vertices=([0], []), atlas="test")
    node = SurfaceFileParcels(surface_files=[str(tmp_path / "lh.mgz"), str(tmp_path / "rh.mgz")],
                              fmri_grid=str(tmp_path / "grid.npz"),
                              parcellation=str(tmp_path / "parc.npz"))
    result = node.run(cwd=str(tmp_path))
    series = pd.read_csv(result.outputs.out_file, sep="\t")
    np.testing.assert_allclose(series["a-lh"], (lh[1] + lh[5]) / 2, rtol=1e-5)
    np.testing.assert_allclose(series["b-rh"], rh[0], rtol=1e-5)


@pytest.mark.parametrize("intent", ["NIFTI_INTENT_TIME_SERIES", "NIFTI_INTENT_NONE", "2-D"])
def test_fsaverage_parcels_reads_fmriprep_gifti(tmp_path, intent):
    """The fMRIPrep route reads both hemispheres' GIFTI, whatever the data arrays' intent (one
    array per volume) or as one 2-D array, drops the dummy volumes, averages the grid vertices
    of each parcel and names the parcels left without signal."""
    import nibabel as nib
    import pandas as pd

    from bids_app.interfaces.fmri import FsaverageParcels

    n_grid, n_vol = 10242, 6  # fsaverage5 data on an ico-5 grid
    rng = np.random.default_rng(0)
    data = {"L": rng.normal(100, 1, (n_grid, n_vol)), "R": rng.normal(100, 1, (n_grid, n_vol))}
    data["R"][7] = 0.0  # outside fMRIPrep's field of view
    for hemi, values in data.items():
        if intent == "2-D":
            darrays = [nib.gifti.GiftiDataArray(values.astype(np.float32))]
        else:
            darrays = [nib.gifti.GiftiDataArray(v.astype(np.float32), intent=intent)
                       for v in values.T]
        nib.save(nib.GiftiImage(darrays=darrays), tmp_path / f"{hemi}.func.gii")
    fmri_parcel = np.full(2 * n_grid, -1)
    fmri_parcel[[3, 9]] = 0
    fmri_parcel[n_grid + 7] = 1
    write_parcellation(tmp_path / "parc.npz", names=["a-lh", "b-rh"], hemis=["lh", "rh"],
                       fmri_parcel=fmri_parcel, meg_parcel=np.array([0]),
                       meg_vertices=([0], []), atlas="test")
    node = FsaverageParcels(lh_file=str(tmp_path / "L.func.gii"),
                            rh_file=str(tmp_path / "R.func.gii"),
                            parcellation=str(tmp_path / "parc.npz"), dummy_scans=2)
    result = node.run(cwd=str(tmp_path))
    series = pd.read_csv(result.outputs.out_file, sep="\t")
    np.testing.assert_allclose(series["a-lh"], (data["L"][3, 2:] + data["L"][9, 2:]) / 2,
                               rtol=1e-5)  # float32, 6 digits
    assert series["b-rh"].isna().all()
    summary = json.loads(open(result.outputs.report).read())
    assert summary == {"kind": "fmri_sampling", "source": "fMRIPrep fsaverage GIFTI",
                       "coverage": {"a-lh": 1.0, "b-rh": 0.0}, "empty_parcels": ["b-rh"]}


def test_fmriprep_route_runs_and_recovers_block_amplitudes(tmp_path):
    """The fMRIPrep route run as a nipype graph: GIFTI BOLD (one data array per volume, no
    time-series intent) -> parcel series -> block values -> the derivative. A parcel whose
    vertices carry a boxcar of known amplitude per block (28 s from the first picture, delayed
    by the haemodynamic delay; 9 block and 5 rest volumes, which the boxcar covers and spares)
    gets those amplitudes back up to the high-pass filter's share; a parcel without signal gets
    zeros."""
    import nibabel as nib
    import pandas as pd

    from bids_app.simulate.design import make_design, run_events

    design = make_design("small")
    rng = np.random.default_rng(5)
    pair = _pair(tmp_path, fmriprep=True)
    events = run_events(design, rng)
    events.to_csv(pair.bold_events, sep="\t", index=False)
    pictures = events[events.trial_type != "instruction"]
    starts = pictures.groupby("block").onset.min()
    amplitude = pd.Series(rng.uniform(0.5, 2.0, len(starts)), index=starts.index)
    times = np.arange(design.n_volumes) * design.tr_s
    signal = np.zeros(design.n_volumes)
    for block, onset in starts.items():
        signal[(times >= onset + 3.0) & (times < onset + 3.0 + 28.0)] += amplitude[block]
    n_grid = 10242
    for hemi, carries in (("L", True), ("R", False)):
        data = 100.0 + rng.normal(0, 0.01, (n_grid, design.n_volumes))
        if carries:
            data[:100] += signal
        nib.save(nib.GiftiImage(darrays=[nib.gifti.GiftiDataArray(v.astype(np.float32))
                                         for v in data.T]),
                 pair.fmriprep_bold[0 if hemi == "L" else 1])
    fmri_parcel = np.full(2 * n_grid, -1)
    fmri_parcel[:100] = 0
    fmri_parcel[n_grid:n_grid + 100] = 1
    write_parcellation(tmp_path / "parc.npz", names=["a-lh", "b-rh"], hemis=["lh", "rh"],
                       fmri_parcel=fmri_parcel, meg_parcel=np.array([0]),
                       meg_vertices=([0], []), atlas="test")
    wf = _fmri_wf(pair=pair, output_dir=tmp_path / "out",
                  design=DesignOptions(list(design.conditions)),
                  blocks=BlockOptions(dummy_scans=design.dummy_volumes, block_volumes=9,
                                      rest_volumes=5))
    wf.base_dir = str(tmp_path / "work")
    wf.config["execution"]["crashdump_dir"] = str(tmp_path)
    wf.inputs.inputnode.parcellation = str(tmp_path / "parc.npz")
    wf.run()
    (written,) = (tmp_path / "out").rglob("*_desc-blocks_bold.tsv")
    table = pd.read_csv(written, sep="\t")
    found = table[table.parcel == "a-lh"].set_index("block").value
    # the 510-s high-pass removes one slow cosine from a 342-s run, about 2 % of the boxcars
    np.testing.assert_allclose(found, amplitude.reindex(found.index), rtol=0.03)
    np.testing.assert_allclose(table[table.parcel == "b-rh"].value, 0.0, atol=0.02)
    # the sidecar records what made the values: the route and the block settings used
    sidecar = json.loads(written.with_suffix(".json").read_text())
    assert sidecar["Sources"] == [f"bids:raw:{pair.bold.name}"]
    assert {k: sidecar[k] for k in ("fmri_route", "repetition_time_s", "dummy_scans",
                                    "highpass_period_s", "hrf_delay_s", "block_volumes",
                                    "rest_volumes")} == {
        "fmri_route": "fmriprep", "repetition_time_s": 3.0, "dummy_scans": design.dummy_volumes,
        "highpass_period_s": 510.0, "hrf_delay_s": 3.0, "block_volumes": 9, "rest_volumes": 5}


def test_block_values_record_the_volume_counts_derived_from_the_events(tmp_path):
    """Without block_volumes/rest_volumes, BlockValues derives them from the events (11 and 6
    for 30-s blocks and 21-s rests at TR 3 s, DESIGN 4.2) and reports the values it used."""
    import pandas as pd

    from bids_app.interfaces.fmri import BlockValues
    from bids_app.simulate.design import make_design, run_events

    design = make_design("small")
    events = run_events(design, np.random.default_rng(0))
    events.to_csv(tmp_path / "events.tsv", sep="\t", index=False)
    n_kept = design.n_volumes - design.dummy_volumes
    pd.DataFrame({"p-lh": np.random.default_rng(1).normal(100, 1, n_kept)}).to_csv(
        tmp_path / "series.tsv", sep="\t", index=False)
    interface = BlockValues(timeseries=str(tmp_path / "series.tsv"),
                            events=str(tmp_path / "events.tsv"), tr=design.tr_s,
                            design=as_dict(DesignOptions(list(design.conditions))),
                            options=as_dict(BlockOptions(dummy_scans=design.dummy_volumes)))
    result = interface.run(cwd=str(tmp_path))
    assert result.outputs.settings == {
        "repetition_time_s": 3.0, "dummy_scans": design.dummy_volumes,
        "highpass_period_s": 510.0, "hrf_delay_s": 3.0, "block_volumes": 11, "rest_volumes": 6}
