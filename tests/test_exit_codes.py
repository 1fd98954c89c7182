"""The exit codes the documentation promises are the ones the app returns (docs/usage.md,
``--help``, boutiques.json: all from :data:`bids_app.errors.EXIT_CODES`)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from bids_app.errors import EXIT_CODES, AppError
from bids_app.interrupts import Interrupted

USAGE = Path(__file__).resolve().parents[1] / "docs" / "usage.md"


def _section(title: str) -> str:
    text = USAGE.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _rows(section: str) -> list[list[str]]:
    """The cells of every row of the section's table (header and rule left out)."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|")]
    return rows[2:]


def test_the_exit_code_table_lists_exactly_the_codes_of_the_app():
    documented = {int(row[0]): row[1] for row in _rows(_section("Exit codes"))}
    assert set(documented) == set(EXIT_CODES)


def test_every_error_returns_a_documented_code():
    todo, classes = [AppError], []
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    undocumented = {cls.__name__: cls.exit_code for cls in classes
                    if cls.exit_code not in EXIT_CODES}
    assert not undocumented
    assert Interrupted(signal.SIGINT).exit_code in EXIT_CODES
    assert Interrupted(signal.SIGTERM).exit_code in EXIT_CODES


def test_every_refusal_has_a_documented_code_and_the_battery_returns_only_those():
    from test_bad_input import CASES

    refusals = _rows(_section("What the app refuses, and why"))
    codes = {row[1] for row in refusals}
    assert codes - {"—"} <= {str(code) for code in EXIT_CODES}
    assert {case.code for case in CASES} <= set(EXIT_CODES)
    # every code the battery expects for a refusal is one the table gives
    assert {case.code for case in CASES if case.code} <= {int(c) for c in codes if c != "—"}


def test_the_refusals_name_every_class_of_issue_19():
    """Ranges, the memory limit and symbolic-link loops (issue 19, items 7 and 8) are in the
    table, with their codes."""
    rows = {row[0]: row[1] for row in _rows(_section("What the app refuses, and why"))}

    def code_of(words: str) -> str:
        found = [code for what, code in rows.items() if re.search(words, what)]
        assert found, f"no refusal row matching {words!r}"
        return found[0]

    assert code_of(r"setting outside its range") == "64"
    assert code_of(r"--mem-gb") == "64"
    assert code_of(r"loop of symbolic links\*\* in what the app reads") == "65"
    assert code_of(r"output or work folder that is a loop") == "73"
