"""The bad-input battery: what a researcher's own dataset or typing can hold, through the real
command line.

Each case is one fault: how it is made from the skeleton dataset (``tests/skeleton.py``) or from
a simulated recording, the exit code the app must return (``docs/usage.md``) and words its
message must contain (the file or option concerned, and the fix). Every case is run as a user
runs the app, ``megfmri-fusion <bids_dir> <output_dir> participant ...`` in a subprocess, with
its own home, temporary and current folders, and the battery asserts for each:

- the exit code and the words of the message, and no Python traceback;
- not one byte of the input dataset changed (checksums of every file before and after);
- nothing written outside the output and work folders, and when the run is refused, nothing
  written at all: not even an empty output folder.

The faults the app can detect before the nipype graph runs are run with ``--boilerplate-only``
(the graph is built, its methods text written, nothing computed), so the battery takes
seconds per case. Issue 19 lists the faults; ``issue`` names the item each case reproduces
(``field`` for what users of fMRIPrep and MNE-BIDS-Pipeline commonly hit with their datasets).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from skeleton import fingerprint, make_skeleton, write_meg, write_nifti

EXE = str(Path(sys.executable).parent / "megfmri-fusion")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if os.environ.get("MEGFMRI_SHARED_DATA"):
    SHARED = Path(os.environ["MEGFMRI_SHARED_DATA"])
FSAVERAGE_LABELS = SHARED / "mne-testing-data" / "subjects" / "fsaverage" / "label"
DS000117 = SHARED / "bids-examples" / "ds000117"


# --------------------------------------------------------------------------------------------------
# One case's folders
# --------------------------------------------------------------------------------------------------
@dataclass
class Env:
    """The folders of one case and the command line it runs.

    ``root`` holds the dataset (``bids``), the output and work folders, and the run's own
    ``home``, ``tmp`` and ``cwd``; a case may move the dataset or point the output elsewhere.
    """

    root: Path
    bids: Path
    out: Path
    work: Path
    options: list[str] = field(default_factory=list)
    positional: list[str] | None = None  # replaces "<bids> <out> participant"
    boilerplate_only: bool = True
    skip_validation: bool = True

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    def sub(self, label: str) -> Path:
        return self.bids / f"sub-{label}"

    def argv(self) -> list[str]:
        positional = self.positional or [str(self.bids), str(self.out), "participant"]
        argv = [EXE, *positional, "-w", str(self.work), *self.options]
        if self.skip_validation:
            argv.append("--skip-bids-validation")
        if self.boilerplate_only:
            argv.append("--boilerplate-only")
        return argv


@dataclass(frozen=True)
class Case:
    """A fault, how it is made, and what the app must answer."""

    id: str
    issue: str
    make: Callable[[Env], None]
    code: int
    words: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # words that must not appear
    needs_shared: bool = False
    simulated: bool = False


# --------------------------------------------------------------------------------------------------
# Helpers making the faults
# --------------------------------------------------------------------------------------------------
def _func(env: Env, sub: str = "01", run: str = "01", suffix: str = "bold.nii.gz") -> Path:
    return env.sub(sub) / "func" / f"sub-{sub}_task-naming_run-{run}_{suffix}"


def _meg(env: Env, sub: str = "01", run: str = "01", suffix: str = "meg.fif") -> Path:
    return env.sub(sub) / "meg" / f"sub-{sub}_task-naming_run-{run}_{suffix}"


def _t1w(env: Env, sub: str = "01") -> Path:
    return env.sub(sub) / "anat" / f"sub-{sub}_T1w.nii.gz"


def _cut_to_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_events(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    table = pd.read_csv(path, sep="\t", keep_default_na=False)
    edit(table).to_csv(path, sep="\t", index=False)


def _shift_stimuli(table: pd.DataFrame, seconds: float) -> pd.DataFrame:
    table["onset"] = table["onset"].astype(float) + seconds
    return table


def _rename(path: Path, old: str, new: str) -> None:
    path.rename(path.with_name(path.name.replace(old, new)))


def _description(folder: Path, content: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset_description.json").write_text(json.dumps(content))


def _derivative_of(folder: Path, tool: str) -> None:
    _description(folder, {"Name": f"{tool} outputs", "BIDSVersion": "1.10.0",
                          "DatasetType": "derivative", "GeneratedBy": [{"Name": tool}]})


def _copy_atlas(folder: Path, annot: str = "aparc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for hemi in ("lh", "rh"):
        shutil.copyfile(FSAVERAGE_LABELS / f"{hemi}.{annot}.annot", folder / f"{hemi}.{annot}.annot")
    return folder / f"lh.{annot}.annot"


def _move_dataset(env: Env, folder: str) -> None:
    target = env.root / folder / "bids"
    target.parent.mkdir(parents=True)
    env.bids.rename(target)
    env.bids = target


def _read_only_work(env: Env) -> None:
    """A work folder that exists but cannot be written, even by root (immutable flag)."""
    env.work.mkdir()
    if os.geteuid() != 0:
        env.work.chmod(0o555)
        return
    done = subprocess.run(["chattr", "+i", str(env.work)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("running as root where 'chattr +i' is not available: no read-only folder")


def _labels_file_named_01(env: Env) -> None:
    (env.cwd / "01").write_text("02\n")
    env.options += ["--participant-label", "01"]


def _labels_file(env: Env) -> None:
    (env.cwd / "subjects.txt").write_text("sub-02\n")
    env.options += ["--participant-label", "subjects.txt"]


def _sampling_rate_too_low(env: Env) -> None:
    for run in ("01", "02"):
        write_meg(_meg(env, run=run), sfreq=150.0)


def _meg_without_gradiometers(env: Env) -> None:
    write_meg(_meg(env), types=("mag",) * 6)


def _comma_separated_events(env: Env) -> None:
    path = _func(env, suffix="events.tsv")
    pd.read_csv(path, sep="\t").to_csv(path, sep=",", index=False)


def _broken_annex_link(env: Env) -> None:
    bold = _func(env)
    bold.unlink()
    bold.symlink_to("../../.git/annex/objects/XX/YY/SHA256E-s1234--abc.nii.gz")


def _ds000117(env: Env) -> None:
    shutil.rmtree(env.bids)
    shutil.copytree(DS000117, env.bids)
    for path in env.bids.rglob("*"):  # the shared copy is read-only
        path.chmod(path.stat().st_mode | 0o200)
    env.bids.chmod(0o755)
    env.options += ["--participant-label", "01"]


def _swap_with_earlier_output(env: Env) -> None:
    from bids_app.io.derivatives import write_dataset_description

    env.out.mkdir()
    write_dataset_description(env.out, env.bids)
    env.positional = [str(env.out), str(env.bids), "participant"]


def _fmriprep_dir(env: Env) -> None:
    fmriprep = env.root / "fmriprep"
    _derivative_of(fmriprep, "fMRIPrep")
    env.out = fmriprep / "megfmri-fusion"
    env.options += ["--fmriprep-dir", str(fmriprep)]


def _fs_subjects_dir(env: Env) -> None:
    fs = env.root / "freesurfer"
    (fs / "fsaverage").mkdir(parents=True)
    env.out = fs
    env.options += ["--fs-subjects-dir", str(fs)]


def _another_raw_dataset(env: Env) -> None:
    env.out = make_skeleton(env.root / "other-study", subjects=("01",), runs=("01",))


def _filter_file(env: Env) -> None:
    path = env.cwd / "filter.json"
    path.write_text(json.dumps({"bold": {"session": "nope"}}))
    env.options += ["--bids-filter-file", str(path)]


def _atlas_in_derivatives(env: Env) -> None:
    _copy_atlas(env.bids / "derivatives" / "freesurfer" / "fsaverage" / "label")
    env.options += ["--atlas", "desikan"]


def _atlas_file(env: Env) -> None:
    left = _copy_atlas(env.root / "atlases")
    env.options += ["--atlas-file", str(left)]


def _atlas_contradiction(env: Env) -> None:
    _atlas_file(env)
    env.options += ["--atlas", "destrieux"]


def _with(*options: str) -> Callable[[Env], None]:
    def make(env: Env) -> None:
        env.options += list(options)
    return make


def _file_option(option: str, name: str, content: str | bytes) -> Callable[[Env], None]:
    """``option`` given a file ``name`` (in the run's current folder) holding ``content``."""
    def make(env: Env) -> None:
        path = env.cwd / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        env.options += [option, str(path)]
    return make


def _link_loop(link: str, target: str) -> Callable[[Env], None]:
    """A symbolic link ``link`` (relative to the case's root) pointing to ``target``."""
    def make(env: Env) -> None:
        path = env.root / link
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return make


def _output_is_a_link_loop(env: Env) -> None:
    env.out.symlink_to(env.out.name)


def _inside_dataset_earlier_output(env: Env) -> None:
    """An output folder of an earlier run of the app inside the dataset (refused since)."""
    from bids_app.io.derivatives import write_dataset_description

    env.out = env.bids / "results"
    env.out.mkdir()
    write_dataset_description(env.out, env.bids)


def _report_inputs_cut(env: Env) -> None:
    """An earlier output folder whose saved report inputs were cut short (a full disk)."""
    from bids_app.io.derivatives import write_dataset_description

    env.out.mkdir()
    write_dataset_description(env.out, env.bids)
    (env.out / "logs" / "reports").mkdir(parents=True)
    (env.out / "logs" / "reports" / "sub-01.json").write_text('{"subject": "01", "summ')
    env.options.append("--reports-only")


def _group(*options: str, atlas_outputs: str | None = "fallback", observations: int = 0,
           parcels: int = 4) -> Callable[[Env], None]:
    """The group level on participant outputs of one atlas: their dataset description, the
    parcellation table (``parcels`` included) and the file names of ``observations``
    (subject, run) pairs (what the group level looks for before its graph runs)."""
    def make(env: Env) -> None:
        from bids_app.io.derivatives import write_dataset_description

        if atlas_outputs is not None:
            env.out.mkdir()
            write_dataset_description(env.out, env.bids)
            rows = "".join(f"{i}\tp{i}-lh\tlh\t1\tTrue\n" for i in range(parcels))
            (env.out / f"atlas-{atlas_outputs}_dseg.tsv").write_text(
                "index\tname\themi\tn_vertices\tincluded\n" + rows)
            for k in range(observations):
                stem = f"sub-{k:02d}_task-naming_run-01_atlas-{atlas_outputs}"
                for folder, name in (("meg", "desc-dics_meg.tsv.gz"),
                                     ("func", "desc-blocks_bold.tsv")):
                    path = env.out / f"sub-{k:02d}" / folder / f"{stem}_{name}"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"")
        env.positional = [str(env.bids), str(env.out), "group"]
        env.boilerplate_only = False
        env.options += list(options)
    return make


