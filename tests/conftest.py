"""Shared fixtures: databases. `db_url` runs a test on SQLite and on a real PostgreSQL cluster;
`pg_url` gives a fresh PostgreSQL database, `sqlite_url` a fresh SQLite file."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from tests.pg import PgCluster, PostgresUnavailable

# Generated tests run the same examples on every `make test` (a landing never depends on what a
# random draw found that day); HYPOTHESIS_PROFILE=explore draws new ones on each run.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def pg_cluster_handle() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the whole session (`.url(db)`, `.create_database()`,
    `.drop_database(name)`).

    Fails, never skips, when PostgreSQL is missing: `make test` installs it."""
    try:
        cluster = PgCluster()
        cluster.start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_cluster(pg_cluster_handle: PgCluster) -> str:
    """The URL of the session cluster's `occi` database, shared by every test that uses it:
    tests that need an empty database take `pg_url` instead."""
    return pg_cluster_handle.url(pg_cluster_handle.database)


@pytest.fixture
def pg_url(pg_cluster_handle: PgCluster) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (test_<uuid>) for one test, dropped afterwards."""
    url = pg_cluster_handle.create_database()
    try:
        yield url
    finally:
        pg_cluster_handle.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'occi.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session", autouse=True)
def _vcsim_stopped_at_the_end() -> Iterator[None]:
    """The VMware simulators a test started (tests.vcsim.shared) end with the session."""
    yield
    from tests import vcsim

    vcsim.stop_all()
