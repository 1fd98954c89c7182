"""``megfmri-fusion-simulate`` and ``megfmri-fusion-demo``.

``megfmri-fusion-simulate OUT_BIDS`` writes a BIDS dataset of the paper's design with planted
MEG-fMRI couplings (DESIGN 7); ``megfmri-fusion-demo OUT_DIR`` simulates the small preset, runs
the participant level for every subject and the group level, and prints where the report is.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bids_app.cli.logs import setup_console_logging
from bids_app.errors import EXIT_OK, EXIT_USAGE, AppError, UsageError

LOGGER = logging.getLogger("bids_app")


def build_simulate_parser() -> argparse.ArgumentParser:
    from bids_app.simulate.design import PRESETS

    parser = argparse.ArgumentParser(
        prog="megfmri-fusion-simulate",
        description="Write a simulated MEG+fMRI BIDS dataset of a block-design picture-naming "
        "study with known, planted MEG-fMRI couplings (truth in "
        "sourcedata/simulation/truth.json).",
    )
    parser.add_argument("out_bids", type=Path, help="folder of the new BIDS dataset")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small",
                        help="small: 8 subjects x 2 runs, 2 blocks per condition, MEG at 250 Hz "
                        "(tests, demo); paper: 10 subjects x 2 runs, 5 blocks, 600 Hz")
    parser.add_argument("--n-subjects", type=int, help="number of subjects")
    parser.add_argument("--n-runs", type=int, help="runs per subject")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--effects", default="default", metavar="NAME|FILE.json",
                        help="planted effects: 'default' (the paper's Table 1), 'recovery' "
                        "(the same, as detectable as the method allows), 'focal' (the "
                        "recovery couplings in focal sources that do not follow the analysis "
                        "parcels) or a JSON file (see docs/simulation.md)")
    parser.add_argument("--spatial-model", choices=("parcel", "focal"),
                        help="where the planted activity is (default: the effect set's)")
    parser.add_argument("--plant-atlas-file", type=Path, metavar="LH_ANNOT",
                        help="place focal sites at the centroids of the effects' regions in "
                        "this atlas on fsaverage (lh .annot or .label.gii; the rh file beside "
                        "it; e.g. lh.aparc.annot for Desikan) instead of at their locations")
    parser.add_argument("--meg-template", type=Path, help="real Neuromag recording whose sensor "
                        "geometry is used (default: a Vectorview-like array)")
    parser.add_argument("--noise-cov", type=Path, help="noise covariance matching the "
                        "--meg-template channels (default: MNE's ad-hoc covariance)")
    parser.add_argument("--sfreq", type=float, help="MEG sampling rate (Hz)")
    parser.add_argument("--atlas", default="auto", help="parcellation the effects are "
                        "planted in; use the same as the analysis (default auto: Destrieux when "
                        "an atlas file is found, else the fallback)")
    parser.add_argument("--n-jobs", type=int, help="processes in parallel (default: all CPUs)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    return parser


def simulate(out_bids: Path, *, preset: str = "small", n_subjects: int | None = None,
             n_runs: int | None = None, seed: int = 0, effects: str | Path = "default",
             meg_template: Path | None = None, noise_cov: Path | None = None,
             sfreq: float | None = None, atlas: str = "auto",
             spatial_model: str | None = None, plant_atlas_file: Path | None = None,
             overwrite: bool = False, n_jobs: int | None = None) -> Path:
    """Simulate a dataset (the function behind ``megfmri-fusion-simulate``).

    ``effects`` is the name of a shipped effect set (``EFFECT_SETS``) or a JSON file;
    ``spatial_model`` overrides its ``spatial_model``; ``plant_atlas_file`` places focal sites
    by region in that atlas (named from the file, e.g. ``desikan`` for ``lh.aparc.annot``).
    """
    from bids_app.simulate.design import make_design
    from bids_app.simulate.effects import EFFECT_SETS, load_effects
    from bids_app.simulate.writer import write_dataset

    out_bids = Path(out_bids)
    if out_bids.exists() and any(out_bids.iterdir()):
        if not overwrite:
            raise UsageError(f"{out_bids} exists and is not empty; choose a new folder or use "
                             "--overwrite.")
        shutil.rmtree(out_bids)
    for path, option in ((meg_template, "--meg-template"), (noise_cov, "--noise-cov")):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{option} {path} does not exist.")
    named_effects = EFFECT_SETS.get(str(effects))
    if named_effects is None and not Path(effects).is_file():
        raise UsageError(f"--effects {effects} does not exist (or one of {sorted(EFFECT_SETS)}).")
    design = make_design(preset, n_subjects=n_subjects, n_runs=n_runs, meg_sfreq=sfreq)
    if design.n_subjects < 1 or design.n_runs < 1:
        raise UsageError("--n-subjects and --n-runs must be at least 1.")
    effect_set = (named_effects(design.conditions) if named_effects
                  else load_effects(Path(effects), design.conditions))
    if spatial_model is not None:
        effect_set.spatial_model = spatial_model
    plant_labels = None
    if plant_atlas_file is not None:
        effect_set.spatial_model = "focal"
        effect_set.plant_atlas, plant_labels = _plant_atlas(Path(plant_atlas_file))
    anatomy = _template_anatomy(atlas)
    return write_dataset(out_bids, design=design, effects=effect_set, anatomy=anatomy,
                         seed=seed, preset=preset, meg_template=meg_template,
                         noise_cov=noise_cov, plant_labels=plant_labels, n_jobs=n_jobs)


def _plant_atlas(left: Path):
    """The planting atlas's name (from the file name, as the app names atlases) and its labels
    on both hemispheres (the right file beside the left one)."""
    from bids_app.io.atlases import _sibling, atlas_name_from_file
    from bids_app.parcels.parcellation import ParcellationError, read_annotation

    right = _sibling(left)
    for path in (left, right):
        if path is None or not path.is_file():
            raise UsageError(f"--plant-atlas-file {left}: the left-hemisphere file and the "
                             "right one beside it (lh./rh., hemi-L/hemi-R) must both exist.")
    try:
        labels = {"lh": read_annotation(left, "lh"), "rh": read_annotation(right, "rh")}
    except ParcellationError as err:
        raise UsageError(str(err)) from None
    return atlas_name_from_file(left), labels


_ANATOMY_CACHE: dict = {}


def _template_anatomy(atlas: str):
    """The template anatomy, built once per process and atlas (it is the same every time)."""
    from bids_app.simulate.anatomy import prepare_template_anatomy

    if atlas not in _ANATOMY_CACHE:
        tmp = tempfile.mkdtemp(prefix="megfmri-sim-")
        # removed when this process ends (worker processes end without running atexit)
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        _ANATOMY_CACHE[atlas] = prepare_template_anatomy(Path(tmp), atlas=atlas)
    return _ANATOMY_CACHE[atlas]


def main_simulate(argv: list[str] | None = None) -> None:
    """Entry point of ``megfmri-fusion-simulate``."""
    setup_console_logging()
    args = build_simulate_parser().parse_args(argv)
    try:
        simulate(args.out_bids, preset=args.preset, n_subjects=args.n_subjects,
                 n_runs=args.n_runs, seed=args.seed, effects=args.effects,
                 meg_template=args.meg_template, noise_cov=args.noise_cov, sfreq=args.sfreq,
                 atlas=args.atlas, spatial_model=args.spatial_model,
                 plant_atlas_file=args.plant_atlas_file, overwrite=args.overwrite,
                 n_jobs=args.n_jobs)
    except AppError as err:
        LOGGER.error("%s", err.message)
        sys.exit(err.exit_code)
    except ValueError as err:  # invalid effects file and similar
        LOGGER.error("%s", err)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_OK)


#: Settings of the demo. The simulated MEG has no bad channels, and MNE's automatic detection
#: (``find_bad_channels_maxwell``) costs about 40 s per run here, so the demo turns it off.
DEMO_CONFIG = """\
# Configuration of megfmri-fusion-demo (see docs/configuration.md).
# The simulated recordings have no bad channels: skip MNE's automatic detection (~40 s per run).
[meg]
find_bad_channels = false
"""


def demo_level_argv(bids: Path, derivatives: Path, level: str, *, work: Path, config: Path,
                    nprocs: int | None = None) -> list[str]:
    """The command line of one of the demo's levels (without the program name)."""
    argv = [str(bids), str(derivatives), level, "-w", str(work), "--random-seed", "1",
            "--config", str(config)]
    return argv + (["--nprocs", str(nprocs)] if nprocs else [])


