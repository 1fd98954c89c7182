"""``--slurm-script`` and the SLURM plugin's checks, without a cluster (tests/test_slurm.py runs
them on one): the printed script's resources, the command each job runs (paths with spaces and
shell characters), and the usage errors."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from bids_app.cli.run import build_config, run
from bids_app.config import Config

FAKE_SBATCH = """#!/bin/bash
# records its arguments and the job script it reads from stdin, answers a job id
n=$(ls "$RECORD" | grep -c '^args-' || true)
printf '%s\\n' "$@" > "$RECORD/args-$n"
cat > "$RECORD/script-$n"
echo "$((100 + n))"
"""


@pytest.fixture
def printed(skeleton, tmp_path, capsys):
    """The script for the skeleton dataset moved to a folder whose name a shell would split."""
    bids = tmp_path / "my data; $HOME 'x'"
    shutil.move(skeleton, bids)
    out, work = tmp_path / "out dir", tmp_path / "work dir"
    capsys.readouterr()
    code = run([str(bids), str(out), "participant", "--slurm-script", "--nprocs", "2",
                "--skip-bids-validation", "-w", str(work), "--random-seed", "7",
                "--n-bootstrap", "50"])
    script = capsys.readouterr().out
    return {"code": code, "script": script, "bids": bids, "out": out, "work": work}


def test_script_is_printed_and_nothing_is_written(printed, tmp_path):
    assert printed["code"] == 0
    assert printed["script"].startswith("#!/bin/bash")
    assert not printed["out"].exists() and not printed["work"].exists()
    subprocess.run(["bash", "-n"], input=printed["script"], text=True, check=True)


def test_memory_is_the_estimate_of_the_steps_run_side_by_side(printed):
    """Two cores, one thread per step: the two largest steps of a participant, plus 1 GB for
    the main process; the app gets the estimate as --mem-gb."""
    from bids_app.cli.participant import plan_from_config
    from bids_app.workflows.base import init_participant_wf_from_config

    config = build_config([str(printed["bids"]), str(printed["out"]), "participant",
                           "--nprocs", "2", "--skip-bids-validation", "-w",
                           str(printed["work"])])
    workflow = init_participant_wf_from_config(config, plan_from_config(config))
    per_subject: dict[str, list[float]] = {}
    for node in workflow._create_flat_graph().nodes():
        per_subject.setdefault(node.fullname.split(".")[1], []).append(node.mem_gb)
    need = max(sum(sorted(mems)[-2:]) for mems in per_subject.values())
    text = printed["script"]
    app_gb = float(text.split("APP_MEM_GB=")[1].split()[0])
    mem_mb = int(text.split("\nMEM=")[1].split("M")[0])
    assert need <= app_gb < need + 0.1
    assert mem_mb == pytest.approx((app_gb + 1.0) * 1024, abs=1)
    assert "PARTICIPANTS=(01 02)" in text and "CPUS=2" in text


def test_mem_gb_given_replaces_the_estimate_when_every_step_fits(skeleton, tmp_path, capsys,
                                                                  caplog):
    common = [str(skeleton), str(tmp_path / "out"), "participant", "--slurm-script",
              "--nprocs", "2", "--skip-bids-validation", "-w", str(tmp_path / "work")]
    capsys.readouterr()
    assert run([*common, "--mem-gb", "12"]) == 0
    text = capsys.readouterr().out
    assert "APP_MEM_GB=12\n" in text and "\nMEM=13312M\n" in text
    assert run([*common, "--mem-gb", "0.5"]) == 64  # below the largest step: refused
    assert "--mem-gb" in caplog.text and capsys.readouterr().out == ""


def _submit(printed, tmp_path, *labels) -> Path:
    """Run the script with a fake sbatch; return the folder of what it received."""
    record, fake = tmp_path / "record", tmp_path / "bin"
    record.mkdir()
    fake.mkdir()
    (fake / "sbatch").write_text(FAKE_SBATCH)
    (fake / "sbatch").chmod(stat.S_IRWXU)
    script = printed["script"].replace("\nAPP=(", "\nAPP=(printf '%s\\n') #(")
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "RECORD": str(record)}
    proc = subprocess.run(["bash", "-s", *labels], input=script, text=True, env=env,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert "participant array job 100" in proc.stdout and "group job 101" in proc.stdout
    return record


def _job_argv(record: Path, n: int, **env: str) -> list[str]:
    """What job ``n`` would run (``APP`` prints its arguments, one per line)."""
    proc = subprocess.run(["bash", str(record / f"script-{n}")], capture_output=True,
                          text=True, env={**os.environ, **env}, check=True)
    return proc.stdout.splitlines()


def test_array_tasks_run_one_participant_each(printed, tmp_path):
    record = _submit(printed, tmp_path)
    args = (record / "args-0").read_text().splitlines()
    assert "--array=0-1%50" in args and "--cpus-per-task=2" in args
    assert any(a.startswith("--mem=") for a in args) and any(a.startswith("--time=") for a in args)
    argv = _job_argv(record, 0, SLURM_ARRAY_TASK_ID="1", SLURM_CPUS_PER_TASK="2")
    settings = Path(argv[argv.index("--config") + 1])
    assert argv[:5] == [str(printed["bids"]), str(printed["out"]), "participant",
                        "--participant-label", "02"]
    assert argv[argv.index("-w") + 1] == str(printed["work"] / "sub-02")
    assert argv[argv.index("--nprocs") + 1] == "2"
    # the settings the jobs share: the run's, without what each job sets itself
    saved = Config.from_toml(settings)
    assert saved.seeds.random_seed == 7 and saved.stats.n_bootstrap == 50
    assert saved.execution.skip_bids_validation and not saved.execution.slurm_script
    assert saved.execution.participant_label == [] and saved.nipype.nprocs is None


def test_group_job_waits_for_the_array(printed, tmp_path):
    record = _submit(printed, tmp_path, "02")
    assert "--array=0-0%50" in (record / "args-0").read_text().splitlines()
    args = (record / "args-1").read_text().splitlines()
    assert "--dependency=afterok:100" in args and "--kill-on-invalid-dep=yes" in args
    argv = _job_argv(record, 1, SLURM_CPUS_PER_TASK="2")
    assert argv[:3] == [str(printed["bids"]), str(printed["out"]), "group"]
    assert argv[argv.index("-w") + 1] == str(printed["work"] / "group")
    assert _job_argv(record, 0, SLURM_ARRAY_TASK_ID="0",
                     SLURM_CPUS_PER_TASK="2")[4] == "02"


def test_slurm_script_with_the_group_level_is_a_usage_error(caplog, skeleton, tmp_path):
    code = run([str(skeleton), str(tmp_path / "out"), "group", "--slurm-script"])
    assert code == 64
    assert "--slurm-script" in caplog.text and "participant" in caplog.text


def test_slurm_plugin_without_sbatch_is_refused_before_writing(caplog, skeleton, tmp_path,
                                                               monkeypatch):
    plugin = tmp_path / "slurm.toml"
    plugin.write_text('plugin = "SLURMGraph"\n')
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    code = run([str(skeleton), str(out), "participant", "--use-plugin", str(plugin),
                "--skip-bids-validation", "-w", str(tmp_path / "work")])
    assert code == 64
    assert "sbatch" in caplog.text and "docs/hpc.md" in caplog.text
    assert not out.exists()


def test_participant_memory_sums_the_largest_steps_that_run_together():
    from nipype.interfaces.utility import IdentityInterface
    from nipype.pipeline import engine as pe

    from bids_app.workflows.slurm import participant_mem_gb

    top = pe.Workflow(name="megfmri_participant_wf")
    for label, sizes in (("01", (3.0, 1.0, 2.0)), ("A2", (0.5, 4.0, 0.2))):
        sub = pe.Workflow(name=f"sub_{label}_wf")
        sub.add_nodes([pe.Node(IdentityInterface(fields=["x"]), name=f"step{i}", mem_gb=gb)
                       for i, gb in enumerate(sizes)])
        top.add_nodes([sub])
    assert participant_mem_gb(top, nprocs=1, omp_nthreads=1) == {"01": 3.0, "A2": 4.0}
    assert participant_mem_gb(top, nprocs=2, omp_nthreads=1) == {"01": 5.0, "A2": 4.5}
    assert participant_mem_gb(top, nprocs=4, omp_nthreads=2) == {"01": 5.0, "A2": 4.5}
    assert participant_mem_gb(top, nprocs=3, omp_nthreads=1) == {"01": 6.0, "A2": 4.7}
