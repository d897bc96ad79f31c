"""``job_store``: which store a setting names."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxgate.jobs.backends import open_store
from voxgate.jobs.sqlite import SqliteJobStore


def test_open_store_reads_the_setting(tmp_path: Path) -> None:
    default = open_store("", tmp_path)
    assert isinstance(default, SqliteJobStore)
    assert default.path == tmp_path / "jobs" / "jobs.sqlite3"
    default.close()
    named = open_store(f"sqlite:///{tmp_path}/elsewhere.db", tmp_path)
    assert isinstance(named, SqliteJobStore)
    assert named.path == tmp_path / "elsewhere.db"
    named.close()
    with pytest.raises(ValueError, match="no store for 'mysql'"):
        open_store("mysql://db/voxgate", tmp_path)
