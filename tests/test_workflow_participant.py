"""The participant graph is built from the plan and the configuration (without running it).

Every selected subject gets anatomy, one fMRI and one MEG sub-workflow per paired run, and a
report; the configuration's values reach the nodes; the MEG chain is wired tSSS -> forward
model -> band power; the work directory is the configured one.
"""

from __future__ import annotations

import pytest

from bids_app.cli.participant import plan_from_config
from bids_app.cli.run import build_config
from bids_app.workflows.base import init_participant_wf_from_config
from bids_app.workflows.resources import bold_data_gb, estimate_mem_gb, meg_data_gb


def _build(skeleton, tmp_path, *options):
    config = build_config([str(skeleton), str(tmp_path / "out"), "participant", "-w",
                           str(tmp_path / "work"), "--skip-bids-validation", *options])
    return config, init_participant_wf_from_config(config, plan_from_config(config))


def _edges(workflow):
    graph = workflow._create_flat_graph()
    return {(u.fullname.split(".", 1)[1], v.fullname.split(".", 1)[1])
            for u, v in graph.edges()}


def test_every_subject_and_run_has_its_stages(skeleton, tmp_path):
    config, wf = _build(skeleton, tmp_path)
    names = set(wf.list_node_names())
    for sub in ("01", "02"):
        assert f"sub_{sub}_wf.anat_wf.parcellate" in names
        assert f"sub_{sub}_wf.report" in names
        for run in ("01", "02"):
            for node in ("realign", "coregister", "sample_parcels", "block_values", "ds_blocks"):
                assert f"sub_{sub}_wf.fmri_task_naming_run_{run}_wf.{node}" in names
            for node in ("maxwell_filter", "forward_model", "band_power", "ds_power"):
                assert f"sub_{sub}_wf.meg_task_naming_run_{run}_wf.{node}" in names
    meg = "sub_01_wf.meg_task_naming_run_01_wf"
    edges = _edges(wf)
    assert (f"{meg}.maxwell_filter", f"{meg}.forward_model") in edges
    assert (f"{meg}.forward_model", f"{meg}.band_power") in edges
    assert (f"{meg}.band_power", f"{meg}.ds_power") in edges
    assert str(wf.base_dir) == str(tmp_path / "work")


def test_the_work_folder_of_each_version_is_its_own(skeleton, tmp_path, monkeypatch):
    """Nipype reuses a cached step whose inputs are unchanged, whatever code computed it: the
    top workflow's folder carries the app's major and minor version (as fMRIPrep's does), so an
    upgraded app starts afresh while a patch release reuses the cache."""
    import bids_app.workflows as workflows

    _, wf = _build(skeleton, tmp_path)
    major, minor = workflows.__version__.split(".")[:2]
    assert wf.name == f"megfmri_participant_{major}_{minor}_wf"
    names = {}
    for version in ("0.1.0", "0.1.7", "0.2.0", "1.0.0"):
        monkeypatch.setattr(workflows, "__version__", version)
        names[version] = _build(skeleton, tmp_path)[1].name
    assert names["0.1.0"] == names["0.1.7"] != names["0.2.0"] != names["1.0.0"]


def test_selection_limits_the_graph(skeleton, tmp_path):
    _, wf = _build(skeleton, tmp_path, "--participant-label", "sub-02")
    subjects = {name.split(".")[0] for name in wf.list_node_names()}
    assert subjects == {"sub_02_wf"}


