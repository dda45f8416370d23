"""The log during a database outage: one line when it goes, one when it is back, not one per
failed transaction (requests, job threads, heartbeats, the change listener each fail every
second while it is down). And rdflib's own warnings for literals the client got a 400 for
stay out of the log."""

from __future__ import annotations

import logging
import time

import pytest
from falcon import testing

from occi.api.wsgi import build
from occi.settings import Settings
from tests.pg import PgCluster, PostgresUnavailable

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = "application/occi+json"


@pytest.fixture
def cluster():
    """A cluster of this test's own: it is stopped and started under the app."""
    c = PgCluster()
    try:
        c.start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield c
    c.stop()


def _messages(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.postgres
def test_an_outage_is_logged_once_each_way(cluster, caplog):
    settings = Settings.from_mapping(
        {
            "database_url": cluster.url(cluster.database),
            "auth": "none",
            "heartbeat": 0.1,
            "dead_after": 600,  # no fencing in this test: only the outage's own lines
            "job_threads": 2,
            "job_wait": 0,
        }
    )
    app, service = build(settings, upgrade=True)
    client = testing.TestClient(app)
    h = {"Accept": JSON, "Content-Type": JSON}
    try:
        r = client.simulate_post("/compute/", json={"kind": INFRA + "compute"}, headers=h)
        assert r.status_code == 201, r.text
        entity = r.headers["location"].split("falconframework.org", 1)[1]
        assert client.simulate_get(entity, headers=h).status_code == 200  # starts the listener
        caplog.clear()
        caplog.set_level(logging.DEBUG, logger="occi")
        cluster.pause()
        statuses = set()
        for _ in range(40):  # the job threads, heartbeat and listener keep failing meanwhile
            for path in (entity, "/compute/", "/-/", "/healthz"):
                statuses.add(client.simulate_get(path, headers=h).status_code)
            statuses.add(
                client.simulate_post(
                    "/compute/", json={"kind": INFRA + "compute"}, headers=h
                ).status_code
            )
            time.sleep(0.05)
        assert 503 in statuses and 500 not in statuses
        heartbeats_failed = len(_messages(caplog, "heartbeat failed"))
        cluster.resume()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (
                client.simulate_get("/healthz").status_code == 200
                and service.store._listening
                and service.runner._last_ok > time.monotonic() - 1
            ):
                break
            time.sleep(0.1)
        assert client.simulate_get(entity, headers=h).status_code == 200
    finally:
        service.runner.stop()
        service.store.close()
        service.backend.close()
    assert heartbeats_failed >= 3  # the loops did fail while it was down (at debug level)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    said = [r.getMessage() for r in loud]
    assert len(_messages(caplog, "database unreachable")) == 1, said
    assert len(_messages(caplog, "database reachable again")) == 1, said
    assert len(_messages(caplog, "change listener lost its connection")) == 1, said
    assert len(_messages(caplog, "change listener connected again")) == 1, said
    assert len(loud) == 4, said
    assert not [r for r in loud if r.exc_info], said


TURTLE = """@prefix attr: <http://schemas.ogf.org/occi/attribute#> .
@prefix infra: <http://schemas.ogf.org/occi/infrastructure#> .
@prefix occi: <http://schemas.ogf.org/occi/rdf#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
[] a infra:compute, occi:Resource ; occi:kind infra:compute ; attr:occi.compute.cores %s .
"""


@pytest.mark.parametrize(
    "literal",
    [
        '"abc"^^xsd:integer',
        '"x1.5"^^xsd:double',
        '"maybe"^^xsd:boolean',
        '"2020-13-45"^^xsd:dateTime',
    ],
)
def test_rdflib_keeps_quiet_about_literals_the_client_got_a_400_for(
    sqlite_url, caplog, recwarn, literal
):
    app, service = build(
        Settings.from_mapping({"database_url": sqlite_url, "auth": "none"}), upgrade=True
    )
    try:
        caplog.set_level(logging.DEBUG, logger="rdflib")
        r = testing.TestClient(app).simulate_post(
            "/compute/",
            body=TURTLE % literal,
            headers={"Content-Type": "text/turtle", "Accept": "text/plain"},
        )
    finally:
        service.runner.stop()
        service.store.close()
        service.backend.close()
    assert r.status_code == 400 and "occi.compute.cores" in r.text
    assert [r.getMessage() for r in caplog.records if r.name.startswith("rdflib")] == []
    assert [str(w.message) for w in recwarn if "rdflib" in w.filename] == []


def test_an_outage_is_told_apart_from_one_failed_statement():
    """Only an unreachable database is an outage (logged once); a deadlock or SQLite's busy
    lock is one request's trouble, logged with it."""
    import sqlite3

    import psycopg
    from sqlalchemy.exc import OperationalError

    from occi.store.health import is_outage

    def wrapped(orig: Exception) -> OperationalError:
        return OperationalError("SELECT 1", {}, orig)

    assert is_outage(wrapped(psycopg.OperationalError("connection failed: Connection refused")))
    assert is_outage(wrapped(psycopg.errors.AdminShutdown("terminating connection")))
    assert is_outage(wrapped(psycopg.errors.CannotConnectNow("the database is starting up")))
    assert not is_outage(wrapped(psycopg.errors.DeadlockDetected("deadlock detected")))
    assert not is_outage(wrapped(psycopg.errors.SerializationFailure("could not serialize")))
    assert not is_outage(wrapped(sqlite3.OperationalError("database is locked")))
    assert is_outage(wrapped(sqlite3.OperationalError("unable to open database file")))
