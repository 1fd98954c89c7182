"""Running the graph: a failed run is resumed from the work folder without redoing finished
steps, and the failure is reported with the failing step's name and an exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from nipype.interfaces.utility import Function
from nipype.pipeline import engine as pe

from bids_app.errors import EXIT_FAILURE
from bids_app.workflows.execution import WorkflowFailed, configure_nipype, run_workflow


def _slow_step(counter: str, value: int) -> int:
    """Leaves one file in the folder ``counter`` per execution (a folder: nipype hashes the
    content of string inputs that name files, which would change the step's hash)."""
    import uuid
    from pathlib import Path

    (Path(counter) / uuid.uuid4().hex).touch()
    return value * 2


def _fragile_step(flag: str, value: int) -> int:
    """Fails while ``flag`` exists (an interruption, a full disk...)."""
    from pathlib import Path

    if Path(flag).exists():
        raise RuntimeError("simulated failure of the second step")
    return value + 1


def _workflow(tmp_path: Path) -> pe.Workflow:
    wf = pe.Workflow(name="resume_wf", base_dir=str(tmp_path / "work"))
    first = pe.Node(Function(input_names=["counter", "value"], output_names=["out"],
                             function=_slow_step), name="first")
    (tmp_path / "runs").mkdir(exist_ok=True)
    first.inputs.counter = str(tmp_path / "runs")
    first.inputs.value = 20
    second = pe.Node(Function(input_names=["flag", "value"], output_names=["out"],
                              function=_fragile_step), name="second")
    second.inputs.flag = str(tmp_path / "fail")
    wf.connect(first, "out", second, "value")
    return wf


@pytest.mark.parametrize("plugin", ["Linear", "MultiProc"])
def test_failed_run_resumes_from_the_work_folder(tmp_path, plugin):
    crash_dir = tmp_path / "crash"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=False, verbosity=0)
    (tmp_path / "fail").touch()
    with pytest.raises(WorkflowFailed) as failed:
        run_workflow(_workflow(tmp_path), plugin=plugin, plugin_args={}, nprocs=2, mem_gb=None,
                     crash_dir=crash_dir)
    assert "second" in failed.value.message
    assert failed.value.exit_code == EXIT_FAILURE
    assert len(list((tmp_path / "runs").iterdir())) == 1

    (tmp_path / "fail").unlink()                       # the cause is fixed: run again
    graph = run_workflow(_workflow(tmp_path), plugin=plugin, plugin_args={}, nprocs=2,
                         mem_gb=None, crash_dir=crash_dir)
    assert len(list((tmp_path / "runs").iterdir())) == 1   # the finished step was not redone
    second = next(n for n in graph.nodes() if n.name == "second")
    assert second.result.outputs.out == 41


def _bad_data(error: str, message: str) -> int:
    """Raise the pure packages' error ``module:Class`` with ``message`` (a step meeting bad
    data; the function runs from its source in the step, hence the import by name)."""
    import importlib

    module, name = error.split(":")
    raise getattr(importlib.import_module(module), name)(message)


def _bad_data_workflow(tmp_path: Path, error: str, message: str) -> pe.Workflow:
    """One step that fails on bad data (:func:`_bad_data`)."""
    wf = pe.Workflow(name="bad_wf", base_dir=str(tmp_path / "work"))
    node = pe.Node(Function(input_names=["error", "message"], output_names=["out"],
                            function=_bad_data), name="blocks")
    node.inputs.error = error
    node.inputs.message = message
    wf.add_nodes([node])
    return wf


EVENTS = ("bids_app.blocks:EventsError",
          "sub-01_task-naming_run-01_events.tsv: no stimulus of the condition 'object_object'")


@pytest.mark.parametrize("plugin", ["Linear", "MultiProc"])
def test_bad_data_inside_a_step_keeps_its_message_and_exit_code(tmp_path, plugin, caplog):
    """A step failing on bad data reaches the user with its own message and exit code 65.
    Nipype writes the step's traceback indented by a tab in the crash file, and only its own
    NodeExecutionError ('Exception raised while executing Node ...') was found and shown,
    exit 1."""
    from bids_app.errors import EXIT_BAD_DATA

    crash_dir = tmp_path / "crash"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=False, verbosity=0)
    with pytest.raises(WorkflowFailed) as failed:
        run_workflow(_bad_data_workflow(tmp_path, *EVENTS), plugin=plugin, plugin_args={},
                     nprocs=2, mem_gb=None, crash_dir=crash_dir)
    assert failed.value.exit_code == EXIT_BAD_DATA, failed.value.message
    assert failed.value.message == ("bad_wf.blocks: sub-01_task-naming_run-01_events.tsv: no "
                                    "stimulus of the condition 'object_object'")
    # nipype names the crash report without the step's traceback (printed on the terminal)
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Saving crash info to ") for m in logged), logged
    assert not any("Traceback" in m for m in logged), logged