# --------------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------------
T1W_NAME = "sub-01_acq-a;b$c_T1w.nii.gz"

CASES = [
    # -- 19.1: subjects without anatomy, odd subject folders -------------------------------------
    Case("t1w-missing-template-anatomy", "19.1",
         lambda e: _t1w(e).unlink(),
         0, ("sub-01", "T1w: none", "TEMPLATE anatomy")),
    Case("stray-subject-folder-without-data", "19.1",
         lambda e: (e.sub("03") / "anat").mkdir(parents=True),
         0, ("sub-03", "skipped")),
    Case("subject-folder-with-space", "19.1",
         lambda e: shutil.copytree(e.sub("01"), e.bids / "sub-01 copy"),
         0, ("'sub-01 copy'", "ignored")),
    Case("subject-folder-non-ascii", "19.1",
         lambda e: shutil.copytree(e.sub("02"), e.bids / "sub-02é"),
         0, ("'sub-02é'", "ignored")),
    # -- 19.2: the atlas the user names --------------------------------------------------------
    Case("atlas-named-not-found", "19.2", _with("--atlas", "desikan"),
         66, ("'desikan'", "searched", "derivatives/freesurfer/fsaverage/label/lh.aparc.annot",
              "--atlas-file")),
    Case("atlas-named-found-in-derivatives-freesurfer", "19.2", _atlas_in_derivatives,
         0, ("derivatives/freesurfer/fsaverage/label/lh.aparc.annot", "atlas-desikan"),
         absent=("fallback",), needs_shared=True),
    Case("atlas-default-missing-fallback-announced", "19.2", lambda e: None,
         0, ("'destrieux'", "fallback", "atlas-fallback")),
    Case("atlas-file-names-the-outputs", "19.2", _atlas_file,
         0, ("atlas-desikan",), absent=("atlas-destrieux", "fallback"), needs_shared=True),
    Case("atlas-and-atlas-file-contradict", "19.2", _atlas_contradiction,
         64, ("--atlas destrieux", "lh.aparc.annot", "desikan"), needs_shared=True),
    # -- 19.3: where the output goes --------------------------------------------------------------
    Case("output-is-another-raw-dataset", "19.3", _another_raw_dataset,
         64, ("other-study", "raw BIDS dataset")),
    Case("output-is-fmriprep-derivatives", "19.3",
         lambda e: _derivative_of(e.out, "fMRIPrep"),
         64, ("fMRIPrep",)),
    Case("output-is-bids-derivatives-root", "19.3",
         lambda e: setattr(e, "out", e.bids / "derivatives"),
         64, ("derivatives/megfmri-fusion",)),
    Case("output-is-derivatives-freesurfer", "19.3",
         lambda e: (setattr(e, "out", e.bids / "derivatives" / "freesurfer"),
                    (e.out / "fsaverage").mkdir(parents=True)),
         64, ("FreeSurfer",)),
    Case("output-is-fs-subjects-dir", "19.3", _fs_subjects_dir,
         64, ("--fs-subjects-dir",)),
    Case("output-inside-fmriprep-dir", "19.3", _fmriprep_dir,
         64, ("--fmriprep-dir",)),
    Case("output-contains-the-dataset", "19.3",
         lambda e: setattr(e, "out", e.root),
         64, ("contains",)),
    Case("bids-and-output-swapped", "19.3",
         lambda e: setattr(e, "positional", [str(e.out), str(e.bids), "participant"]),
         66, ("does not exist",)),
    Case("bids-and-output-swapped-after-a-run", "19.3", _swap_with_earlier_output,
         64, ("swap",)),
    Case("work-inside-dataset", "19.3",
         lambda e: setattr(e, "work", e.bids / "work"),
         64, ("work folder", "inside the input dataset")),
    # -- 19.4: names that reach a shell --------------------------------------------------------
    Case("t1w-name-with-shell-characters", "19.4",
         lambda e: _t1w(e).rename(_t1w(e).with_name(T1W_NAME)),
         16, (T1W_NAME, "BIDS")),
    Case("task-label-with-space", "19.4",
         lambda e: [_rename(p, "task-naming", "task-nam ing")
                    for p in list((e.sub("01") / "func").glob("*run-01*"))],
         16, ("task-nam ing", "BIDS")),
    Case("dataset-path-with-spaces-and-shell-characters", "19.4",
         lambda e: _move_dataset(e, "my data; $HOME 'x'"),
         0, ("Methods text written",)),
    # -- 19.5: truncated data --------------------------------------------------------------------
    Case("meg-fif-cut-to-half", "19.5", lambda e: _cut_to_half(_meg(e)),
         65, ("sub-01_task-naming_run-01_meg.fif", "truncated")),
    Case("bold-nii-gz-cut-to-half", "19.5", lambda e: _cut_to_half(_func(e)),
         65, ("sub-01_task-naming_run-01_bold.nii.gz", "truncated")),
    Case("bold-nii-cut-to-half", "19.5",
         lambda e: (_func(e).unlink(),
                    write_nifti(_func(e, suffix="bold.nii")),
                    _cut_to_half(_func(e, suffix="bold.nii"))),
         65, ("sub-01_task-naming_run-01_bold.nii", "truncated")),
    Case("t1w-cut-to-half", "19.5", lambda e: _cut_to_half(_t1w(e, "02")),
         65, ("sub-02_T1w.nii.gz", "truncated")),
    Case("simulated-meg-fif-cut-to-half", "19.5", lambda e: _cut_to_half(_meg(e)),
         65, ("sub-01_task-naming_run-01_meg.fif", "truncated"), simulated=True),
    Case("simulated-bold-cut-to-half", "19.5", lambda e: _cut_to_half(_func(e)),
         65, ("sub-01_task-naming_run-01_bold.nii.gz", "truncated"), simulated=True),
    # -- 19.6: checks that came too late ------------------------------------------------------------
    Case("meg-sampling-rate-below-band", "19.6", _sampling_rate_too_low,
         65, ("sub-01_task-naming_run-01_meg.fif", "highgamma", "150 Hz")),
    Case("meg-events-outside-recording", "19.6",
         lambda e: _edit_events(_meg(e, suffix="events.tsv"), lambda t: _shift_stimuli(t, 1000)),
         65, ("sub-01_task-naming_run-01_events.tsv", "outside the recording")),
    Case("bold-events-outside-run", "19.6",
         lambda e: _edit_events(_func(e, suffix="events.tsv"), lambda t: _shift_stimuli(t, 1000)),
         65, ("sub-01_task-naming_run-01_events.tsv", "shorter than its events")),
    Case("repetition-time-disagrees-with-header", "19.6",
         lambda e: (e.bids / "task-naming_bold.json").write_text('{"RepetitionTime": 2.0}'),
         65, ("RepetitionTime", "2 s", "3 s", "header")),
    # -- 19.11: selections and folders -------------------------------------------------------------
    Case("filter-matches-nothing", "19.11", _filter_file,
         18, ("filter", "bold", "nope")),
    Case("participant-label-prefix-only", "19.11", _with("--participant-label", "sub-"),
         64, ("'sub-'", "Empty")),
    Case("participant-label-beside-a-file-of-that-name", "19.11", _labels_file_named_01,
         0, ("Plan for sub-01", "from the command line"), absent=("Plan for sub-02",)),
    Case("participant-label-file", "19.11", _labels_file,
         0, ("Plan for sub-02", "subjects.txt"), absent=("Plan for sub-01",)),
    Case("work-folder-read-only", "19.11", _read_only_work,
         73, ("work folder",)),
    # -- field: what users of fMRIPrep and MNE-BIDS-Pipeline hit with their datasets ---------------
    Case("bold-sidecar-missing", "field",
         lambda e: (e.bids / "task-naming_bold.json").unlink(),
         65, ("sub-01_task-naming_run-01_bold.nii.gz", "RepetitionTime")),
    Case("repetition-time-in-milliseconds", "field",
         lambda e: (e.bids / "task-naming_bold.json").write_text('{"RepetitionTime": 3000}'),
         65, ("RepetitionTime", "milliseconds")),
    Case("events-without-trial-type", "field",
         lambda e: _edit_events(_func(e, suffix="events.tsv"),
                                lambda t: t.rename(columns={"trial_type": "condition"})),
         65, ("sub-01_task-naming_run-01_events.tsv", "trial_type")),
    Case("events-onset-not-a-number", "field",
         lambda e: _edit_events(_meg(e, suffix="events.tsv"),
                                lambda t: t.assign(onset=[t["onset"][0], "n/a"]
                                                   + list(t["onset"][2:]))),
         65, ("sub-01_task-naming_run-01_events.tsv", "onset")),
    Case("events-comma-separated", "field", _comma_separated_events,
         65, ("sub-01_task-naming_run-01_events.tsv", "tab")),
    Case("events-empty-file", "field",
         lambda e: _func(e, suffix="events.tsv").write_text(""),
         65, ("sub-01_task-naming_run-01_events.tsv",)),
    Case("events-header-only", "field",
         lambda e: _func(e, suffix="events.tsv").write_text("onset\tduration\ttrial_type\n"),
         65, ("sub-01_task-naming_run-01_events.tsv", "no stimulus")),
    Case("events-not-utf8", "field",
         lambda e: _func(e, suffix="events.tsv").write_bytes(
             "onset\tduration\ttrial_type\n40\t0.3\tobjet_\xe9t\xe9\n".encode("latin-1")),
         65, ("sub-01_task-naming_run-01_events.tsv", "UTF-8")),
    Case("events-missing", "field", lambda e: _func(e, suffix="events.tsv").unlink(),
         66, ("No events file", "sub-01_task-naming_run-01_bold.nii.gz")),
    Case("bold-3d", "field", lambda e: write_nifti(_func(e), shape=(4, 4, 4)),
         65, ("sub-01_task-naming_run-01_bold.nii.gz", "4-D")),
    Case("bold-empty-file", "field", lambda e: _func(e).write_bytes(b""),
         65, ("sub-01_task-naming_run-01_bold.nii.gz", "empty")),
    Case("bold-not-nifti", "field", lambda e: _func(e).write_bytes(b"not an image" * 100),
         65, ("sub-01_task-naming_run-01_bold.nii.gz", "NIfTI")),
    Case("meg-not-fif", "field", lambda e: _meg(e).write_bytes(b"not a recording" * 100),
         65, ("sub-01_task-naming_run-01_meg.fif", "FIF")),
    Case("meg-without-gradiometers", "field", _meg_without_gradiometers,
         65, ("sub-01_task-naming_run-01_meg.fif", "gradiometers", "ch_type")),
    Case("data-not-retrieved-with-datalad", "field", _broken_annex_link,
         66, ("sub-01_task-naming_run-01_bold.nii.gz", "datalad get")),
    Case("ds000117-empty-data-files", "field", _ds000117,
         65, ("empty (0 bytes)", "sub-01_ses-meg_task-facerecognition_run-01_meg.fif"),
         needs_shared=True),
    Case("dataset-description-not-json", "field",
         lambda e: (e.bids / "dataset_description.json").write_text("{'Name': 'x',}"),
         16, ("dataset_description.json", "JSON")),
    Case("sidecar-not-json", "field",
         lambda e: (e.bids / "task-naming_bold.json").write_text('{"RepetitionTime": 3.0,}'),
         16, ("task-naming_bold.json", "JSON")),
    Case("output-dir-empty", "field",
         lambda e: setattr(e, "positional", [str(e.bids), "", "participant"]),
         64, ("output_dir", "empty", "unset shell variable")),
    Case("work-dir-empty", "field", _with("--work-dir", ""), 64, ("--work-dir", "empty")),
    Case("bids-dir-is-a-file", "field",
         lambda e: setattr(e, "positional", [str(e.bids / "dataset_description.json"),
                                             str(e.out), "participant"]),
         64, ("is a file",)),
    Case("unknown-participant", "field", _with("--participant-label", "07"),
         18, ("sub-07 not found", "sub-01, sub-02")),
    Case("unknown-task", "field", _with("--task", "rest"),
         18, ("rest", "naming")),
    Case("unknown-session", "field", _with("--session-label", "mri"),
         18, ("ses-mri",)),
    # -- 19.7: what made the app wait forever ------------------------------------------------------
    Case("symlink-loop-in-a-subject", "19.7", _link_loop("bids/sub-01/anat/up", "../.."),
         65, ("loop of symbolic links", "sub-01/anat/up", "Remove or correct that link")),
    Case("symlink-loop-in-stimuli", "19.7", _link_loop("bids/stimuli/up", ".."),
         65, ("loop of symbolic links", "stimuli/up")),
    Case("symlink-loop-in-emptyroom", "19.7",
         lambda e: (_link_loop("bids/sub-emptyroom/up", "..")(e),
                    e.options.extend(["--participant-label", "01"])),
         65, ("loop of symbolic links", "sub-emptyroom/up")),
    Case("derivatives-freesurfer-is-a-link-loop", "19.7",
         _link_loop("bids/derivatives/freesurfer", "freesurfer"),
         65, ("derivatives/freesurfer", "loop of symbolic links")),
    Case("fs-subjects-dir-is-a-link-loop", "19.7",
         lambda e: (_link_loop("fs", "fs")(e),
                    e.options.extend(["--fs-subjects-dir", str(e.root / "fs")])),
         65, ("--fs-subjects-dir", "loop of symbolic links")),
    Case("output-folder-is-a-link-loop", "19.7", _output_is_a_link_loop,
         73, ("output folder", "loop of symbolic links")),
    Case("memory-below-every-step", "19.7", _with("--mem-gb", "0.005"),
         64, ("--mem-gb = 0.005 GB", "forward_model", "Set --mem-gb to at least")),
    Case("plugin-memory-below-every-step", "19.7",
         _file_option("--use-plugin", "plugin.yml",
                      "plugin: MultiProc\nplugin_args: {memory_gb: 0.005, n_procs: 2}\n"),
         64, ("memory_gb (plugin file) = 0.005 GB", "forward_model")),
    # -- 19.8: values out of range, wherever they come from ----------------------------------------
    Case("filter-value-is-an-object", "19.8",
         _file_option("--bids-filter-file", "filter.json", '{"bold": {"session": {"a": 1}}}'),
         64, ("entity 'session' of 'bold'", "{'a': 1}")),
    Case("filter-file-not-utf8", "19.8",
         _file_option("--bids-filter-file", "filter.json", b'{"bold": {"session": "\xe9"}}'),
         64, ("filter.json", "not UTF-8", "save it as UTF-8")),
    Case("band-edges-as-strings", "19.8",
         _file_option("--config", "c.toml", '[meg.bands]\nalpha = ["8", "13"]\n'),
         64, ("meg.bands", "c.toml", "numbers")),
    Case("no-analysis-window", "19.8", _file_option("--config", "c.toml", "[meg]\nn_windows = 0\n"),
         64, ("meg.n_windows", ">= 1", "got 0")),
    Case("zero-processes-in-config", "19.8",
         _file_option("--config", "c.toml", "[nipype]\nnprocs = 0\n"),
         64, ("nipype.nprocs", "got 0")),
    Case("zero-processes", "19.8", _with("--nprocs", "0"), 64, ("nprocs", "got 0")),
    Case("negative-threads", "19.8", _with("--omp-nthreads", "-1"),
         64, ("omp_nthreads", "got -1")),
    Case("zero-memory", "19.8", _with("--mem-gb", "0"), 64, ("mem_gb", "> 0", "got 0")),
    Case("memory-not-a-number", "19.8", _with("--mem-gb", "nan"), 64, ("mem_gb", "nan")),
    Case("negative-dummy-scans", "19.8",
         _file_option("--config", "c.toml", "[fmri]\ndummy_scans = -2\n"),
         64, ("fmri.dummy_scans", "got -2")),
    Case("no-bootstrap", "19.8", _with("--n-bootstrap", "0"), 64, ("n_bootstrap", "got 0")),
    Case("no-cluster", "19.8", _with("--n-clusters", "0"), 64, ("n_clusters", "got 0")),
    Case("plugin-arguments-not-a-table", "19.8",
         _file_option("--use-plugin", "plugin.yml", "plugin: MultiProc\nplugin_args: 5\n"),
         64, ("plugin.yml", "plugin_args", "table")),
    Case("plugin-memory-below-zero", "19.8",
         _file_option("--use-plugin", "plugin.yml",
                      "plugin: MultiProc\nplugin_args: {memory_gb: -1}\n"),
         64, ("plugin.yml", "'memory_gb'", "> 0")),
    Case("plugin-file-not-yaml", "19.8",
         _file_option("--use-plugin", "plugin.yml", "plugin: [MultiProc\n"),
         64, ("plugin.yml", "YAML")),
    Case("config-not-utf8", "19.8",
         _file_option("--config", "c.toml", b"[meg]\norigin = '\xe9'\n"),
         64, ("c.toml", "not UTF-8", "save it as UTF-8")),
    Case("negative-memory-in-config", "19.8",
         _file_option("--config", "c.toml", "[nipype]\nmem_gb = -1\n"),
         64, ("nipype.mem_gb", "c.toml", "got -1")),
    Case("negative-seed", "19.8", _with("--random-seed", "-5"),
         64, ("--random-seed", "got -5")),
    Case("more-threads-than-processes", "19.8", _with("--nprocs", "1", "--omp-nthreads", "2"),
         64, ("--omp-nthreads", "cannot exceed", "--nprocs")),
    Case("no-bands", "19.8", _file_option("--config", "c.toml", "[meg]\nbands = {}\n"),
         64, ("meg.bands", "c.toml")),
    Case("too-few-observations-for-the-bootstrap", "19.8",
         _file_option("--config", "c.toml", "[stats]\nmin_observations = 3\n"),
         64, ("min_observations", "bootstrap_fraction", "at least 4")),
    Case("unknown-plugin", "19.8", _file_option("--use-plugin", "plugin.yml", "plugin: Foo\n"),
         64, ("plugin.yml", "'Foo'", "MultiProc")),
    Case("plugin-argument-misspelt", "19.8",
         _file_option("--use-plugin", "plugin.yml",
                      "plugin: MultiProc\nplugin_args: {n_proc: 2}\n"),
         64, ("plugin.yml", "'n_proc'", "n_procs")),
    Case("plugin-argument-of-the-wrong-type", "19.8",
         _file_option("--use-plugin", "plugin.yml",
                      "plugin: MultiProc\nplugin_args: {n_procs: two}\n"),
         64, ("plugin.yml", "'n_procs'", "two")),
    Case("atlas-name-with-a-slash", "19.8", _with("--atlas", "../../aparc"),
         64, ("--atlas", "../../aparc")),
    # -- the group level and --reports-only: the same folder rules -------------------------------
    Case("group-output-is-a-raw-dataset", "19.3",
         lambda e: (_another_raw_dataset(e), _group(atlas_outputs=None)(e)),
         64, ("other-study", "raw BIDS dataset")),
    Case("group-output-is-derivatives-freesurfer", "19.3",
         lambda e: (setattr(e, "out", e.bids / "derivatives" / "freesurfer"),
                    (e.out / "fsaverage").mkdir(parents=True), _group(atlas_outputs=None)(e)),
         64, ("FreeSurfer",)),
    Case("group-task-with-a-slash", "19.8", _group("--task", "a/b"),
         64, ("--task", "'a/b'", "letters and digits")),
    Case("group-named-atlas-not-in-the-outputs", "19.2", _group("--atlas", "desikan"),
         66, ("atlas-desikan", "atlas-fallback", "--atlas")),
    Case("group-too-few-observations", "field", _group(observations=2),
         65, ("Only 2 (subject, run) observation(s)", "min_observations")),
    Case("group-more-clusters-than-parcels", "field", _group(observations=5),
         64, ("--n-clusters", "17", "4 parcels", "at most 4")),
    Case("group-boilerplate-only", "field", _group("--boilerplate-only"),
         64, ("--boilerplate-only", "participant")),
    Case("reports-only-output-inside-dataset", "19.3",
         lambda e: (_inside_dataset_earlier_output(e), e.options.append("--reports-only")),
         64, ("inside the input dataset",)),
    Case("reports-only-saved-inputs-cut", "field", _report_inputs_cut,
         65, ("sub-01.json", "cannot be read", "participant level")),
    Case("reports-only-swapped", "19.3",
         lambda e: (_swap_with_earlier_output(e), e.options.append("--reports-only")),
         64, ("swap",)),
]


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory) -> Path:
    """One simulated subject with one run (a realistic FIF and BOLD; about 20 s)."""
    from bids_app.cli.simulate import simulate

    root = tmp_path_factory.mktemp("simulated") / "bids"
    simulate(root, preset="small", n_subjects=1, n_runs=1, seed=0, n_jobs=1)
    return root


