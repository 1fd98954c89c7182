"""``megfmri-fusion <bids_dir> <output_dir> participant --slurm-script``: print a SLURM
submission script for the selected participants, and stop (docs/hpc.md).

The script, run on a login node, submits one array task per participant (``sbatch --array``),
each with its own work folder and all writing into the one output folder, then the group level
as a job that starts when every task has succeeded (``--dependency=afterok``). Every task asks
for the cores of ``--nprocs`` and for the memory the app itself estimates for the participant
(:func:`bids_app.workflows.slurm.participant_mem_gb`; ``--mem-gb`` instead when given), and
passes that memory to the app as ``--mem-gb`` so that the steps it runs side by side stay within
the job's allocation.

The same checks as a participant run come first (dataset, folders, BIDS validator unless
skipped, data files, atlas, FreeSurfer licence), so a script is printed only for data the app
accepts. Nothing is written:
the settings of the run travel inside the script, which writes them beside the job logs when it
is run.
"""

from __future__ import annotations

import logging
import math
import shlex
from pathlib import Path

from bids_app import __version__
from bids_app.config import Config
from bids_app.errors import EXIT_OK

LOGGER = logging.getLogger("bids_app")

#: Wall time asked for each participant task: a base plus an allowance per run of the
#: participant with the most runs (the test study's runs take 1-2 minutes each on one core;
#: runs of the paper's length several times that, docs/hpc.md), and the hours of a FreeSurfer
#: reconstruction when one has to be made (5-8 h of one core with FreeSurfer 7).
TIME_BASE_MIN = 30
TIME_PER_RUN_MIN = 30
TIME_RECON_ALL_MIN = 10 * 60
#: Wall time asked for the group level (the paper's 10,000 bootstrap resamples of 10 subjects
#: take minutes).
GROUP_TIME_MIN = 120
#: Options of the job scripts that the settings file must not fix (each job sets its own).
_PER_JOB = {"execution": ("bids_dir", "output_dir", "analysis_level", "participant_label",
                          "work_dir", "slurm_script"),
            "nipype": ("nprocs", "omp_nthreads", "mem_gb", "plugin", "plugin_args")}


def print_slurm_script(config: Config) -> int:
    """Check the run as the participant level does, then print the submission script."""
    from bids_app.cli.participant import checked_plan
    from bids_app.workflows.base import freesurfer_reasons, init_participant_wf_from_config
    from bids_app.workflows.slurm import participant_mem_gb

    nipype = config.nipype
    plan = checked_plan(config)
    _settle_seed(config)
    reasons = freesurfer_reasons(plan, config)
    workflow = init_participant_wf_from_config(config, plan)
    memory = participant_mem_gb(workflow, nprocs=nipype.nprocs,
                                omp_nthreads=nipype.omp_nthreads)
    if nipype.mem_gb is not None:  # the user's limit wins, if every step fits in it
        from bids_app.workflows.execution import check_memory

        check_memory(list(workflow._create_flat_graph().nodes()), nipype.mem_gb, "--mem-gb")
        memory = {label: nipype.mem_gb for label in memory}
    n_runs = max(len(sub.pairs) for sub in plan.subjects)
    minutes = TIME_BASE_MIN + TIME_PER_RUN_MIN * n_runs + (TIME_RECON_ALL_MIN if reasons else 0)
    print(array_script(config, memory, time_min=minutes), end="")
    LOGGER.info("SLURM script for %d participant(s) printed: run it on a login node "
                "(docs/hpc.md)", len(memory))
    return EXIT_OK


def _settle_seed(config: Config) -> None:
    """Give every job the same seed in its settings: the given one, the output folder's, or
    one drawn now, which the first job saves in the folder (nothing is written here)."""
    from bids_app.cli.seed import choose_seed

    seed = choose_seed(config.seeds.random_seed, config.execution.output_dir)
    config.seeds.random_seed = seed.seed
    origin = (f"drawn for the jobs of this script; the first job saves it in {seed.path}"
              if seed.origin == "drawn" else seed.describe())
    LOGGER.info("Random seed %d (%s)", seed.seed, origin)


def job_settings(config: Config) -> str:
    """The run's settings as TOML, without what each job sets on its command line."""
    import tomli_w

    data = config.to_dict()
    for section, names in _PER_JOB.items():
        for name in names:
            data[section].pop(name, None)
    return tomli_w.dumps(data)


def app_command() -> str:
    """The ``megfmri-fusion`` of this installation (the jobs must run the same version), or
    the bare name when this Python has none beside it."""
    import sys

    beside = Path(sys.executable).with_name("megfmri-fusion")
    return str(beside) if beside.is_file() else "megfmri-fusion"


def _slurm_time(minutes: int) -> str:
    return f"{minutes // 60:d}:{minutes % 60:02d}:00"