def run_demo(out_dir: Path, *, n_subjects: int | None = None, effects: str | Path = "default",
             seed: int = 0, nprocs: int | None = None,
             plant_atlas_file: Path | None = None) -> int:
    """Simulate the small preset in ``out_dir/bids`` (unless a dataset is there), then run the
    participant and group levels into ``out_dir/derivatives``; the exit code of the first level
    that fails, else 0. ``plant_atlas_file`` places focal sites by another atlas's regions
    (:func:`simulate`)."""
    from bids_app.cli.run import run
    from bids_app.workflows.execution import cpu_seconds

    out = Path(out_dir).resolve()
    bids, derivatives, work = out / "bids", out / "derivatives", out / "work"
    stages: list[tuple[str, float, float]] = []  # (stage, wall s, CPU s)
    wall, cpu = time.monotonic(), cpu_seconds()
    if not (bids / "dataset_description.json").is_file():
        simulate(bids, preset="small", n_subjects=n_subjects, effects=effects, seed=seed,
                 plant_atlas_file=plant_atlas_file, overwrite=True)
        stages.append(("simulation", time.monotonic() - wall, cpu_seconds() - cpu))
    else:
        LOGGER.info("Reusing the simulated dataset in %s", bids)
    config = out / "demo_config.toml"
    config.write_text(DEMO_CONFIG)
    for level in ("participant", "group"):
        wall, cpu = time.monotonic(), cpu_seconds()
        code = run(demo_level_argv(bids, derivatives, level, work=work, config=config,
                                   nprocs=nprocs))
        stages.append((f"{level} level", time.monotonic() - wall, cpu_seconds() - cpu))
        if code != EXIT_OK:
            LOGGER.error("The demo stopped at the %s level (exit code %d).", level, code)
            return code
    LOGGER.info("Stage times: %s", "; ".join(
        f"{stage} {wall_s:.0f} s (CPU {cpu_s:.0f} s, {cpu_s / max(wall_s, 1e-9):.1f} cores busy)"
        for stage, wall_s, cpu_s in stages), extra={"stage_seconds": stages})
    return EXIT_OK