def _environment(env: Env) -> dict[str, str]:
    """The run's environment: its own home, temporary folder and empty atlas caches, and no
    FreeSurfer, so that every case finds the same things wherever the battery runs."""
    drop = ("FREESURFER_HOME", "FS_LICENSE", "SUBJECTS_DIR", "TEMPLATEFLOW_HOME", "NILEARN_DATA")
    variables = {k: v for k, v in os.environ.items() if k not in drop}
    home = env.root / "home"
    variables.update(
        HOME=str(home), TMPDIR=str(env.root / "tmp"),
        TEMPLATEFLOW_HOME=str(home / "templateflow"), NILEARN_DATA=str(home / "nilearn_data"),
        # matplotlib builds its font cache on first use: a library cache, kept apart
        MPLCONFIGDIR=str(env.root / "mplconfig"), NIPYPE_NO_ET="1",
    )
    return variables


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, request) -> None:
    if case.needs_shared and not FSAVERAGE_LABELS.is_dir():
        pytest.skip(f"shared test data not found in {SHARED}")
    root = tmp_path
    if case.simulated:
        shutil.copytree(request.getfixturevalue("simulated_run"), root / "bids")
    else:
        make_skeleton(root / "bids")
    env = Env(root=root, bids=root / "bids", out=root / "out", work=root / "work")
    for folder in ("home", "tmp", "cwd", "mplconfig"):
        (root / folder).mkdir()
    try:
        case.make(env)
        before = fingerprint(root, skip=(root / "mplconfig",))
        done = subprocess.run(env.argv(), capture_output=True, text=True, cwd=env.cwd,
                              env=_environment(env), timeout=600)
        after = fingerprint(root, skip=(root / "mplconfig",))
    finally:
        if env.work.is_dir() and os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(env.work)], capture_output=True)
    text = done.stdout + done.stderr
    shown = f"\n--- exit {done.returncode}; output:\n{text[-4000:]}"
    assert "Traceback" not in text, shown
    assert done.returncode == case.code, shown
    for word in case.words:
        assert word in text, f"{word!r} not in the message" + shown
    for word in case.absent:
        assert word not in text, f"{word!r} in the message" + shown

    # the dataset, and every folder besides the output and work folders, is unchanged
    written = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    if case.code != 0:
        assert not written, f"a refused run wrote {sorted(written)}" + shown
    else:
        allowed = [env.out, env.work]
        outside = sorted(k for k in written
                         if not any((root / k.rstrip("/")).is_relative_to(a) for a in allowed))
        assert not outside, f"written outside the output and work folders: {outside}" + shown
        assert (env.out / "logs" / "CITATION.md").is_file()


