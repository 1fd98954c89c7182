"""The random seed of an output folder (issue 22): drawn once and saved in
``<output_dir>/logs/random-seed``, used by every later run into the folder, ``--random-seed``
wins for its run; runs starting into a new folder at once agree on one seed. And what makes a
resume recompute: no thread or process count is part of a node's hash, and the seed of a
resumed run is the first run's, so the rebuilt graph has the same hashes.
(The end-to-end resume is in tests/test_resume.py.)"""

from __future__ import annotations

import logging
import multiprocessing
import re

import pytest

from bids_app.cli.seed import SEED_FILE, choose_seed, keep_seed, read_seed, save_seed
from bids_app.errors import UsageError


def test_drawn_once_then_reused(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bids_app")
    first = choose_seed(None, tmp_path)
    assert first.origin == "drawn" and 0 <= first.seed < 2**31
    assert not (tmp_path / SEED_FILE).exists()  # choosing writes nothing
    assert keep_seed(first).seed == first.seed
    assert read_seed(tmp_path / SEED_FILE) == first.seed
    assert f"Random seed {first.seed} (drawn for this output folder, saved in" in caplog.text

    again = choose_seed(None, tmp_path)
    assert (again.seed, again.origin) == (first.seed, "saved")
    assert keep_seed(again) == again
    assert f"Random seed {first.seed} (from {tmp_path / SEED_FILE})" in caplog.text


def test_given_seed_wins_and_the_saved_one_is_kept(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bids_app")
    given = keep_seed(choose_seed(7, tmp_path))  # a new folder takes the given seed as its own
    assert given.seed == 7 and read_seed(tmp_path / SEED_FILE) == 7
    assert "Random seed 7 (--random-seed)" in caplog.text
    assert choose_seed(None, tmp_path).seed == 7  # the same command without the option resumes

    other = keep_seed(choose_seed(9, tmp_path))
    assert other.seed == 9 and read_seed(tmp_path / SEED_FILE) == 7
    assert "--random-seed 9 differs from the seed of this output folder, 7" in caplog.text


def test_a_file_without_a_seed_is_a_usage_error(tmp_path):
    path = tmp_path / SEED_FILE
    path.parent.mkdir()
    for text in ("", "twelve\n", "1\n2\n", f"{2**31}\n"):
        path.write_text(text)
        with pytest.raises(UsageError, match="does not hold a random seed.*Delete it"):
            read_seed(path, wait_s=0)
    path.write_text("# comment\n  42 \n")
    assert read_seed(path) == 42


def _start_run(args) -> int:
    folder, barrier = args
    choice = choose_seed(None, folder)  # all read "no file" before any saves
    barrier.wait()
    return keep_seed(choice).seed


def test_runs_starting_at_once_agree_on_one_seed(tmp_path):
    """Eight SLURM array tasks starting into one new output folder: each draws a seed before
    any saves one; one file is created and every task uses its seed."""
    n = 8
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(n)
        with multiprocessing.get_context("fork").Pool(n) as pool:
            seeds = pool.map(_start_run, [(tmp_path, barrier)] * n)
    assert len(set(seeds)) == 1, seeds
    assert read_seed(tmp_path / SEED_FILE) == seeds[0]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["random-seed"]  # no leftovers


def test_save_without_hard_links(tmp_path, monkeypatch):
    import os

    def no_link(*_args):
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / SEED_FILE
    assert save_seed(path, 5) == 5
    assert save_seed(path, 6) == 5
    assert read_seed(path) == 5


# -- what is hashed ---------------------------------------------------------------------------------
def _hashes(skeleton, tmp_path, *options) -> dict[str, str]:
    """Each node's hash of its set inputs, for the participant graph of the skeleton dataset."""
    from bids_app.cli.participant import plan_from_config
    from bids_app.cli.run import build_config
    from bids_app.workflows.base import init_participant_wf_from_config

    config = build_config([str(skeleton), str(tmp_path / "out"), "participant", "-w",
                           str(tmp_path / "work"), "--skip-bids-validation", *options])
    config.seeds.random_seed = choose_seed(config.seeds.random_seed, tmp_path / "out").seed
    workflow = init_participant_wf_from_config(config, plan_from_config(config))
    return {node.fullname: node.inputs.get_hashval()[1]
            for node in workflow._create_flat_graph().nodes()}


def test_threads_and_processes_change_no_hash(skeleton, tmp_path):
    (tmp_path / "out" / "logs").mkdir(parents=True)
    save_seed(tmp_path / "out" / SEED_FILE, 12345)
    first = _hashes(skeleton, tmp_path, "--nprocs", "2", "--omp-nthreads", "1")
    second = _hashes(skeleton, tmp_path, "--nprocs", "4", "--omp-nthreads", "3", "--mem-gb", "30")
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
    # the seed itself is hashed: another one recomputes the random steps
    third = _hashes(skeleton, tmp_path, "--nprocs", "2", "--random-seed", "7")
    changed = {name.rsplit(".", 1)[1] for name in first if first[name] != third[name]}
    assert changed == {"realign", "coregister", "template_to_t1w"}  # template anatomy here


def test_no_thread_input_is_hashed():
    """Every input of the app's interfaces that sets threads, jobs or processes is ``nohash``
    (nipype's own FreeSurfer ``openmp`` included)."""
    import importlib
    import inspect
    import re

    from nipype.interfaces.base import BaseInterface

    found = []
    for module in ("anatomy", "derivatives", "fmri", "freesurfer", "group", "meg", "report"):
        mod = importlib.import_module(f"bids_app.interfaces.{module}")
        for cls in vars(mod).values():
            if inspect.isclass(cls) and issubclass(cls, BaseInterface) \
                    and cls.__module__ == mod.__name__:
                spec = cls.input_spec()
                for name in spec.copyable_trait_names():
                    if re.search(r"thread|n_jobs|n_procs|nprocs|openmp|mem_gb|memory", name):
                        found.append((cls.__name__, name, spec.trait(name).nohash))
    assert {(cls, name) for cls, name, _ in found} >= {
        ("MaxwellFilter", "num_threads"), ("ForwardModel", "num_threads"), ("BandPower", "num_threads"),
        ("RealignBOLD", "num_threads"), ("ReconAll", "openmp")}
    assert [(cls, name) for cls, name, nohash in found if not nohash] == []


# -- the options that write no seed -----------------------------------------------------------------
def test_slurm_script_carries_the_folder_seed_and_writes_nothing(skeleton, tmp_path, capsys):
    from bids_app.cli.run import run

    out = tmp_path / "out"
    argv = [str(skeleton), str(out), "participant", "--slurm-script", "--skip-bids-validation",
            "-w", str(tmp_path / "work")]
    assert run(argv) == 0
    drawn = capsys.readouterr()
    assert not out.exists()
    seed = int(re.search(r"random_seed = (\d+)", drawn.out).group(1))
    assert f"Random seed {seed} (drawn for the jobs of this script; the first job saves it in " \
        f"{out / SEED_FILE})" in drawn.err

    save_seed(out / SEED_FILE, 4321)  # a folder that has its seed: the jobs get it
    assert run(argv) == 0
    assert "random_seed = 4321" in capsys.readouterr().out


def test_boilerplate_only_draws_and_saves_no_seed(skeleton, tmp_path):
    from bids_app.cli.run import run

    out = tmp_path / "out"
    assert run([str(skeleton), str(out), "participant", "--boilerplate-only",
                "--skip-bids-validation", "-w", str(tmp_path / "work")]) == 0
    assert (out / "logs" / "CITATION.md").is_file() and not (out / SEED_FILE).exists()


def test_group_level_uses_the_folder_seed_and_resumes(tmp_path, caplog):
    """The group level of written participant outputs: the bootstrap's seed is the folder's,
    and the same command again reruns no step."""
    from participant_outputs import write_study

    from bids_app.cli.run import run

    bids, out = write_study(tmp_path)
    save_seed(out / SEED_FILE, 2024)
    argv = [str(bids), str(out), "group", "-w", str(tmp_path / "work"), "--nprocs", "1",
            "--n-clusters", "4", "--n-bootstrap", "200"]
    caplog.set_level(logging.INFO)
    assert run(argv) == 0
    assert f"Random seed 2024 (from {out / SEED_FILE})" in caplog.text
    first = caplog.text
    caplog.clear()
    assert run([*argv, "--omp-nthreads", "1", "--mem-gb", "8"]) == 0
    assert "[Node] Executing" in first and "[Node] Executing" not in caplog.text
    assert read_seed(out / SEED_FILE) == 2024


def test_a_run_that_loses_the_race_uses_the_winners_seed(skeleton, tmp_path, monkeypatch):
    """Another array task saves its seed between this run's choice and its save: this run
    builds its graph again with that seed (the graph is not run here)."""
    import bids_app.cli.participant as participant
    import bids_app.workflows.execution as execution
    from bids_app.cli.run import run

    out = tmp_path / "out"

    def choose_then_lose(given, output_dir):
        choice = choose_seed(given, output_dir)
        assert choice.origin == "drawn"
        save_seed(out / SEED_FILE, (choice.seed + 1) % 2**31)  # the other task wins
        return choice

    graphs = []
    monkeypatch.setattr(participant, "choose_seed", choose_then_lose)
    monkeypatch.setattr(execution, "run_workflow", lambda workflow, **_: graphs.append(workflow))
    assert run([str(skeleton), str(out), "participant", "--skip-bids-validation",
                "-w", str(tmp_path / "work")]) == 0
    winner = read_seed(out / SEED_FILE)
    seeds = {node.inputs.seed for node in graphs[0]._create_flat_graph().nodes()
             if node.name in ("realign", "coregister", "template_to_t1w")}
    assert seeds == {winner}