def main_demo(argv: list[str] | None = None) -> None:
    """Entry point of ``megfmri-fusion-demo``: simulate, participant level, group level."""
    parser = argparse.ArgumentParser(
        prog="megfmri-fusion-demo",
        description="Simulate a small study, analyse it end to end and print the report's path.",
    )
    parser.add_argument("out_dir", type=Path, help="folder for the data, outputs and work files")
    parser.add_argument("--nprocs", type=int, default=None, help="processes in parallel")
    parser.add_argument("--n-subjects", type=int, help="subjects to simulate (default 8; the "
                        "recovery study of docs/statistics.md uses 16)")
    parser.add_argument("--effects", default="default", metavar="NAME|FILE.json",
                        help="planted effects: 'default', 'recovery' or a JSON file")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    args = parser.parse_args(argv)
    setup_console_logging()
    start = time.time()
    try:
        code = run_demo(args.out_dir, n_subjects=args.n_subjects, effects=args.effects,
                        seed=args.seed, nprocs=args.nprocs)
    except AppError as err:
        LOGGER.error("%s", err.message)
        sys.exit(err.exit_code)
    except ValueError as err:  # invalid effects file and similar
        LOGGER.error("%s", err)
        sys.exit(EXIT_USAGE)
    if code != EXIT_OK:
        sys.exit(code)
    LOGGER.info("Demo finished in %.0f s.", time.time() - start)
    out = args.out_dir.resolve()
    print(f"\nGroup report:        {out / 'derivatives' / 'group.html'}")
    print(f"Participant reports: {out / 'derivatives'}/sub-*.html")
    print(f"Planted effects:     {out / 'bids' / 'sourcedata' / 'simulation' / 'truth.json'}")
    sys.exit(EXIT_OK)