# --------------------------------------------------------------------------------------------------
# Bad data found inside the graph: the step's message and exit code 65, no traceback
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_no_block_with_enough_trials_for_dics_ends_with_65_naming_the_events(tmp_path):
    """A bad-data error raised by the pure code inside a nipype step (here DICS: no block keeps
    ``min_trials_per_block`` trials) reaches the terminal as the step's message naming the
    run's events file, with exit code 65 and no traceback; it left with exit 1, a bare
    ValueError and a crash file to read. The check cannot be made from headers before the
    graph runs (the trials kept depend on the EOG rejection)."""
    from bids_app.cli.simulate import simulate

    bids = tmp_path / "bids"
    simulate(bids, preset="small", n_subjects=1, n_runs=1, seed=4, n_jobs=2)
    env = Env(root=tmp_path, bids=bids, out=tmp_path / "out", work=tmp_path / "work",
              boilerplate_only=False)
    for folder in ("home", "tmp", "cwd", "mplconfig"):
        (tmp_path / folder).mkdir()
    _file_option("--config", "c.toml", "[meg]\nmin_trials_per_block = 1000\n")(env)
    env.options += ["--stop-on-first-crash", "--nprocs", "2", "--omp-nthreads", "1"]
    done = subprocess.run(env.argv(), capture_output=True, text=True, cwd=env.cwd,
                          env=_environment(env), timeout=1800)
    text = done.stdout + done.stderr
    shown = f"\n--- exit {done.returncode}; output:\n{text[-4000:]}"
    assert "Traceback" not in text, shown
    assert done.returncode == 65, shown
    events = next(bids.glob("sub-*/meg/*_events.tsv"))
    for word in (str(events), "No block has enough trials left for DICS",
                 "min_trials_per_block = 1000", "--config"):
        assert word in text, f"{word!r} not in the message" + shown
    assert "crash report:" not in text, shown