@pytest.mark.parametrize("error", [
    "bids_app.parcels.parcellation:ParcellationError",   # was exit 1: not in the list of names
    "bids_app.meg.errors:TooFewTrialsError",             # was a bare ValueError: exit 1
    "bids_app.meg.errors:NoSensorsError",
    "bids_app.meg.headmodel:HeadModelError",
    "bids_app.fmri.errors:BoldImageError",
    "bids_app.stats.errors:GroupStatsError",
    "bids_app.errors:BadDataError",                      # an AppError: its own code
])
def test_every_bad_data_error_of_the_pure_code_inside_a_step_exits_65(tmp_path, error):
    """Each pure package's bad-data error raised in a step ends as the step's message and code
    65 (the crash report names the class with its module; :func:`bids_app.errors.exit_code_of`
    maps it)."""
    from bids_app.errors import EXIT_BAD_DATA

    crash_dir = tmp_path / "crash"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=False, verbosity=0)
    with pytest.raises(WorkflowFailed) as failed:
        run_workflow(_bad_data_workflow(tmp_path, error, "sub-01_T1w.nii.gz: unusable"),
                     plugin="Linear", plugin_args={}, nprocs=1, mem_gb=None,
                     crash_dir=crash_dir)
    assert failed.value.exit_code == EXIT_BAD_DATA, failed.value.message
    assert failed.value.message == "bad_wf.blocks: sub-01_T1w.nii.gz: unusable"


def test_an_unexpected_error_inside_a_step_names_its_crash_report(tmp_path):
    crash_dir = tmp_path / "crash"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=False, verbosity=0)
    with pytest.raises(WorkflowFailed) as failed:
        run_workflow(_bad_data_workflow(tmp_path, "builtins:ValueError", "a bug"),
                     plugin="Linear", plugin_args={}, nprocs=1, mem_gb=None,
                     crash_dir=crash_dir)
    assert failed.value.exit_code == EXIT_FAILURE
    assert "ValueError: a bug" in failed.value.message
    assert "crash report: " in failed.value.message


@pytest.mark.parametrize("plugin", ["Linear", "MultiProc"])
def test_a_run_reports_its_step_times_and_busy_cores(tmp_path, plugin, caplog):
    """Each kind of step's time in this run, and how many processes were busy on average (CPU
    time of the run and its workers over wall time; issue 23 asks for >= 1.8 of 2)."""
    import logging
    import re

    crash_dir = tmp_path / "crash"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=False, verbosity=0)
    with caplog.at_level(logging.INFO, logger="bids_app"):
        run_workflow(_workflow(tmp_path), plugin=plugin, plugin_args={}, nprocs=2, mem_gb=None,
                     crash_dir=crash_dir, label="participant")
    text = caplog.text
    steps = re.search(r"Step times: (.*)", text).group(1)
    assert re.search(r"first 1 x \d+ s = \d+ s", steps) and "second 1 x" in steps
    busy = re.search(r"Participant: (\d+) s, CPU (\d+) s: ([\d.]+) of 2 processes busy", text)
    assert busy and 0 <= float(busy.group(3)) <= 2.5, text[-2000:]
    # the numbers themselves ride on the record (benchmarks/bench_stages.py reads them)
    record = next(r for r in caplog.records if hasattr(r, "step_seconds"))
    assert sorted(record.step_seconds) == ["first", "second"]
    assert all(len(times) == 1 and times[0] >= 0 for times in record.step_seconds.values())


@pytest.mark.parametrize("plugin", ["Linear", "MultiProc"])
def test_local_plugins_look_for_finished_steps_often(tmp_path, plugin):
    """Nipype's default (2 s between looks) left a core idle for 1 s on average after each of
    the demo's ~200 submitted steps; the app sets a shorter interval for the local plugins
    (docs/performance.md), and leaves nipype's for cluster plugins, whose looks query the
    cluster's scheduler."""
    from nipype import config as nipype_config

    from bids_app.workflows.execution import POLL_SLEEP_S

    crash_dir = tmp_path / "crash"
    configure_nipype(crash_dir=crash_dir, stop_on_first_crash=False, verbosity=0)
    assert float(nipype_config.get("execution", "poll_sleep_duration")) == 2.0
    workflow = _workflow(tmp_path)
    run_workflow(workflow, plugin=plugin, plugin_args={}, nprocs=2, mem_gb=None,
                 crash_dir=crash_dir)
    assert float(workflow.config["execution"]["poll_sleep_duration"]) == POLL_SLEEP_S <= 0.5


def test_step_times_sum_each_kind_of_step():
    from types import SimpleNamespace

    from bids_app.workflows.execution import ProgressCallback

    progress = ProgressCallback(3)
    progress.seconds = {"realign": [90.0, 98.0], "band_power": [13.0], "ds_blocks": [0.1]}
    assert progress.step_times(n=2) == "realign 2 x 94 s = 188 s; band_power 1 x 13 s = 13 s"
    node = SimpleNamespace(name="maxwell_filter", fullname="wf.maxwell_filter")
    progress(node, "start")
    progress(node, "end")
    assert list(progress.seconds["maxwell_filter"]) and progress.done == 1
