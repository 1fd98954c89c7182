"""Every setting declares what it allows next to its documentation, and one mechanism checks it
(:mod:`bids_app.config`) wherever the value comes from: the command line, a TOML file or a
saved configuration. A value out of range stops the app before any work with exit code 64 and a
message naming the option, never a traceback (issue 19, item 8)."""

from __future__ import annotations

import logging
import typing

import pytest

from bids_app.cli.run import run
from bids_app.config import Config, ConfigError, Range, iter_options
from skeleton import fingerprint


def _numeric(hint) -> bool:
    """True when an option's type holds numbers (int or float, also in Optional, list, dict)."""
    if hint in (int, float):
        return True
    return any(_numeric(arg) for arg in typing.get_args(hint))


def test_every_numeric_option_declares_a_range():
    numeric = [option for option in iter_options() if _numeric(option.hint)]
    assert len(numeric) > 30
    missing = [option.key for option in numeric if not isinstance(option.bounds, Range)]
    assert not missing, f"declare bounds=Range(...) next to the doc of {missing}"


def test_every_default_is_allowed_and_round_trips():
    config = Config()
    config.validate()
    assert Config.from_dict(config.to_dict()) == config


def test_ranges_are_documented():
    """docs/configuration.md shows each option's range (the page is generated; its being
    current is tested in test_config.py)."""
    from bids_app.config import options_markdown

    page = options_markdown()
    assert "| `n_windows` | `22` | an integer >= 1 |" in page
    assert "| `alpha` | `0.05` | a number in (0, 1) |" in page


