"""Caches and temporary files under a read-only container (issue 20): a place that cannot be
written is replaced by a folder in the work folder, a writable one is kept."""

from __future__ import annotations

import os
import tempfile

from bids_app.cli.environment import ensure_writable_caches


def test_unwritable_caches_move_into_the_work_folder(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # nothing can be created below a file, whoever runs the test
    writable = tmp_path / "site-tmp"
    writable.mkdir()
    monkeypatch.setenv("MPLCONFIGDIR", str(blocked / "matplotlib"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked / "cache"))
    monkeypatch.setenv("TMPDIR", str(writable))
    work = tmp_path / "work"
    changed = ensure_writable_caches(work)
    assert changed == {"MPLCONFIGDIR": str(work / ".cache" / "mplconfigdir"),
                       "XDG_CACHE_HOME": str(work / ".cache" / "xdg_cache_home")}
    assert os.environ["MPLCONFIGDIR"] == changed["MPLCONFIGDIR"]
    assert os.environ["TMPDIR"] == str(writable)


def test_unwritable_tmpdir_resets_tempfile(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("TMPDIR", str(blocked / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    work = tmp_path / "work"
    ensure_writable_caches(work)
    assert tempfile.gettempdir() == str(work / ".cache" / "tmpdir")
    monkeypatch.setattr(tempfile, "tempdir", None)


def test_the_check_writes_nothing(tmp_path, monkeypatch):
    """Asking whether a place is writable creates nothing (the app writes only to its output
    and work folders)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("MPLCONFIGDIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert ensure_writable_caches(tmp_path / "work") == {}
    assert list(home.iterdir()) == [] and not (tmp_path / "work").exists()
