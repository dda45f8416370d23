"""Conditional requests, racing clients, and hypervisor work as jobs, through the real app."""

from __future__ import annotations

import threading

import pytest
from falcon import testing

from occi.api.wsgi import build
from occi.settings import Settings
from tests.api.conftest import INFRA, Api

ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"


def make_api(tmp_path, **extra):
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/c.db", "auth": "none", **extra}
    )
    app, service = build(settings, upgrade=True)
    return Api(testing.TestClient(app), service)


@pytest.fixture
def closing():
    made: list[Api] = []
    yield made
    for api in made:
        api.service.runner.stop()
        api.service.store.close()


def test_etag_and_if_match(api):
    path = api.path_of(api.create("compute"))
    r = api.get(path)
    tag = r.headers["etag"]
    assert tag.startswith('"')
    r = api.get(path, headers={"If-None-Match": tag})
    assert r.status_code == 304
    r = api.post(path, {"attributes": {"occi.compute.hostname": "one"}}, headers={"If-Match": tag})
    assert r.status_code == 200, r.text
    new_tag = r.headers["etag"]
    assert new_tag != tag
    r = api.post(path, {"attributes": {"occi.compute.hostname": "two"}}, headers={"If-Match": tag})
    assert r.status.startswith("412")
    assert "ETag" in r.json["error"]["message"]
    assert api.get(path).json["attributes"]["occi.compute.hostname"] == "one"
    assert api.delete(path, headers={"If-Match": tag}).status_code == 412
    assert api.delete(path, headers={"If-Match": new_tag}).status_code == 200


def test_put_if_none_match_creates_only(api):
    r = api.put("/compute/only-once", {"kind": INFRA + "compute"}, headers={"If-None-Match": "*"})
    assert r.status_code == 201
    r = api.put("/compute/only-once", {"kind": INFRA + "compute"}, headers={"If-None-Match": "*"})
    assert r.status_code == 412
    r = api.put("/compute/absent", {"kind": INFRA + "compute"}, headers={"If-Match": "*"})
    assert r.status_code == 412


def test_racing_updates_one_wins_and_no_mix(tmp_path, closing):
    api = make_api(tmp_path)
    closing.append(api)
    path = api.path_of(api.create("compute"))
    tag = api.get(path).headers["etag"]
    versions = [
        {"occi.compute.hostname": "alpha", "occi.compute.cores": 2, "occi.compute.memory": 2.0},
        {"occi.compute.hostname": "beta", "occi.compute.cores": 8, "occi.compute.memory": 16.0},
    ]
    results: list[int] = []
    barrier = threading.Barrier(2)

    def client(attributes):
        barrier.wait()
        r = api.post(path, {"attributes": attributes}, headers={"If-Match": tag})
        results.append(r.status_code)

    threads = [threading.Thread(target=client, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 412]
    final = api.get(path).json["attributes"]
    stored = {k: final[k] for k in versions[0]}
    assert stored in versions  # one whole version, never a mix


def test_failing_platform_retries_then_reports_error(tmp_path, closing):
    api = make_api(tmp_path, simulator_fail="start", job_max_attempts=2, job_wait=20)
    closing.append(api)
    path = api.path_of(api.create("compute"))
    r = api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    assert r.status_code == 502  # the platform failed, not the client (409 is for states)
    assert "simulated failure of start" in r.json["error"]["message"]
    a = api.get(path).json["attributes"]
    assert a["occi.compute.state"] == "error"  # inactive --start--> error (GFD.224)
    assert "simulated failure" in a["occi.compute.state.message"]
    with api.service.store.begin() as tx:
        job = [j for j in tx.jobs.recent(10) if j.operation == "action"][0]
    assert job.status == "failed" and job.attempts == 2


def test_refused_update_is_rolled_back(api):
    path = api.path_of(api.create("storage", {"occi.storage.size": 10}))
    r = api.post(path, {"attributes": {"occi.storage.size": 5}})
    assert r.status_code == 409 and "shrink" in r.json["error"]["message"]
    assert api.get(path).json["attributes"]["occi.storage.size"] == 10.0


def test_requests_return_at_once_when_not_waiting_and_jobs_finish_in_order(tmp_path, closing):
    api = make_api(tmp_path, job_wait=0, simulator_delay=0.2)
    closing.append(api)
    r = api.create("compute")
    path = api.path_of(r)
    assert r.json["attributes"]["occi.compute.state.message"] == "creating"
    for term in ("start", "suspend", "start", "stop"):
        r = api.post(path, {"action": ACTION + term}, params={"action": term})
        assert r.status_code == 200
        assert r.json["attributes"]["occi.compute.state.message"] == f"{term} requested"
    with api.service.store.begin() as tx:
        ids = [j.id for j in tx.jobs.recent(10)]
    done = api.service.runner.settle(ids, timeout=20)
    assert {j.status for j in done.values()} == {"done"}
    a = api.get(path).json["attributes"]
    assert a["occi.compute.state"] == "inactive"  # start, suspend, start, stop: in that order


def test_healthz(api):
    r = api.get("/healthz")
    assert r.status_code == 200
    assert r.json["database"] == "reachable" and r.json["status"] == "ok"


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_category_changes_reach_every_server_without_polling_sql(tmp_path, closing, db, request):
    """The query interface is served from memory; a user mixin defined through one server is
    listed by another at once (SQLite: a signal file; PostgreSQL: LISTEN/NOTIFY)."""
    import time

    url = f"sqlite:///{tmp_path}/shared.db" if db == "sqlite" else request.getfixturevalue("pg_url")
    a = make_api(tmp_path, database_url=url)
    b = make_api(tmp_path, database_url=url)
    closing.extend([a, b])
    assert "http://example.com/t#shared" not in str(b.get("/-/").json)
    b.get("/-/")  # warm b's cache
    r = a.post("/-/", {"scheme": "http://example.com/t#", "term": "shared", "location": "/shared/"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + (0 if db == "sqlite" else 2)
    while True:
        listed = {m["scheme"] + m["term"] for m in b.get("/-/").json["mixins"]}
        if "http://example.com/t#shared" in listed or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    assert "http://example.com/t#shared" in listed
