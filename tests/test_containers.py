"""Container recipes and the Boutiques descriptor."""

from __future__ import annotations

import json
import re
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
    """hadolint passes with every rule on: the configuration ignores none (issue 20.3)."""
    import yaml

    config = yaml.safe_load((ROOT / ".hadolint.yaml").read_text())
    assert not config.get("ignored"), "a hadolint rule is ignored"
    out = subprocess.run([_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"),
                          str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_prefetches_and_is_offline():
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["megfmri-fusion"]' in text
    for needed in ("MPLCONFIGDIR=", "NIPYPE_NO_ET=1", "TEMPLATEFLOW_HOME=", "FREESURFER_HOME=",
                   "fetch_atlas_surf_destrieux", "MEGFMRI_CONTAINER=docker",
                   "atlas='Destrieux2009'", "find_atlas('destrieux')"):
        assert needed in text, needed
    singularity = (ROOT / "Singularity").read_text()
    assert "Bootstrap: docker" in singularity and 'exec megfmri-fusion "$@"' in singularity
    for doc in re.findall(r"docs/[\w./-]+\.md", singularity):
        assert (ROOT / doc).is_file(), f"Singularity %help points to {doc}, which does not exist"


def test_dockerfile_pins_what_it_downloads():
    """The base by digest, Debian packages by version, FreeSurfer by SHA-256, Python packages
    by version and hash; dependency layers before the source (issue 20.3)."""
    lines = _dockerfile_lines()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), flags=re.M))
    assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", args["BASE_IMAGE"])
    assert all(line.split()[1] == "${BASE_IMAGE}" for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"[0-9a-f]{64}", args["FREESURFER_SHA256"])
    curl = [line for line in lines if "curl " in line and "freesurfer" in line]
    assert curl and all("sha256sum --check" in line for line in curl)
    for line in lines:
        if "apt-get install" in line:
            packages = [t for t in line.split("apt-get install", 1)[1].split("&&")[0].split()
                        if not t.startswith("-")]
            assert packages and all("=" in t for t in packages), line
    pip = [line for line in lines if "pip install" in line]
    assert "--require-hashes" in pip[0] and "image-requirements.txt" in pip[0]
    order = [i for i, line in enumerate(lines) if line.startswith("COPY ")]
    copies = [lines[i] for i in order]
    assert copies.index(next(c for c in copies if "image-requirements.txt" in c)) < copies.index(
        next(c for c in copies if "bids_app" in c)), "the source is copied before the dependencies"
    for label in ("source", "revision", "created", "version"):
        assert f"org.opencontainers.image.{label}=" in "\n".join(lines)


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_lock_files_agree():
    """constraints.txt (CI, the README) and image-requirements.txt (the image) hold the same
    versions, every image requirement has a hash, and the run-time dependencies and their floors
    are covered (issue 20.3)."""
    import tomllib

    from packaging.requirements import Requirement

    constraints = _pins(ROOT / "constraints.txt")
    image = _pins(ROOT / "image-requirements.txt")
    assert image and all(constraints.get(name) == version for name, version in image.items())
    text = (ROOT / "image-requirements.txt").read_text()
    assert text.count("==") == text.count("--hash=sha256:")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in image, f"{name} is not in image-requirements.txt"
        assert req.specifier.contains(image[name]), f"{name} {image[name]} violates {spec}"
    for spec in project["optional-dependencies"]["test"]:
        req = Requirement(spec)
        assert re.sub(r"[-_.]+", "-", req.name).lower() in constraints
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "-c constraints.txt" in ci and "-c constraints.txt" in readme


def test_version_is_written_once():
    """The version lives in bids_app/__init__.py; the recipes take it as a build argument
    (checked against the package by the Docker build) and other files do not repeat it."""
    from bids_app import __version__

    for name in ("Dockerfile", "Singularity", "README.md", "docs/containers.md", ".ci/run"):
        text = (ROOT / name).read_text()
        assert __version__ not in text, f"{name} repeats the version {__version__}"
    assert 'version = { attr = "bids_app.__version__" }' in (ROOT / "pyproject.toml").read_text()
