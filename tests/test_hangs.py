"""Inputs that made the app wait forever without a word (issue 19, item 7): a memory limit below
what a step needs (MultiProc schedules nothing), and symbolic links that loop (pybids and the
BIDS validator follow them forever). Both are refused before any work, with a message naming
the option or the link. The command-line tests run the app in a subprocess with a time limit,
so that the old behaviour (a hang) fails them instead of blocking the suite."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from nipype.interfaces.utility import Function
from nipype.pipeline import engine as pe

from bids_app.errors import BadDataError, UsageError
from bids_app.io.bids import check_symlink_loops
from bids_app.workflows.execution import configure_nipype, run_workflow
from skeleton import fingerprint

#: Seconds a refused run may take (it takes about 2 s; the old behaviour never ended).
LIMIT_S = 120


def _app(*argv) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "bids_app", *map(str, argv)], text=True,
                          capture_output=True, timeout=LIMIT_S, env=env)


# -- memory ----------------------------------------------------------------------------------------
def _double(value: int) -> int:
    return 2 * value


def test_run_workflow_refuses_a_limit_below_a_step(tmp_path):
    """A step declaring 2 GB under a 1-GB limit: refused before the run, the step named."""
    wf = pe.Workflow(name="mem_wf", base_dir=str(tmp_path / "work"))
    wf.add_nodes([pe.Node(Function(input_names=["value"], output_names=["out"],
                                   function=_double), name="big_step", mem_gb=2.0)])
    wf.get_node("big_step").inputs.value = 1
    configure_nipype(crash_dir=tmp_path / "crash", stop_on_first_crash=False)
    with pytest.raises(UsageError) as refused:
        run_workflow(wf, plugin="MultiProc", plugin_args={}, nprocs=2, mem_gb=1.0,
                     crash_dir=tmp_path / "crash")
    message = refused.value.message
    assert "(--mem-gb = 1 GB)" in message and "mem_wf.big_step needs" in message
    assert "Set --mem-gb to at least 2" in message
    assert not (tmp_path / "work" / "mem_wf" / "big_step").exists()   # nothing ran


@pytest.mark.parametrize("how", ["--mem-gb", "plugin file"])
def test_memory_limit_below_every_step_is_refused(skeleton, tmp_path, how):
    """Under 0.01 GB nipype's MultiProc starts nothing and polls forever."""
    if how == "--mem-gb":
        extra = ["--mem-gb", "0.005"]
        option = "(--mem-gb = 0.005 GB)"
    else:
        plugin = tmp_path / "plugin.yml"
        plugin.write_text("plugin: MultiProc\nplugin_args: {memory_gb: 0.005, n_procs: 2}\n")
        extra = ["--use-plugin", plugin]
        option = "(memory_gb (plugin file) = 0.005 GB)"
    before = fingerprint(skeleton)
    proc = _app(skeleton, tmp_path / "out", "participant", "-w", tmp_path / "work",
                "--skip-bids-validation", "--nprocs", "2", *extra)
    assert proc.returncode == 64, proc.stderr[-2000:]
    assert option in proc.stderr and "forward_model needs" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert fingerprint(skeleton) == before


# -- symbolic-link loops ---------------------------------------------------------------------------
def test_symlink_loop_is_named_before_validation(skeleton, tmp_path):
    """Two links to the dataset root: every level of the walk doubles the paths. The loop is
    caught before the BIDS validator (which would also follow it) and named, exit code 65."""
    os.symlink("../..", skeleton / "sub-01" / "anat" / "up")
    os.symlink("../..", skeleton / "sub-02" / "anat" / "up")
    before = fingerprint(skeleton)
    proc = _app(skeleton, tmp_path / "out", "participant", "-w", tmp_path / "work")
    assert proc.returncode == 65, proc.stderr[-2000:]
    assert "loop of symbolic links: sub-01/anat/up points to" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert fingerprint(skeleton) == before


def test_links_that_lead_to_each_other(skeleton):
    os.symlink("../../sub-02", skeleton / "sub-01" / "anat" / "other")
    os.symlink("../../sub-01", skeleton / "sub-02" / "anat" / "other")
    with pytest.raises(BadDataError, match=r"sub-02/anat/other points to .*sub-01, a folder "
                                           r"from which it is reached again"):
        check_symlink_loops(skeleton)


def test_chain_of_links_to_itself(skeleton):
    os.symlink("b", skeleton / "sub-02" / "a")
    os.symlink("a", skeleton / "sub-02" / "b")
    with pytest.raises(BadDataError, match=r"sub-02/a is a chain of links that points back"):
        check_symlink_loops(skeleton)


def test_links_without_a_loop_are_accepted(skeleton, tmp_path):
    """Links to other folders (DataLad, shared anatomy), even to one folder twice, are fine;
    so is a loop in a folder discovery does not read (derivatives, unselected subjects)."""
    outside = tmp_path / "shared"
    (outside / "deep").mkdir(parents=True)
    os.symlink(outside, skeleton / "sub-01" / "anat" / "shared")
    os.symlink(outside, skeleton / "sub-02" / "anat" / "shared")
    os.symlink("../sub-01/anat", skeleton / "sub-02" / "anat_copy")
    (skeleton / "derivatives").mkdir()
    os.symlink("..", skeleton / "derivatives" / "up")
    check_symlink_loops(skeleton)
    os.symlink("../..", skeleton / "sub-02" / "anat" / "up")
    check_symlink_loops(skeleton, ["01"])
    with pytest.raises(BadDataError, match="sub-02/anat/up"):
        check_symlink_loops(skeleton, ["02"])


def test_loops_where_only_the_validator_reads(skeleton):
    """The BIDS validator reads stimuli/, models/ and the empty-room recordings, which pybids
    does not index: a loop there made it run for minutes and die out of memory ('failed to
    run', exit 16), the link unnamed. The walk covers what the validator is given."""
    from bids_app.io.bids import dataset_entries

    (skeleton / "stimuli").mkdir()
    os.symlink("..", skeleton / "stimuli" / "up")
    with pytest.raises(BadDataError, match="stimuli/up"):
        check_symlink_loops(skeleton)
    os.unlink(skeleton / "stimuli" / "up")
    (skeleton / "sub-emptyroom").mkdir()
    os.symlink("..", skeleton / "sub-emptyroom" / "up")
    with pytest.raises(BadDataError, match="sub-emptyroom/up"):
        check_symlink_loops(skeleton, ["01"])
    names = [entry.name for entry in dataset_entries(skeleton, ["01"])]
    assert names == ["dataset_description.json", "stimuli", "sub-01", "sub-emptyroom",
                     "task-naming_bold.json"]


@pytest.mark.parametrize("where", ["input", "output"])
def test_a_folder_that_is_a_loop_of_links_is_named(tmp_path, where):
    """Path.resolve raises RuntimeError on a loop (Python < 3.13): it reached the user as
    'Unexpected error' with a traceback, exit 1."""
    from bids_app.errors import CantCreateError
    from bids_app.io.bids import resolve_folder

    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    error = BadDataError if where == "input" else CantCreateError
    with pytest.raises(error, match=rf"{tmp_path / 'a'} is part of a loop of symbolic links"):
        resolve_folder(tmp_path / "a" / "sub", f"the {where} folder", error)
    assert resolve_folder(tmp_path / "new" / "sub", "the output folder") == tmp_path / "new/sub"
