"""Which :class:`~voxgate.jobs.store.JobStore` a ``job_store`` setting names."""

from __future__ import annotations

from pathlib import Path

from voxgate.jobs.sqlite import SqliteJobStore
from voxgate.jobs.store import JobStore

__all__ = ["open_store"]


def open_store(url: str, home: Path) -> JobStore:
    """The store a ``job_store`` setting names: empty for SQLite in ``home/jobs``, ``sqlite:///path``, or a
    ``postgresql://`` URL (shared by every server that names it; needs the ``postgres`` extra)."""
    if not url:
        return SqliteJobStore(home / "jobs" / "jobs.sqlite3")
    if url.startswith("sqlite:///"):
        return SqliteJobStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from voxgate.jobs.postgres import PostgresJobStore
        except ImportError as exc:  # psycopg is an extra
            raise ValueError(
                f"job_store: a postgresql:// store needs psycopg: pip install 'voxgate[postgres]' ({exc})"
            ) from exc
        return PostgresJobStore(url)
    scheme = url.split(":", 1)[0]
    raise ValueError(
        f"job_store: no store for {scheme!r} URLs (use sqlite:///path, postgresql://..., or leave it empty)"
    )
