"""The configuration: paper defaults, TOML round trip, validation, documentation."""

import pytest

from bids_app.config import DEFAULT_BANDS, Config, ConfigError, iter_options


def test_paper_defaults():
    c = Config()
    assert c.meg.bands == {k: list(v) for k, v in DEFAULT_BANDS.items()}
    assert list(c.meg.bands) == ["theta", "alpha", "lowbeta", "highbeta", "lowgamma", "highgamma"]
    starts = c.window_starts_ms()
    assert len(starts) == 22
    assert starts[0] == 100.0 and starts[1] == pytest.approx(133.333, abs=1e-3)
    assert starts[-1] == pytest.approx(800.0)
    assert c.meg.baseline_ms == [-200.0, 0.0] and c.meg.window_length_ms == 200.0
    assert c.meg.eog_reject_uv == 150.0
    assert (c.meg.tmin_s, c.meg.tmax_s) == (-0.2, 1.0)
    assert c.fmri.highpass_period_s == 510.0 and c.fmri.dummy_scans == 5
    assert c.stats.n_clusters == 17 and c.stats.n_bootstrap == 10_000
    assert c.stats.bootstrap_fraction == 0.8 and c.stats.alpha == 0.05
    assert c.stats.ci_levels == [0.99, 0.999]
    assert c.anatomy.meg_grid == "ico4" and c.anatomy.n_included_per_hemi == 70


def test_every_option_is_documented():
    options = list(iter_options())
    assert len(options) > 60
    for option in options:
        assert len(option.doc) > 15, f"{option.key} needs a docstring"


def test_toml_round_trip(tmp_path):
    c = Config()
    c.meg.bands["alpha"] = [8.0, 12.0]
    c.execution.participant_label = ["01", "02"]
    c.seeds.random_seed = 42
    path = tmp_path / "c.toml"
    path.write_text(c.to_toml())
    again = Config.from_toml(path)
    assert again == c


@pytest.mark.parametrize(
    "data, message",
    [
        ({"megg": {}}, r"Unknown section \[megg\]"),
        ({"meg": {"bandz": 1}}, "Unknown option 'meg.bandz'.*allowed are"),
        ({"stats": {"n_clusters": "many"}}, "expected an integer"),
        ({"stats": {"n_clusters": 2.5}}, "expected an integer"),
        ({"fmri": {"registration": "fsl"}}, "allowed are 'auto', 'bbregister', 'ants', got 'fsl'"),
        ({"meg": {"bands": {"alpha": [13, 8]}}}, "meg.bands.alpha"),
        ({"stats": {"bootstrap_fraction": 1.5}}, "bootstrap_fraction"),
        ({"workflow": {"conditions": ["a", "a"]}}, "distinct"),
        ({"execution": {"skip_bids_validation": "yes"}}, "expected true or false"),
    ],
)
def test_invalid_values_are_explained(data, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(data)


def test_bad_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[meg\nx=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.from_toml(path)
    with pytest.raises(ConfigError, match="not found"):
        Config.from_toml(tmp_path / "missing.toml")


def test_configuration_page_is_current():
    from pathlib import Path

    from bids_app.config import options_markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert page.read_text() == options_markdown(), (
        "docs/configuration.md is out of date: python -m bids_app.config > docs/configuration.md"
    )
