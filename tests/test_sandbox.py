"""The app on the platforms users run it on (issue 20): the Brainlife App's ``main`` on a
generated ``config.json``, and both levels under a container's conditions (bubblewrap).

One simulated study serves both: the smallest that runs the group level (one subject with three
runs, one block per condition: three observations, the group minimum set to three and every
bootstrap resample drawing all of them). Brainlife's ``main`` runs both levels on it outside any
sandbox, from input files staged as Brainlife stages them; then both levels run inside
bubblewrap with the root file system and the dataset read-only, user id 1000, no network,
``$HOME`` and ``/tmp`` not writable, only the output and work folders writable, and the image's
environment variables parsed from the Dockerfile (tests/sandbox.py). The sandboxed run must
write the same tables, byte for byte, and no write may have been refused on the way.

Measured on 2 cores (see docs/containers.md): simulation ~30 s, each run of both levels a few
minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import bwrap, dockerfile_env, sandbox_command, writes_denied
from skeleton import fingerprint, tables

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "meg": {"find_bad_channels": False},
    "stats": {"n_bootstrap": 200, "min_observations": 3, "bootstrap_fraction": 1.0,
              "n_clusters": 4},
}


def _toml(settings: dict) -> str:
    import tomli_w

    return tomli_w.dumps(settings)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from bids_app.cli.simulate import _template_anatomy
    from bids_app.simulate.design import make_design
    from bids_app.simulate.effects import EFFECT_SETS
    from bids_app.simulate.writer import write_dataset

    root = tmp_path_factory.mktemp("platforms")
    design = make_design("small", n_subjects=1, n_runs=3, blocks_per_condition=1)
    start = time.monotonic()
    bids = write_dataset(root / "bids", design=design,
                         effects=EFFECT_SETS["default"](design.conditions),
                         anatomy=_template_anatomy("auto"), seed=4, preset="small", n_jobs=2)
    config = root / "settings.toml"
    config.write_text(_toml(SETTINGS))
    return {"root": root, "bids": bids, "config": config,
            "simulate_s": time.monotonic() - start}


def _image_env(home: Path) -> dict[str, str]:
    """The image's environment (Dockerfile ENV), the venv's commands first on PATH."""
    from bids_app import __version__

    env = dockerfile_env(ROOT / "Dockerfile", {"VERSION": __version__})
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["HOME"] = str(home)
    # the host's choice of OpenBLAS kernel (a machine setting, not the image's): another kernel
    # sums in another order and changes the last bits of the DICS powers (measured: 2e-9)
    env.update({k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")})
    return env


# -- Brainlife ------------------------------------------------------------------------------------
def _stage(study, folder: Path) -> dict:
    """Stage the study's files as Brainlife does (one folder per input object, generic file
    names) and return the App's config.json."""
    bids = study["bids"]
    inherited = json.loads((bids / "task-naming_bold.json").read_text())
    config: dict = {"_inputs": [], "analysis_level": "both", "random_seed": 1, "nprocs": 2,
                    "settings": SETTINGS}
    for key in ("fif", "meg_events", "channels", "meg_json", "coordsystem", "bold",
                "bold_events", "bold_json"):
        config[key] = []
    for run in (1, 2, 3):
        name = f"sub-01_task-naming_run-{run:02d}"
        meg = folder / f"meg-{run}"
        func = folder / f"func-{run}"
        for obj in (meg, func):
            obj.mkdir(parents=True)
        for key, src, dst in (
                ("fif", f"meg/{name}_meg.fif", meg / "meg.fif"),
                ("meg_events", f"meg/{name}_events.tsv", meg / "events.tsv"),
                ("channels", f"meg/{name}_channels.tsv", meg / "channels.tsv"),
                ("meg_json", f"meg/{name}_meg.json", meg / "meg.json"),
                ("coordsystem", "meg/sub-01_coordsystem.json", meg / "coordsystem.json"),
                ("bold", f"func/{name}_bold.nii.gz", func / "bold.nii.gz"),
                ("bold_events", f"func/{name}_events.tsv", func / "events.tsv")):
            shutil.copyfile(bids / "sub-01" / src, dst)
            config[key].append(str(dst))
        (func / "bold.json").write_text(json.dumps(inherited))
        config["bold_json"].append(str(func / "bold.json"))
        meta = {"subject": "01", "task": "naming", "run": str(run)}
        config["_inputs"] += [{"id": "meg", "meta": meta}, {"id": "func", "meta": meta}]
    anat = folder / "t1w"
    anat.mkdir()
    shutil.copyfile(bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz", anat / "t1.nii.gz")
    shutil.copyfile(bids / "sub-01" / "anat" / "sub-01_T1w.json", anat / "t1.json")
    config.update(t1=str(anat / "t1.nii.gz"), t1_json=str(anat / "t1.json"))
    shutil.copytree(bids / "derivatives" / "freesurfer" / "sub-01", folder / "freesurfer")
    config["freesurfer"] = str(folder / "freesurfer")
    config["_inputs"] += [{"id": "t1w", "meta": {"subject": "01"}},
                          {"id": "freesurfer", "meta": {"subject": "01"}}]
    return config


@pytest.fixture(scope="module")
def brainlife(study):
    """Brainlife's ``main`` on a generated config.json, both levels, outside any sandbox."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (Brainlife's main reads config.json with it; "
                    ".ci/run installs it)")
    job = study["root"] / "brainlife"
    staged = study["root"] / "staged"
    config = _stage(study, staged)
    job.mkdir()
    (job / "config.json").write_text(json.dumps(config, indent=2))
    home = study["root"] / "home-brainlife"
    home.mkdir()
    start = time.monotonic()
    proc = subprocess.run([str(ROOT / "main")], cwd=job, env=_image_env(home),
                          capture_output=True, text=True, timeout=3600)
    return {"job": job, "proc": proc, "seconds": time.monotonic() - start,
            "out": job / "output"}


def test_brainlife_main_runs_both_levels(brainlife):
    proc, job = brainlife["proc"], brainlife["job"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    bids = job / "bids"
    assert (bids / "sub-01" / "meg" / "sub-01_task-naming_run-02_meg.fif").is_symlink()
    assert (bids / "derivatives" / "freesurfer" / "sub-01").is_symlink()
    out = brainlife["out"]
    assert len(list(out.glob("sub-01/func/*_desc-blocks_bold.tsv"))) == 3
    assert list(out.glob("group/task-naming_atlas-*_desc-effects_table.tsv"))
    product = json.loads((job / "product.json").read_text())
    assert "exit code 0" in product["brainlife"][0]["msg"]


def test_brainlife_config_errors_are_named(tmp_path):
    from bids_app.cli.brainlife import main

    (tmp_path / "config.json").write_text(json.dumps({"fif": [str(tmp_path / "x.fif")],
                                                       "_inputs": []}))
    assert main([str(tmp_path / "config.json"), str(tmp_path / "bids"),
                 str(tmp_path / "work")]) == 64


# -- The container's conditions -------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandboxed(study):
    """Both levels inside bubblewrap."""
    if bwrap() is None:
        pytest.skip("bubblewrap (bwrap) is not installed; .ci/run installs the Debian package")
    root = study["root"]
    out, work, home = root / "sandboxed-out", root / "sandboxed-work", root / "home-sandbox"
    for folder in (out, work, home):
        folder.mkdir()
    env = _image_env(Path("/home/megfmri"))  # the image's HOME: absent here, so not writable
    probe = subprocess.run(sandbox_command(["true"], writable=[work], env=env, cwd=work),
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"bubblewrap cannot make a sandbox here (user namespaces?): {probe.stderr}")
    before = fingerprint(study["bids"])
    common = ["-w", str(work), "--nprocs", "2", "--random-seed", "1",
              "--config", str(study["config"])]
    runs = {}
    for level, extra in (("participant", []), ("group", ["--skip-bids-validation"])):
        command = ["megfmri-fusion", str(study["bids"]), str(out), level, *common, *extra]
        start = time.monotonic()
        proc = subprocess.run(
            sandbox_command(command, writable=[out, work], read_only=[study["bids"]], env=env,
                            cwd=work),
            capture_output=True, text=True, timeout=3600)
        runs[level] = (proc, time.monotonic() - start)
    return {"out": out, "work": work, "runs": runs, "before": before, "home": home}


def test_both_levels_run_in_the_sandbox(sandboxed):
    for level, (proc, _) in sandboxed["runs"].items():
        assert proc.returncode == 0, f"{level}: {proc.stderr[-3000:]}"


def test_sandbox_gives_the_same_tables(sandboxed, brainlife):
    """Every table of both levels, byte for byte, as outside the sandbox."""
    assert brainlife["proc"].returncode == 0
    inside, outside = tables(sandboxed["out"]), tables(brainlife["out"])
    assert len(inside) > 10 and sorted(inside) == sorted(outside)
    different = [name for name in inside if inside[name] != outside[name]]
    assert not different, f"tables differ inside the sandbox: {different}"


def test_sandbox_refused_no_write(sandboxed, study):
    """Nothing was written outside the output and work folders: the dataset is unchanged, and
    no step met a refused write (which it might have tolerated) in the log or on the console."""
    assert fingerprint(study["bids"]) == sandboxed["before"]
    logs = "".join(p.read_text() for p in (sandboxed["out"] / "logs").glob("*.log"))
    console = "".join(proc.stderr + proc.stdout for proc, _ in sandboxed["runs"].values())
    assert not writes_denied(logs + console), writes_denied(logs + console)[:5]
    description = json.loads((sandboxed["out"] / "dataset_description.json").read_text())
    assert description["GeneratedBy"][0]["Container"]["Type"] == "docker"


def test_report_times(sandboxed, brainlife, study, capsys):
    """Not a check: the measured times, for docs/containers.md (visible with -s)."""
    times = {"simulate_s": round(study["simulate_s"]),
             "brainlife_both_levels_s": round(brainlife["seconds"]),
             **{f"sandboxed_{level}_s": round(t) for level, (_, t) in sandboxed["runs"].items()}}
    with capsys.disabled():
        print(f"\nplatform timings: {json.dumps(times)}")
    assert all(value >= 0 for value in times.values())
