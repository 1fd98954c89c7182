"""The figures that ``benchmarks/bench_stages.py`` compares with are recorded in the docs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench_stages():
    spec = importlib.util.spec_from_file_location("bench_stages",
                                                  ROOT / "benchmarks" / "bench_stages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_stage_of_the_demo_has_a_recorded_figure():
    figures = _bench_stages().recorded_figures()
    for stage in ("install", "simulation", "participant level", "group level",
                  "step realign", "step maxwell_filter", "step band_power"):
        assert figures.get(stage, 0) > 0, (stage, figures)


def test_recorded_figures_are_read_from_the_marked_table_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("| simulation | 99 |\n<!-- bench_stages -->\n| stage | s |\n|---|---|\n"
                    "| simulation | 43 |\n| `step realign` | 1,153 |\n| note | n/a |\n"
                    "<!-- /bench_stages -->\n")
    assert _bench_stages().recorded_figures(page) == {"simulation": 43.0, "step realign": 1153.0}
    assert _bench_stages().recorded_figures(tmp_path / "missing.md") == {}
