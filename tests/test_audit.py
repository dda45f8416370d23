"""The audit log: each write a client asks for is an event (occi.api.audit,
occi.identity.audit), reads are not; old events are purged; `occi-server events` shows them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from falcon import testing

from occi.api.wsgi import build
from occi.identity import audit
from occi.jobs.runner import in_job
from occi.settings import Settings
from tests.api.conftest import INFRA, Api

ROOT = Path(__file__).resolve().parents[1]
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
MIXIN = 'my_stuff; scheme="http://example.com/occi/my_stuff#"; class="mixin"; location="/my_stuff/"'


def _app(database_url: str):
    """The app with its job threads, without authentication; stopped after the test."""
    settings = Settings.from_mapping({"database_url": database_url, "auth": "none"})
    app, service = build(settings, upgrade=True)
    yield Api(testing.TestClient(app), service)
    if service.runner is not None:
        service.runner.stop()
    service.store.close()
    service.backend.close()


@pytest.fixture
def api(tmp_path):
    yield from _app(f"sqlite:///{tmp_path}/audit.db")


def _events(api: Api) -> list[audit.Event]:
    return list(reversed(audit.events(api.service.store, limit=1000)))


def _rid(name: str) -> dict[str, str]:
    return {"X-Request-Id": name}


def test_each_write_is_an_event_with_its_request_id_and_outcome(api):
    r = api.post(
        "/compute/",
        {"kind": INFRA + "compute", "attributes": {"occi.core.title": "a"}},
        headers=_rid("req-create"),
    )
    assert r.status_code == 201, r.text
    path = api.path_of(r)
    r = api.post(
        path,
        {"kind": INFRA + "compute", "attributes": {"occi.core.title": "b"}},
        headers=_rid("req-update"),
    )
    assert r.status_code == 200, r.text
    r = api.post(
        path, {"action": ACTION + "start"}, params={"action": "start"}, headers=_rid("req-act")
    )
    assert r.status_code in (200, 409), r.text
    act_status = r.status_code
    assert api.delete(path, headers=_rid("req-delete")).status_code == 200
    missing = api.delete(path, headers=_rid("req-again"))
    assert missing.status_code == 404
    bad = api.post("/compute/", b"{not json", ctype="application/occi+json", headers=_rid("bad"))
    assert bad.status_code == 400

    got = {e.request_id: e for e in _events(api)}
    assert list(got) == ["req-create", "req-update", "req-act", "req-delete", "req-again", "bad"]
    create = got["req-create"]
    assert (create.operation, create.entity, create.status) == ("create compute", path, 201)
    assert create.project == "default"  # anonymous until authentication is on
    assert create.result is None
    assert (got["req-update"].operation, got["req-update"].entity) == ("update", path)
    assert got["req-update"].status == 200
    assert got["req-act"].operation == "action start"
    assert got["req-act"].status == act_status
    assert (got["req-delete"].operation, got["req-delete"].status) == ("delete", 200)
    again = got["req-again"]
    assert (again.operation, again.status, again.entity) == ("delete", 404, path)
    assert again.result and path in again.result  # the message the client got
    assert got["bad"].status == 400 and got["bad"].result
    assert all(e.at.tzinfo is not None for e in got.values())


def test_reads_are_not_events(api):
    path = api.path_of(api.create("compute"))
    before = len(_events(api))
    api.get("/compute/")
    api.get(path)
    api.request("HEAD", path)
    api.get("/-/")
    api.request("OPTIONS", "/compute/", accept=None)
    assert len(_events(api)) == before == 1


def test_mixin_writes_are_named(api):
    r = api.post("/-/", body="", ctype="text/plain", headers={"Category": MIXIN})
    assert r.status_code == 200, r.text
    a = api.path_of(api.create("compute"))
    assert api.post("/my_stuff/", {"locations": [a]}).status_code == 200
    assert api.put("/my_stuff/", {"locations": [a]}).status_code == 200
    assert api.delete("/my_stuff/").status_code == 200
    r = api.delete("/-/", {"scheme": "http://example.com/occi/my_stuff#", "term": "my_stuff"})
    assert r.status_code == 200, r.text
    ops = [e.operation for e in _events(api)]
    assert ops == [
        "define mixin",
        "create compute",
        "associate mixin",
        "replace mixin members",
        "dissociate mixin",
        "delete mixin",
    ]


def test_refused_cross_site_write_is_an_event(api):
    r = api.post("/compute/", "x", ctype="text/plain", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    (event,) = _events(api)
    assert (event.status, event.operation, event.entity) == (403, "create compute", "/compute/")
    assert "evil.example" in (event.result or "")


def test_an_audit_that_fails_leaves_the_answer_alone(api, caplog):
    with api.service.store.begin() as tx:
        tx.conn.execute(sa.text("DROP TABLE events"))
    with caplog.at_level(logging.DEBUG):
        r = api.post("/compute/", {"kind": INFRA + "compute"})
    assert r.status_code == 201, r.text
    assert "not recorded" in caplog.text
    # the event the service tried to record with the job did not hold the job back: the job
    # was recorded done at once, without it, and the compute shows what the platform did
    assert "recorded without its audit event" in caplog.text
    assert r.json["attributes"]["occi.compute.state"] == "inactive"
    with api.service.store.begin(readonly=True) as tx:
        (job,) = tx.jobs.unfinished([r.json["id"]]) or [None]
    assert job is None


@pytest.fixture
def api_on_both(db_url):
    """The app (with its job threads) on SQLite and on PostgreSQL."""
    yield from _app(db_url)


def test_one_event_per_write_recorded_with_its_job(api_on_both):
    """A create's and an action's event is stored in the transaction that records their job
    done (no transaction of its own; on PostgreSQL in the very statement that records the
    job), once; a refused action's by the middleware, once."""
    api = api_on_both
    inserts: list[bool] = []

    def on_execute(conn, cursor, statement, *_):
        if "INSERT INTO events" in statement or "INSERT INTO EVENTS" in statement.upper()[:30]:
            inserts.append(in_job())

    store = api.service.store
    engines = {store.engine, store._read_engine}  # (autocommitted statements use the latter)
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        r = api.post("/compute/", {"kind": INFRA + "compute"}, headers=_rid("c"))
        assert r.status_code == 201, r.text
        path = api.path_of(r)
        r = api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
        assert r.status_code == 200, r.text
        r = api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
        assert r.status_code == 409, r.text  # refused before any job: the middleware's event
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", on_execute)
    assert inserts == [True, True, False]
    events = _events(api)
    assert [(e.operation, e.status, e.entity) for e in events] == [
        ("create compute", 201, path),
        ("action start", 200, path),
        ("action start", 409, path),
    ]
    assert events[0].request_id == "c" and events[0].project == "default"
    assert events[2].result and "start" in events[2].result


