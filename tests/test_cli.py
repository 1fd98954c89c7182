"""The command line: parsing, configuration precedence, and every bad input's message and code."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bids_app.cli.parser import parse_args
from bids_app.cli.folders import check_output_location
from bids_app.cli.run import build_config, run
from bids_app.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def _run(caplog, *argv) -> tuple[int, str]:
    caplog.clear()
    code = run([str(a) for a in argv])
    return code, "\n".join(r.getMessage() for r in caplog.records)


# -- parsing --------------------------------------------------------------------------------------
def test_labels_with_and_without_prefix(tmp_path):
    config = build_config(["/d", "/o", "participant", "--participant-label", "sub-01", "02",
                           "--session-label", "ses-meg"])
    assert config.execution.participant_label == ["01", "02"]
    assert config.execution.session_label == ["meg"]
    # the task as file names spell it
    config = build_config(["/d", "/o", "participant", "--task", "task-naming", "rest"])
    assert config.execution.task == ["naming", "rest"]


def test_labels_from_file(tmp_path):
    listing = tmp_path / "subjects.txt"
    listing.write_text("sub-03\n04\n\n05")
    config = build_config(["/d", "/o", "participant", "--participant-label", str(listing)])
    assert config.execution.participant_label == ["03", "04", "05"]


def test_a_label_is_a_label_even_beside_a_file_of_that_name(tmp_path, monkeypatch, caplog):
    """Issue 19.11: '--participant-label 01' read a file named 01 in the current folder."""
    caplog.set_level("INFO", logger="bids_app")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "01").write_text("02\n")
    config = build_config(["/d", "/o", "participant", "--participant-label", "01"])
    assert config.execution.participant_label == ["01"]
    assert "from the command line" in caplog.text and "not read" in caplog.text
    config = build_config(["/d", "/o", "participant", "--participant-label", "./01"])
    assert config.execution.participant_label == ["02"]
    assert "read from the file 01" in caplog.text


def test_command_line_wins_over_config_file(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[stats]\nn_clusters = 5\nn_bootstrap = 100\n[nipype]\nnprocs = 1\n")
    config = build_config(["/d", "/o", "group", "--config", str(toml), "--n-clusters", "9"])
    assert config.stats.n_clusters == 9  # command line
    assert config.stats.n_bootstrap == 100  # config file
    assert config.stats.alpha == 0.05  # default
    assert config.nipype.nprocs == 1 and config.nipype.omp_nthreads == 1


def test_plugin_file(tmp_path):
    plugin = tmp_path / "plugin.yml"
    plugin.write_text("plugin: SLURMGraph\nplugin_args:\n  dont_resubmit_completed_jobs: true\n"
                      "  sbatch_args: --mem=8G\n")
    config = build_config(["/d", "/o", "participant", "--use-plugin", str(plugin)])
    assert config.nipype.plugin == "SLURMGraph"
    assert config.nipype.plugin_args == {"dont_resubmit_completed_jobs": True,
                                         "sbatch_args": "--mem=8G"}


def test_random_seed_recorded():
    assert build_config(["/d", "/o", "group", "--random-seed", "7"]).seeds.random_seed == 7
    # without it the level uses the output folder's seed (tests/test_seed.py)
    assert build_config(["/d", "/o", "group"]).seeds.random_seed is None


def test_unknown_option_is_a_usage_error():
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        parse_args(["/d", "/o", "participant", "--bogus"])


def test_version_and_exec_spec():
    out = subprocess.run([sys.executable, "-m", "bids_app", "--version"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("megfmri-fusion ")
    out = subprocess.run([sys.executable, "-m", "bids_app", "--bids-exec-spec"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    assert json.loads(out.stdout) == json.loads((ROOT / "boutiques.json").read_text())


# -- bad input: message and exit code, never a traceback ----------------------------------------
def test_missing_bids_dir(caplog, tmp_path):
    code, log = _run(caplog, tmp_path / "nope", tmp_path / "out", "participant")
    assert code == 66 and "does not exist" in log


def test_not_bids(caplog, tmp_path):
    (tmp_path / "data").mkdir()
    code, log = _run(caplog, tmp_path / "data", tmp_path / "out", "participant")
    assert code == 16 and "no dataset_description.json" in log


def test_bad_level(caplog, skeleton, tmp_path):
    code, log = _run(caplog, skeleton, tmp_path / "out", "subject")
    assert code == 17 and "allowed are participant, group" in log


def test_usage_error_code(caplog, skeleton, tmp_path):
    code, log = _run(caplog, skeleton, tmp_path / "out", "participant", "--nprocs", "zero")
    assert code == 64 and "expected an integer" in log


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_inside_dataset(caplog, skeleton, where):
    out = skeleton if where == "same" else skeleton / "results"
    code, log = _run(caplog, skeleton, out, "participant", "--skip-bids-validation")
    assert code == 64
    assert "derivatives/megfmri-fusion" in log
    assert not (skeleton / "results").exists()


def test_output_in_derivatives_is_allowed(skeleton):
    out = skeleton / "derivatives" / "megfmri-fusion"
    assert check_output_location(out, "output", bids_dir=skeleton) == out.resolve()


def test_output_cannot_be_created(caplog, skeleton, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, log = _run(caplog, skeleton, blocker / "out", "participant", "--skip-bids-validation",
                     "-w", tmp_path / "work")
    assert code == 73 and "Cannot create or write the output folder" in log


def test_unknown_participant(caplog, skeleton, tmp_path):
    code, log = _run(caplog, skeleton, tmp_path / "out", "participant", "--participant-label",
                     "07", "--skip-bids-validation")
    assert code == 18
    assert "sub-07 not found" in log and "sub-01, sub-02" in log


def _common(skeleton, tmp_path):
    return [skeleton, tmp_path / "out", "participant", "--skip-bids-validation", "-w",
            tmp_path / "work"]


def test_subject_with_meg_but_no_bold(caplog, skeleton, tmp_path):
    for f in (skeleton / "sub-02" / "func").glob("*"):
        f.unlink()
    code, log = _run(caplog, *_common(skeleton, tmp_path), "--participant-label", "02")
    assert code == 65
    assert "sub-02 has no MEG run with a matching BOLD run" in log
    assert "sub-02_task-naming_run-01_meg.fif has no BOLD run" in log


def test_subject_with_bold_but_no_meg(caplog, skeleton, tmp_path):
    for f in (skeleton / "sub-01" / "meg").glob("*"):
        f.unlink()
    code, log = _run(caplog, *_common(skeleton, tmp_path), "--participant-label", "01")
    assert code == 65 and "BOLD run sub-01_task-naming_run-01_bold.nii.gz has no MEG run" in log


def test_unpaired_run_error_when_configured(caplog, skeleton, tmp_path):
    (skeleton / "sub-01" / "meg" / "sub-01_task-naming_run-02_meg.fif").unlink()
    toml = tmp_path / "c.toml"
    toml.write_text('[workflow]\nunpaired_runs = "error"\n')
    code, log = _run(caplog, *_common(skeleton, tmp_path), "--config", toml)
    assert code == 65
    assert "sub-01 has unpaired runs" in log and "run-02_bold.nii.gz" in log


def test_missing_events(caplog, skeleton, tmp_path):
    (skeleton / "sub-01" / "func" / "sub-01_task-naming_run-01_events.tsv").unlink()
    code, log = _run(caplog, *_common(skeleton, tmp_path))
    assert code == 66
    assert "No events file for sub-01/func/sub-01_task-naming_run-01_bold.nii.gz" in log


def test_events_without_conditions(caplog, skeleton, tmp_path):
    code, log = _run(caplog, *_common(skeleton, tmp_path), "--conditions", "faces", "houses")
    assert code == 65
    assert "no stimulus of the configured conditions (faces, houses)" in log
    assert "object_object" in log  # the trial types found are listed


def test_empty_and_corrupt_files(caplog, skeleton, tmp_path):
    empty = skeleton / "sub-02" / "func" / "sub-02_task-naming_run-02_bold.nii.gz"
    empty.write_bytes(b"")
    code, log = _run(caplog, *_common(skeleton, tmp_path))
    assert code == 65
    assert "1 data file(s) are empty (0 bytes)" in log and "sub-02_task-naming_run-02_bold" in log
    empty.write_bytes(b"not a nifti at all")
    code, log = _run(caplog, *_common(skeleton, tmp_path))
    assert code == 65 and "not a readable NIfTI image" in log


def test_three_dimensional_bold(caplog, skeleton, tmp_path):
    from skeleton import write_nifti

    write_nifti(skeleton / "sub-01" / "func" / "sub-01_task-naming_run-01_bold.nii.gz",
                shape=(4, 4, 4))
    code, log = _run(caplog, *_common(skeleton, tmp_path))
    assert code == 65 and "must be 4-D" in log


def test_missing_repetition_time(caplog, skeleton, tmp_path):
    (skeleton / "task-naming_bold.json").unlink()
    code, log = _run(caplog, *_common(skeleton, tmp_path))
    assert code == 65 and "has no RepetitionTime" in log


@pytest.fixture
def fake_freesurfer(tmp_path, monkeypatch):
    """A FreeSurfer 'installation' (recon-all on PATH) without a licence."""
    home = tmp_path / "freesurfer"
    (home / "bin").mkdir(parents=True)
    exe = home / "bin" / "recon-all"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FREESURFER_HOME", str(home))
    monkeypatch.setenv("PATH", f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FS_LICENSE", raising=False)
    return home


def test_missing_freesurfer_license(caplog, skeleton, tmp_path, fake_freesurfer):
    code, log = _run(caplog, *_common(skeleton, tmp_path))
    assert code == 66
    assert "no FreeSurfer licence was found" in log and "--fs-license-file" in log
    assert "recon-all" in log


def test_given_license_must_exist(caplog, skeleton, tmp_path):
    code, log = _run(caplog, *_common(skeleton, tmp_path), "--fs-license-file",
                     tmp_path / "license.txt")
    assert code == 66 and "license.txt does not exist" in log


@pytest.mark.shared_data
def test_ds000117_empty_files_named(caplog, shared_data, tmp_path):
    ds = shared_data / "bids-examples" / "ds000117"
    code, log = _run(caplog, ds, tmp_path / "out", "participant", "--participant-label", "01",
                     "--skip-bids-validation", "-w", tmp_path / "work")
    assert code == 65
    assert "data file(s) are empty (0 bytes)" in log
    assert "sub-01/ses-meg/meg/sub-01_ses-meg_task-facerecognition_run-01_meg.fif" in log
    assert "sub-01/ses-mri/func/sub-01_ses-mri_task-facerecognition_run-01_bold.nii.gz" in log


@pytest.mark.shared_data
def test_ds000117_validator_reports_empty_files(caplog, shared_data, tmp_path):
    ds = shared_data / "bids-examples" / "ds000117"
    code, log = _run(caplog, ds, tmp_path / "out", "participant", "--participant-label", "01",
                     "-w", tmp_path / "work")
    assert code == 16
    assert "EMPTY_FILE" in log and "sub-01/ses-meg/meg/sub-01_ses-meg" in log


def test_no_traceback_on_the_terminal(skeleton, tmp_path):
    """End-user view: the real command, bad input, a one-paragraph message and no traceback."""
    (skeleton / "sub-01" / "func" / "sub-01_task-naming_run-01_events.tsv").unlink()
    out = subprocess.run(
        [sys.executable, "-m", "bids_app", str(skeleton), str(tmp_path / "out"), "participant",
         "--skip-bids-validation", "-w", str(tmp_path / "work")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert out.returncode == 66
    assert "Traceback" not in out.stderr + out.stdout
    assert "No events file" in out.stderr


def test_simulator_removes_its_template_folder_at_exit(tmp_path):
    """The simulator builds the template anatomy in a temporary folder; it is gone when the
    process ends (it was left behind in /tmp, 5 MB per simulation)."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    code = ("from bids_app.cli.simulate import _template_anatomy; "
            "anatomy = _template_anatomy('fallback'); print(anatomy.subjects_dir)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    used = Path(done.stdout.strip().splitlines()[-1])
    assert used.is_relative_to(tmp_path)  # the template was written there ...
    assert not list(tmp_path.glob("megfmri-sim-*"))  # ... and removed at exit