def array_script(config: Config, memory: dict[str, float], *, time_min: int,
                 group_time_min: int = GROUP_TIME_MIN) -> str:
    """The submission script (bash) for the participants in ``memory`` (label -> GB the app
    needs: passed to it as ``--mem-gb``; the job asks for that plus the main process's
    :data:`~bids_app.workflows.slurm.MIN_JOB_MEM_GB`)."""
    from bids_app.workflows.group import STATISTICS_MEM_GB
    from bids_app.workflows.slurm import MIN_JOB_MEM_GB

    ex, nprocs = config.execution, config.nipype.nprocs
    app_mem = math.ceil(max(memory.values()) * 10) / 10  # GB, as the app's --mem-gb
    job_mem_mb = math.ceil((app_mem + MIN_JOB_MEM_GB) * 1024)
    group_mem_mb = math.ceil((STATISTICS_MEM_GB + MIN_JOB_MEM_GB) * 1024)
    sizes = ", ".join(f"sub-{label} {gb:.1f} GB" for label, gb in memory.items())
    settings = job_settings(config)
    if "SETTINGS_EOF" in settings:  # cannot happen with the app's options; refuse to misquote
        raise ValueError("the settings contain the script's end-of-file marker")
    q = shlex.quote
    return f"""\
#!/bin/bash
# megfmri-fusion {__version__} on SLURM (docs/hpc.md): one array task per participant, each
# with its own work folder, all writing into one output folder; then the group level, which
# starts when every task has succeeded.
#
#   bash THIS_SCRIPT            submit every participant below, then the group level
#   bash THIS_SCRIPT 03 17      submit only these participants (e.g. again, after a failure
#                               or a time limit: finished steps are reused from their work
#                               folders), then the group level
#
# Memory per task: what the app estimates for the steps a participant may run side by side
# with --nprocs {nprocs} ({sizes}), plus {MIN_JOB_MEM_GB:g} GB for the
# app's main process. Edit the variables below to change the time, the cores or the command
# (e.g. an Apptainer image); add sbatch options (partition, account) with
# MEGFMRI_SBATCH_ARGS="--partition=... --account=..." bash THIS_SCRIPT
set -euo pipefail

BIDS_DIR={q(str(ex.bids_dir))}
OUTPUT_DIR={q(str(ex.output_dir))}
# one work folder per participant below it; keep it until the study is done (resuming reads
# it) and put it on a file system every node sees
WORK_ROOT={q(str(ex.work_dir))}
# the installation that printed this script; or e.g. an image (docs/hpc.md):
# APP=(apptainer run --containall --cleanenv -B /data -B /scratch megfmri-fusion.sif)
APP=({q(app_command())})
PARTICIPANTS=({" ".join(q(label) for label in memory)})
CPUS={nprocs}
MEM={job_mem_mb}M
APP_MEM_GB={app_mem:g}
TIME=${{MEGFMRI_TIME:-{_slurm_time(time_min)}}}  # per participant (HH:MM:SS)
GROUP_MEM={group_mem_mb}M
GROUP_TIME={_slurm_time(group_time_min)}
MAX_PARALLEL=${{MEGFMRI_MAX_PARALLEL:-50}}  # array tasks running at once
read -r -a SBATCH_ARGS <<< "${{MEGFMRI_SBATCH_ARGS:-}}"

if [ "$#" -gt 0 ]; then PARTICIPANTS=("$@"); fi
LOGS="$OUTPUT_DIR/logs/slurm"
mkdir -p "$LOGS"
SETTINGS="$LOGS/settings-$(date +%Y%m%d-%H%M%S)-$$.toml"
cat > "$SETTINGS" <<'SETTINGS_EOF'
{settings}SETTINGS_EOF
APP_COMMAND=$(printf '%q ' "${{APP[@]}}")
Q_DIRS=$(printf '%q ' "$BIDS_DIR" "$OUTPUT_DIR")
Q_WORK=$(printf '%q' "$WORK_ROOT")
Q_SETTINGS=$(printf '%q' "$SETTINGS")

array=$(sbatch --parsable --job-name=megfmri-participant \\
    --array="0-$(( ${{#PARTICIPANTS[@]}} - 1 ))%$MAX_PARALLEL" \\
    --cpus-per-task="$CPUS" --mem="$MEM" --time="$TIME" \\
    --output="$LOGS/participant-%A_%a.out" "${{SBATCH_ARGS[@]}}" <<EOF
#!/bin/bash
labels=(${{PARTICIPANTS[*]}})
label=\\${{labels[\\$SLURM_ARRAY_TASK_ID]}}
exec $APP_COMMAND $Q_DIRS participant --participant-label "\\$label" \\
    -w $Q_WORK/sub-"\\$label" --nprocs "\\$SLURM_CPUS_PER_TASK" --mem-gb $APP_MEM_GB \\
    --config $Q_SETTINGS
EOF
)
array=${{array%%;*}}

group=$(sbatch --parsable --job-name=megfmri-group --dependency="afterok:$array" \\
    --kill-on-invalid-dep=yes --cpus-per-task="$CPUS" --mem="$GROUP_MEM" --time="$GROUP_TIME" \\
    --output="$LOGS/group-%j.out" "${{SBATCH_ARGS[@]}}" <<EOF
#!/bin/bash
exec $APP_COMMAND $Q_DIRS group -w $Q_WORK/group --nprocs "\\$SLURM_CPUS_PER_TASK" \\
    --config $Q_SETTINGS
EOF
)
group=${{group%%;*}}
echo "participant array job $array (${{#PARTICIPANTS[@]}} task(s)), group job $group"
echo "logs: $LOGS; follow with: squeue -j $array,$group"
"""