def test_purge_keeps_recent_events(tmp_path):
    settings = Settings.from_mapping({"database_url": f"sqlite:///{tmp_path}/p.db"})
    _, service = build(settings, upgrade=True, run_jobs=False)
    store = service.store
    now = datetime.now(UTC)
    for days in (100, 40, 10, 0):
        audit.record(
            store, operation=f"old {days}", status=200, at=now - timedelta(days=days, hours=1)
        )
    assert audit.purge(store, 0) == 0  # 0: keep for ever
    assert audit.purge(store, 30) == 2
    assert [e.operation for e in audit.events(store)] == ["old 0", "old 10"]
    # one server per interval: the lease
    assert audit.purge_if_due(store, 5, 3600) == 1
    assert audit.purge_if_due(store, 5, 3600) is None
    assert [e.operation for e in audit.events(store)] == ["old 0"]
    store.close()


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "occi.cli", "--database-url", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_events_command_filters_and_json(tmp_path):
    db = tmp_path / "cli.db"
    settings = Settings.from_mapping({"database_url": f"sqlite:///{db}"})
    _, service = build(settings, upgrade=True, run_jobs=False)
    store = service.store
    now = datetime.now(UTC)
    audit.record(
        store,
        operation="create compute",
        status=201,
        user="alice",
        project="p1",
        request_id="r1",
        entity="/compute/1",
        at=now - timedelta(hours=3),
    )
    audit.record(
        store,
        operation="delete",
        status=404,
        user="bob",
        project="p2",
        request_id="r2",
        entity="/compute/2",
        result="nothing exists at /compute/2",
    )
    audit.record(
        store,
        operation="action start",
        status=200,
        user="alice",
        project="p2",
        request_id="r3",
        entity="/compute/3",
    )
    store.close()

    r = _cli(db, "events")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("TIME")
    assert ["action start" in lines[1], "delete" in lines[2], "create" in lines[3]] == [True] * 3
    assert "nothing exists at /compute/2" in lines[2]

    def ids(*args: str) -> list[str]:
        out = _cli(db, "events", "--json", *args)
        assert out.returncode == 0, out.stderr
        return [json.loads(line)["request_id"] for line in out.stdout.splitlines()]

    assert ids() == ["r3", "r2", "r1"]
    assert ids("--user", "alice") == ["r3", "r1"]
    assert ids("--project", "p2") == ["r3", "r2"]
    assert ids("--since", "1h") == ["r3", "r2"]
    assert ids("--since", (now - timedelta(hours=4)).isoformat()) == ["r3", "r2", "r1"]
    assert ids("--limit", "1") == ["r3"]
    doc = json.loads(_cli(db, "events", "--json", "--user", "bob").stdout)
    assert doc["status"] == 404 and doc["operation"] == "delete" and doc["project"] == "p2"

    assert _cli(db, "events", "--help").returncode == 0
    for bad in (["--since", "yesterday"], ["--limit", "0"], ["--nope"]):
        r = _cli(db, "events", *bad)
        assert r.returncode == 2, bad
    r = _cli(tmp_path / "absent.db", "events")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_the_job_runner_runs_the_purge_chore(tmp_path):
    from occi.jobs.runner import JobRunner, JobSettings

    settings = Settings.from_mapping({"database_url": f"sqlite:///{tmp_path}/r.db"})
    _, service = build(settings, upgrade=True, run_jobs=False)
    store = service.store
    audit.record(store, operation="ancient", status=200, at=datetime.now(UTC) - timedelta(days=9))
    audit.record(store, operation="recent", status=200)
    runs = []
    done = threading.Event()

    def chore() -> None:
        runs.append(audit.purge_if_due(store, 5, 3600))
        done.set()

    runner = JobRunner(store, lambda job, r: None, JobSettings(threads=1))
    runner.add_chore("audit purge", 0.05, chore)
    runner.start()
    try:
        assert done.wait(30)
    finally:
        runner.stop()
        store.close()
    assert runs[0] == 1
    assert [e.operation for e in audit.events(store)] == ["recent"]