def test_demo_prints_each_log_line_once(tmp_path):
    """The demo sets up the simulator's logging and then runs the app in the same process; each
    line reached the terminal twice when both added a handler. Here the demo finds an existing
    (empty) dataset, so the participant level stops at once with a logged error."""
    bids = tmp_path / "demo" / "bids"
    bids.mkdir(parents=True)
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    out = subprocess.run([sys.executable, "-c", "from bids_app.cli.simulate import main_demo; "
                          f"main_demo([{str(tmp_path / 'demo')!r}])"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if "|" in line]
    assert any("Reusing the simulated dataset" in line for line in lines), out.stderr
    assert len(lines) == len(set(lines)), out.stderr


def test_simulator_names_the_shipped_effect_sets_for_an_unknown_one(caplog, tmp_path):
    from bids_app.cli.simulate import main_simulate

    with pytest.raises(SystemExit) as done:
        main_simulate([str(tmp_path / "bids"), "--effects", "strong"])
    assert done.value.code == 64
    from bids_app.simulate.effects import EFFECT_SETS

    assert f"--effects strong does not exist (or one of {sorted(EFFECT_SETS)})" in caplog.text


# -- the dataset is checked once per run ---------------------------------------------------------
def test_the_dataset_root_and_its_subjects_are_checked_once_per_run(skeleton, tmp_path,
                                                                     monkeypatch):
    """The participant level checks the dataset root and lists its subjects once, before the
    validator, and passes both on to discovery (which did both again)."""
    import bids_app.io.bids as bids

    calls = {"check_bids_root": 0, "available_subjects": 0}

    def counted(name):
        original = getattr(bids, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(bids, name, wrapper)

    for name in calls:
        counted(name)
    argv = [skeleton, tmp_path / "out", "participant", "-w", tmp_path / "work",
            "--boilerplate-only", "--skip-bids-validation"]
    assert run([str(a) for a in argv]) == 0
    assert calls == {"check_bids_root": 1, "available_subjects": 1}


@pytest.mark.parametrize("error", ["bids_app.parcels.parcellation:ParcellationError",
                                   "bids_app.meg.errors:TooFewTrialsError"])
def test_a_pure_packages_error_before_the_graph_exits_65_without_traceback(
        caplog, skeleton, tmp_path, monkeypatch, error):
    """A bad-data error of the pure code raised while the run is checked (here by the atlas
    lookup) is printed as its message alone, with exit code 65 (ParcellationError left with
    exit 1 and a traceback: it was missing from the list of names that were mapped)."""
    import importlib
    import logging

    import bids_app.io.atlases

    module, name = error.split(":")
    cls = getattr(importlib.import_module(module), name)

    def refuse(*args, **kwargs):
        raise cls("lh.broken.annot: cannot be read; give an annotation on fsaverage")
    monkeypatch.setattr(bids_app.io.atlases, "resolve_atlas", refuse)
    code, text = _run(caplog, skeleton, tmp_path / "out", "participant", "-w", tmp_path / "work",
                      "--skip-bids-validation", "--boilerplate-only")
    assert code == 65, text
    assert "lh.broken.annot: cannot be read" in text
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_demo_reports_the_time_of_each_stage(tmp_path, monkeypatch, caplog):
    """The demo ends with the wall and CPU time of its stages (issue 23); here each stage is a
    stand-in that burns a known amount of CPU in this process."""
    import logging
    import re
    import time

    import bids_app.cli.run as cli_run
    import bids_app.cli.simulate as cli_simulate

    def busy(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    def fake_simulate(bids, **kwargs):
        busy(0.3)
        bids.mkdir(parents=True)
        (bids / "dataset_description.json").write_text("{}")

    monkeypatch.setattr(cli_simulate, "simulate", fake_simulate)
    monkeypatch.setattr(cli_run, "run", lambda argv: busy(0.2) or 0)
    with caplog.at_level(logging.INFO, logger="bids_app"):
        assert cli_simulate.run_demo(tmp_path / "demo") == 0
    line = re.search(r"Stage times: (.*)", caplog.text).group(1)
    found = re.findall(r"(simulation|participant level|group level) (\d+) s \(CPU (\d+) s, "
                       r"([\d.]+) cores busy\)", line)
    assert [stage for stage, *_ in found] == ["simulation", "participant level", "group level"]
    assert all(0.5 <= float(cores) <= 1.5 for *_, cores in found), line
    record = next(r for r in caplog.records if hasattr(r, "stage_seconds"))
    assert [stage for stage, _wall, _cpu in record.stage_seconds] == [
        "simulation", "participant level", "group level"]