@pytest.mark.parametrize(("toml", "node", "field", "option", "expected"), [
    ("[meg]\neog_reject_uv = 120.0\n", "meg_task_naming_run_01_wf.band_power", "epochs",
     "eog_reject_uv", 120.0),
    ("[meg]\ndics_reg = 0.05\n", "meg_task_naming_run_01_wf.band_power", "dics",
     "dics_reg", 0.05),
    ("[meg]\nfind_bad_channels = false\n", "meg_task_naming_run_01_wf.maxwell_filter",
     "options", "find_bad_channels", False),
    ("[meg]\nst_duration_s = 4.0\n", "meg_task_naming_run_01_wf.maxwell_filter", "options",
     "st_duration_s", 4.0),
    ("[fmri]\nhighpass_period_s = 128.0\n", "fmri_task_naming_run_01_wf.block_values",
     "options", "highpass_period_s", 128.0),
    ("[workflow]\nblock_gap_s = 6.0\n", "fmri_task_naming_run_01_wf.block_values", "design",
     "block_gap_s", 6.0),
    ("[anatomy]\nbem_ico = 3\n", "anat_wf.headmodel", "options", "bem_ico", 3),
])
def test_configuration_reaches_the_nodes(skeleton, tmp_path, toml, node, field, option,
                                         expected):
    """An option set in the TOML file arrives, under its own name, in the options object the
    node receives (its one hashed input of that step's settings)."""
    config_file = tmp_path / "config.toml"
    config_file.write_text(toml)
    _, wf = _build(skeleton, tmp_path, "--config", str(config_file))
    assert getattr(wf.get_node(f"sub_01_wf.{node}").inputs, field)[option] == expected


def test_numerical_nodes_use_the_cores_they_reserve(skeleton, tmp_path):
    """Each node's thread budget (num_threads) equals the cores MultiProc gives it, so
    nodes running side by side do not oversubscribe the machine (interfaces/threads.py)."""
    _, wf = _build(skeleton, tmp_path, "--nprocs", "6", "--omp-nthreads", "3")
    graph = wf._create_flat_graph()
    budgets = {}
    for node in graph.nodes():
        for field in ("num_threads",):
            if field in node.inputs.copyable_trait_names():
                budgets[node.fullname.split(".", 2)[-1]] = (getattr(node.inputs, field),
                                                            node.n_procs)
    for name in ("realign", "coregister", "maxwell_filter", "forward_model", "band_power",
                 "headmodel"):
        assert any(key.endswith(name) for key in budgets), f"{name} has no thread budget"
    assert all(threads == procs == 3 for threads, procs in budgets.values()), budgets


def test_heavy_steps_reserve_memory_by_the_size_of_their_run(skeleton, tmp_path):
    _, wf = _build(skeleton, tmp_path, "--participant-label", "01")
    meg = sorted((skeleton / "sub-01" / "meg").glob("*run-01_meg.fif"))[0]
    bold = sorted((skeleton / "sub-01" / "func").glob("*run-01_bold.nii.gz"))[0]
    run_wf = "sub_01_wf.{}_task_naming_run_01_wf.{}"
    meg_gb, bold_gb = meg_data_gb(meg), bold_data_gb(bold)
    assert meg_gb is not None and bold_gb is not None
    expected = {
        run_wf.format("meg", "maxwell_filter"): estimate_mem_gb("maxwell_filter", meg_gb),
        run_wf.format("meg", "band_power"): estimate_mem_gb("band_power", meg_gb),
        run_wf.format("fmri", "realign"): estimate_mem_gb("realign", bold_gb),
    }
    for name, mem in expected.items():
        assert wf.get_node(name).mem_gb == mem


def test_fallback_parcels_are_announced(skeleton, tmp_path, monkeypatch):
    """Issue 19.2: without --atlas and without any atlas file, the fallback parcels are used,
    and every participant report says so; a named atlas would have stopped the run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("FREESURFER_HOME", "TEMPLATEFLOW_HOME", "NILEARN_DATA"):
        monkeypatch.delenv(name, raising=False)
    config, wf = _build(skeleton, tmp_path)
    for sub in ("01", "02"):
        assert wf.get_node(f"sub_{sub}_wf.anat_wf.parcellate").inputs.atlas == "fallback"
        warnings = wf.get_node(f"sub_{sub}_wf.report").inputs.warnings
        assert any("fallback parcels are used" in w for w in warnings)