def test_signed_in_writes_name_their_user_and_project_and_refused_logins_are_not_events(tmp_path):
    import base64

    from occi.identity.passwords import hash_password
    from occi.identity.store import IdentityTx

    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/signed.db", "auth": "basic"}
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    with service.store.begin() as tx:
        ident = IdentityTx(tx)
        project = ident.create_project("physics")
        ident.create_user("alice", password_hash=hash_password("correct horse"))
        ident.grant("alice", "physics", "member")
    api = Api(testing.TestClient(app), service)

    def basic(password: str) -> dict[str, str]:
        token = base64.b64encode(f"alice:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}", "X-Request-Id": f"as-{password[:5]}"}

    try:
        r = api.post("/compute/", {"kind": INFRA + "compute"}, headers=basic("correct horse"))
        assert r.status_code == 201, r.text
        refused = api.post("/compute/", {"kind": INFRA + "compute"}, headers=basic("wrong"))
        assert refused.status_code == 401
        (event,) = audit.events(service.store)
    finally:
        service.store.close()
    assert (event.user, event.project, event.project_name) == ("alice", project.id, "physics")
    assert (event.request_id, event.operation, event.status) == ("as-corre", "create compute", 201)


def test_a_create_the_platform_failed_names_the_entity_it_left(tmp_path):
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/f.db", "auth": "none", "simulator_fail": "create"}
    )
    app, service = build(settings, upgrade=True)
    api = Api(testing.TestClient(app), service)
    try:
        r = api.post("/compute/", {"kind": INFRA + "compute"})
        assert r.status_code == 502, r.text
        (event,) = audit.events(service.store)
    finally:
        if service.runner is not None:
            service.runner.stop()
        service.store.close()
    assert event.entity == api.path_of(r) and event.entity.startswith("/compute/")
    assert (event.operation, event.status) == ("create compute", 502)
    assert event.result