@pytest.mark.parametrize(
    "data, message",
    [
        ({"meg": {"bands": {"alpha": ["8", "13"]}}}, r"'meg.bands'.*expected a table of lists "
                                                     r"of numbers > 0, got \{'alpha'"),
        ({"meg": {"bands": {"alpha": [0, 13]}}}, r"'meg.bands'.*> 0, got 0"),
        ({"meg": {"bands": {}}}, r"'meg.bands' holds no band"),
        ({"anatomy": {"atlas": "../../aparc"}}, r"'anatomy.atlas'.*not a path"),
        ({"meg": {"n_windows": 0}}, r"'meg.n_windows'.*an integer >= 1, got 0"),
        ({"meg": {"n_windows": 40}}, r"analysis windows .* outside the epoch"),
        ({"meg": {"baseline_ms": [-500.0, 0.0]}}, r"baseline .* outside the epoch"),
        ({"meg": {"tmin_s": 0.1}}, r"'meg.tmin_s'.*a number < 0"),
        ({"meg": {"eog_reject_uv": float("nan")}}, r"'meg.eog_reject_uv'.*> 0, got nan"),
        ({"meg": {"origin": "0,10"}}, r"'meg.origin'.*'auto' or three numbers"),
        ({"meg": {"origin": "1.2.3,4,5"}}, r"'meg.origin'.*'auto' or three numbers"),
        ({"nipype": {"nprocs": 0}}, r"'nipype.nprocs'.*an integer >= 1, got 0"),
        ({"nipype": {"omp_nthreads": -1}}, r"'nipype.omp_nthreads'.*>= 1, got -1"),
        ({"nipype": {"nprocs": 2, "omp_nthreads": 4}}, r"cannot exceed 'nipype.nprocs'"),
        ({"nipype": {"mem_gb": -1}}, r"'nipype.mem_gb'.*a number > 0, got -1"),
        ({"nipype": {"mem_gb": 0}}, r"'nipype.mem_gb'.*> 0, got 0"),
        ({"fmri": {"dummy_scans": -2}}, r"'fmri.dummy_scans'.*an integer >= 0, got -2"),
        ({"fmri": {"block_volumes": 0}}, r"'fmri.block_volumes'.*>= 1"),
        ({"stats": {"n_bootstrap": 0}}, r"'stats.n_bootstrap'.*>= 1, got 0"),
        ({"stats": {"min_observations": 2}}, r"'stats.min_observations'.*>= 3"),
        ({"stats": {"min_observations": 3}}, r"fewer than the 3 .* at least 4"),
        ({"stats": {"min_observations": 4, "bootstrap_fraction": 0.6}},
         r"'stats.min_observations' \(4\) with 'stats.bootstrap_fraction' \(0.6\)"),
        ({"stats": {"ci_levels": [0.99, 1.5]}}, r"'stats.ci_levels'.*in \(0, 1\), got 1.5 in"),
        ({"stats": {"alpha": "0.05"}}, r"'stats.alpha'.*expected a number in \(0, 1\)"),
        ({"seeds": {"random_seed": -1}}, r"'seeds.random_seed'.*in \[0, 2147483647\]"),
        ({"execution": {"task": ["a/b"]}}, r"'execution.task'.*BIDS label.*got 'a/b'"),
        ({"execution": {"verbosity": -1}}, r"'execution.verbosity'"),
        ({"execution": {"analysis_level": "group", "boilerplate_only": True}},
         r"--boilerplate-only .* participant level"),
        ({"execution": {"bids_filters": {"func": {}}}}, r"Invalid query 'func'"),
        ({"execution": {"bids_filters": {"bold": {"colour": "red"}}}},
         r"Invalid entity 'colour'"),
        ({"execution": {"bids_filters": {"bold": {"session": {"a": 1}}}}},
         r"entity 'session' of 'bold'.*got \{'a': 1\}"),
        ({"execution": {"bids_filters": {"bold": ["session"]}}}, r"must be an object"),
        ({"nipype": {"plugin": "Foo"}}, r"'nipype.plugin'.*allowed are 'Linear', 'MultiProc'"),
        ({"nipype": {"plugin_args": 5}}, r"'nipype.plugin_args'.*expected a table"),
        ({"nipype": {"plugin_args": {"n_procs": "two"}}}, r"'n_procs'.*an integer >= 1"),
        ({"nipype": {"plugin_args": {"memory_gb": -1}}}, r"'memory_gb'.*a number > 0"),
        ({"nipype": {"plugin_args": {"n_proc": 2}}}, r"Unknown plugin argument 'n_proc'"),
        ({"nipype": {"plugin_args": {"scheduler": "fast"}}}, r"'scheduler'.*'tsort'"),
    ],
)
def test_out_of_range_values_are_refused(data, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(data)


def test_valid_filters_and_plugin_arguments_pass():
    config = Config.from_dict({
        "execution": {"bids_filters": {"bold": {"session": "mri", "run": [1, 2]},
                                       "t1w": {"acquisition": None}}},
        "nipype": {"plugin": "SLURMGraph",
                   "plugin_args": {"sbatch_args": "--mem=8G", "max_jobs": 10,
                                   "dont_resubmit_completed_jobs": True}},
    })
    assert config.execution.bids_filters["bold"]["run"] == [1, 2]
    assert config.nipype.plugin_args["max_jobs"] == 10


# -- through the command line ------------------------------------------------------------------
# Each kind of out-of-range value is also run through the real command line, in a subprocess, by
# the bad-input battery (tests/test_bad_input.py, cases of issue 19.8): exit code 64, the option
# and the file named, no traceback, nothing written.
def test_saved_configuration_is_checked_like_any_other(caplog, skeleton, tmp_path):
    """A saved configuration edited by hand (or from another version) is refused the same way."""
    saved = Config().to_toml().replace("n_windows = 22", "n_windows = 0")
    assert "n_windows = 0" in saved
    path = tmp_path / "config-saved.toml"
    path.write_text(saved)
    before = fingerprint(skeleton)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = run([str(a) for a in (skeleton, tmp_path / "out", "participant", "-w",
                                     tmp_path / "work", "--skip-bids-validation",
                                     "--boilerplate-only", "--config", path)])
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert code == 64 and "'meg.n_windows'" in log and str(path) in log
    assert fingerprint(skeleton) == before
    assert not (tmp_path / "out").exists()
