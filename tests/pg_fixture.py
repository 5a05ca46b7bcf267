"""pytest fixtures for a real PostgreSQL (tests/pg_server.py), imported by the tests that need one.

Without the server binaries the tests skip, except under CI (the variable CI is
set), where a missing PostgreSQL must fail the run rather than hide it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pg_server import PgServer, find_bindir, start


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set, so this fails rather than skips)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One server for the session, stopped and deleted at its end."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("psycopg is not installed (pip install 'chargeback[postgres]')")
    bindir = find_bindir()
    if bindir is None:
        _missing("PostgreSQL's initdb/pg_ctl are not on PATH nor in /usr/lib/postgresql/*/bin")
    assert bindir is not None
    server = start(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's postgresql:// URI; its password is in PGPASSWORD only, as libpq reads it."""
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    return pg_server.conninfo
