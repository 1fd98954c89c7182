"""Container recipes and the Boutiques descriptor."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bids_app.cli.boutiques import descriptor

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(exe).exists():
        pytest.skip(f"{name} is not installed (pip install -e .[test])")
    return exe


def test_boutiques_json_is_the_generated_descriptor():
    on_disk = json.loads((ROOT / "boutiques.json").read_text())
    assert on_disk == descriptor(), (
        "boutiques.json is out of date: run 'python -m bids_app.cli.boutiques boutiques.json'"
    )


def test_bosh_validate_bids():
    """Boutiques' own BIDS-App checks (command-line template, output folder inputs and single
    output; issue 20.4), and what the BIDS Apps execution specification asks of a descriptor:
    custom.BIDSAppSpecVersion, defaults of the options that have one."""
    out = subprocess.run([_tool("bosh"), "validate", "--bids", str(ROOT / "boutiques.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BIDS validation OK" in out.stdout + out.stderr
    spec = json.loads((ROOT / "boutiques.json").read_text())
    assert spec["custom"]["BIDSAppSpecVersion"]
    defaults = {i["id"]: i.get("default-value") for i in spec["inputs"]}
    assert (defaults["atlas"], defaults["n_clusters"], defaults["n_bootstrap"]) == (
        "auto", 17, 10000)
    assert spec["suggested-resources"]["walltime-estimate"] >= 8 * 3600, "shorter than recon-all"


def test_bids_apps_spellings_are_accepted(tmp_path):
    """The BIDS-Apps example's option spellings (--participant_label, --skip_bids_validator)."""
    from bids_app.cli.parser import parse_args

    ns, overrides = parse_args([str(tmp_path), str(tmp_path / "out"), "participant",
                                "--participant_label", "01", "--skip_bids_validator"])
    assert overrides["execution"]["skip_bids_validation"] is True
    assert overrides["execution"]["participant_label"] == ["01"]


def test_bosh_builds_the_command_line(tmp_path):
    invocation = tmp_path / "invocation.json"
    invocation.write_text(json.dumps({
        "bids_dir": "/data", "output_dir_name": "/out", "analysis_level": "participant",
        "participant_label": ["01", "02"], "nprocs": 2, "skip_bids_validation": True,
    }))
    out = subprocess.run([_tool("bosh"), "exec", "simulate", str(ROOT / "boutiques.json"),
                          "-i", str(invocation)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # options with a default are passed explicitly by Boutiques (docs/containers.md)
    assert ("mkdir -p /out; megfmri-fusion /data /out participant --participant-label 01 02 "
            "--conditions object_object action_action object_action --atlas auto "
            "--n-clusters 17 --n-bootstrap 10000 --nprocs 2 --skip-bids-validation"
            ) in out.stdout, out.stdout


def test_bosh_runs_the_app(tmp_path, skeleton, monkeypatch):
    """Boutiques launches the real command (no container) on the skeleton dataset."""
    exe = shutil.which("megfmri-fusion") or str(Path(sys.executable).parent / "megfmri-fusion")
    if not Path(exe).exists():
        pytest.skip("megfmri-fusion is not installed as a command (pip install -e .)")
    monkeypatch.setenv("PATH", f"{Path(exe).parent}:{__import__('os').environ['PATH']}")
    invocation = tmp_path / "invocation.json"
    # bosh substitutes a value-key shared by two inputs in the inputs' order, so an invocation
    # names the output folder with the first of them, output_dir_name (docs/containers.md)
    invocation.write_text(json.dumps({
        "bids_dir": str(skeleton), "output_dir_name": str(tmp_path / "out"),
        "analysis_level": "group",
    }))
    out = subprocess.run([_tool("bosh"), "exec", "launch", "--no-container",
                          str(ROOT / "boutiques.json"), str(invocation)],
                         capture_output=True, text=True, cwd=tmp_path)
    # group level before any participant output: the documented exit code 66, which Boutiques
    # explains with the descriptor's error-code text, and the app's own message
    assert "Exit code\n66" in out.stdout, out.stdout
    assert "A required input (file, named atlas or FreeSurfer licence) is missing." in out.stdout
    assert "Run the participant level into this folder first" in out.stdout


def test_dockerfile_lint():
    out = subprocess.run([_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"),
                          str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_prefetches_and_is_offline():
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["megfmri-fusion"]' in text
    for needed in ("MPLCONFIGDIR=", "NIPYPE_NO_ET=1", "TEMPLATEFLOW_HOME=", "FREESURFER_HOME=",
                   "fetch_atlas_surf_destrieux", "MEGFMRI_CONTAINER=docker"):
        assert needed in text
    singularity = (ROOT / "Singularity").read_text()
    assert "Bootstrap: docker" in singularity and 'exec megfmri-fusion "$@"' in singularity
